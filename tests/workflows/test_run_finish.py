"""An executor ends a top-level run in one hop: what the run said and which calls it made, made
searchable in the same write that ends it and releases its lease (and that checks itself that no
webhook listens). A run the executor saw from its start ends in that one write."""

from __future__ import annotations

from typing import Any

import pytest

from agents.models import LedgerEntry
from tests.conftest import Personas
from tests.workflows.conftest import finished
from workflows.models import Run, RunEvent
from workflows.services.lease import RunKnown, run_finish, run_lease_acquire
from workflows.services.runs import run_start
from workflows.store import DatabaseRunStore


@pytest.mark.django_db(transaction=True)
def test_a_finished_run_is_found_by_what_it_said_and_the_calls_it_made(
    personas: Personas, pipeline: Any, executor: Any
) -> None:
    run = finished(run_start(workflow=pipeline, user=personas.owner, inputs={"topic": "moss"}))

    assert run.status == "succeeded", run.reason
    said = run.events.filter(kind="message").order_by("seq").first()
    assert said is not None
    assert "moss" in run.search_text
    assert said.data["text"][:40].lower() in run.search_text.lower()
    calls = LedgerEntry.objects.filter(run_id=run.pk)
    assert run.facets["models"] == sorted({call.model for call in calls})
    assert len(run.facets["agents"]) == 3


@pytest.mark.django_db
def test_ending_a_resumed_run_takes_three_statements(
    personas: Personas, pipeline: Any, django_assert_num_queries: Any
) -> None:
    run = run_start(
        workflow=pipeline, user=personas.owner, inputs={"topic": "moss"}, dispatch=False
    )
    assert run_lease_acquire(run.pk, owner="worker-a")
    RunEvent.objects.create(run=run, seq=1, kind="message", data={"text": "Lichens and moss."})
    snapshot = DatabaseRunStore(owner="worker-a")._load(str(run.pk))
    known = RunKnown(inputs=snapshot.inputs, nested=snapshot.depth > 0)

    # The run's messages, its calls' facets, and the write that ends it (which finds no webhook
    # subscription listening: no transaction is opened).
    with django_assert_num_queries(3):
        assert run_finish(run.pk, owner="worker-a", status="succeeded", output="ok", known=known)

    run = Run.objects.get(pk=run.pk)
    assert (run.status, run.output, run.lease_owner) == ("succeeded", "ok", "")
    assert "lichens and moss." in run.search_text.lower()
    # Another owner's end is fenced out, as without what was known.
    assert not run_finish(run.pk, owner="worker-b", status="failed", known=known)


@pytest.mark.django_db
def test_ending_a_run_seen_from_its_start_takes_one_statement(
    personas: Personas, pipeline: Any, django_assert_num_queries: Any
) -> None:
    run = run_start(
        workflow=pipeline, user=personas.owner, inputs={"topic": "moss"}, dispatch=False
    )
    assert run_lease_acquire(run.pk, owner="worker-a")
    known = RunKnown(
        inputs={"topic": "moss"},
        nested=False,
        messages=("Lichens and moss.",),
        facets={"models": ["demo"], "providers": [], "agents": [], "errors": []},
    )

    with django_assert_num_queries(1):
        assert run_finish(run.pk, owner="worker-a", status="succeeded", output="ok", known=known)

    run = Run.objects.get(pk=run.pk)
    assert (run.status, run.output, run.lease_owner) == ("succeeded", "ok", "")
    assert "lichens and moss." in run.search_text.lower()
    assert run.facets["models"] == ["demo"]
    assert not run_finish(run.pk, owner="worker-b", status="failed", known=known)
