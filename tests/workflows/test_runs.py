"""Runs end to end in one process: start, execute through the gateway, record everything."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db.models import Sum

from agents.models import LedgerEntry
from tests.conftest import Personas
from tests.workflows.conftest import finished
from workflows.models import Run, RunEvent, RunStatus, Step
from workflows.services.lease import run_lease_acquire
from workflows.services.runs import run_cancel, run_start, workflow_latest_version

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_pipeline_runs_to_the_end_and_its_totals_equal_the_ledger(
    personas: Personas, pipeline, executor, llm_server
) -> None:
    run = run_start(workflow=pipeline, user=personas.owner, inputs={"topic": "tidal power"})
    assert run.status == RunStatus.QUEUED
    run = finished(run)
    assert run.status == RunStatus.SUCCEEDED, run.reason
    assert run.version.number == 1
    assert "tidal power" in str(run.output).lower() or run.output
    steps = list(Step.objects.filter(run=run, status=Step.Status.COMPLETED))
    assert {step.node_id for step in steps} >= {"research", "analysis", "writing"}
    ledger = LedgerEntry.objects.filter(run_id=run.pk)
    assert ledger.count() == 3 and not ledger.exclude(status="completed").exists()
    totals = ledger.aggregate(cost=Sum("cost"), prompt=Sum("prompt_tokens"))
    assert run.cost == (totals["cost"] or Decimal(0))
    assert run.prompt_tokens == totals["prompt"]
    assert run.model_calls == 3
    seqs = list(RunEvent.objects.filter(run=run).values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1)), "events are gapless and ordered"
    messages = RunEvent.objects.filter(run=run, kind="message")
    assert messages.count() == 3
    assert len(llm_server.requests) == 3


def test_inputs_are_validated_before_anything_starts(personas: Personas, pipeline) -> None:
    with pytest.raises(ValidationError) as caught:
        run_start(workflow=pipeline, user=personas.owner, inputs={})
    assert "topic" in caught.value.message_dict
    assert not Run.objects.exists()


def test_an_unpublished_workflow_cannot_run(personas: Personas) -> None:
    from workflows.services.workflows import workflow_create

    draft = workflow_create(workspace=personas.workspace, user=personas.owner, name="Draft only")
    with pytest.raises(ValidationError, match="Publish the workflow"):
        run_start(workflow=draft, user=personas.owner, inputs={})


def test_a_duplicate_delivery_does_nothing(personas: Personas, pipeline, executor) -> None:
    run = run_start(workflow=pipeline, user=personas.owner, inputs={"topic": "kelp"})
    run = finished(run)
    events_before = RunEvent.objects.filter(run=run).count()
    calls_before = LedgerEntry.objects.filter(run_id=run.pk).count()
    # The run's status is stored before its execution here winds down; a delivery before that
    # would be handed the first execution's future (its outcome), not a new look at the run.
    from tests.support.waiting import wait_for

    wait_for(lambda: executor.active == 0, what="the first execution to end")
    assert executor.submit(str(run.pk)).result(timeout=10) is None
    assert run_lease_acquire(run.pk, owner="someone-else") is False
    assert RunEvent.objects.filter(run=run).count() == events_before
    assert LedgerEntry.objects.filter(run_id=run.pk).count() == calls_before


def test_a_queued_run_is_cancelled_at_once(personas: Personas, pipeline, settings) -> None:
    settings.EXECUTION_MODE = "celery"  # nobody executes it in this test
    run = run_start(workflow=pipeline, user=personas.owner, inputs={"topic": "x"}, dispatch=False)
    run = run_cancel(run=run, user=personas.owner)
    assert run.status == RunStatus.CANCELLED
    assert run.reason == "Cancelled by olivia."
    assert run_lease_acquire(run.pk, owner="w") is False


def test_a_running_run_is_cancelled_by_the_engine(
    personas: Personas, pipeline, executor, llm_server
) -> None:
    llm_server.set_script({"rules": [{"fault": "hang"}]})
    run = run_start(workflow=pipeline, user=personas.owner, inputs={"topic": "slow"})
    from tests.support.waiting import wait_for

    wait_for(lambda: llm_server.requests, timeout=10, what="the first model call")
    run_cancel(run=run, user=personas.owner)
    run = finished(run, timeout=15)
    assert run.status == RunStatus.CANCELLED
    assert not LedgerEntry.objects.filter(run_id=run.pk, status="pending").exists()


def test_a_provider_fault_fails_the_run_with_a_reason(
    personas: Personas, pipeline, executor, llm_server
) -> None:
    llm_server.set_script({"rules": [{"fault": "auth"}]})
    run = finished(run_start(workflow=pipeline, user=personas.owner, inputs={"topic": "x"}))
    assert run.status == RunStatus.FAILED
    assert "research" in run.reason.lower() or "Research" in run.reason
    assert "API key" in run.reason or "auth" in run.reason.lower()


def test_a_hanging_provider_fails_the_step_at_its_first_byte_limit(
    personas: Personas, pipeline, executor, llm_server
) -> None:
    import time

    from agents.models import Provider

    Provider.objects.filter(workspace=personas.workspace).update(first_byte_timeout_s=1)
    llm_server.set_script({"rules": [{"fault": "hang"}]})
    started = time.monotonic()
    run = finished(
        run_start(workflow=pipeline, user=personas.owner, inputs={"topic": "x"}), timeout=30
    )
    took = time.monotonic() - started
    assert run.status == RunStatus.FAILED
    assert "no first byte within 1 s (the first-byte limit)" in run.reason
    # Three attempts of 1 s and two short back-offs, not minutes.
    assert len(llm_server.requests) == 3 and took < 15
    ledger = LedgerEntry.objects.filter(run_id=run.pk)
    assert set(ledger.values_list("error_kind", flat=True)) == {"timeout"}
    assert run.cost == (ledger.aggregate(total=Sum("cost"))["total"] or Decimal(0))


def _row(run: Run) -> dict[str, object]:
    return {field.attname: getattr(run, field.attname) for field in Run._meta.concrete_fields}


def test_a_launched_run_is_the_row_the_database_holds(personas: Personas, pipeline) -> None:
    """The launch writes the run's row by hand: what it returns is what the ORM reads back,
    every column, defaults and database defaults included."""
    from workflows.services.runs import workflow_latest_version

    run = run_start(
        workflow=pipeline, user=personas.owner, inputs={"topic": "kelp"}, dispatch=False
    )
    stored = Run.objects.get(pk=run.pk)
    assert _row(run) == _row(stored)
    assert stored.fork_step_key == "" and stored.fork_edits == []
    assert stored.version == workflow_latest_version(pipeline)
    assert stored.created_by == personas.owner and stored.created_at is not None
    assert not run._state.adding


def test_a_launch_saves_through_the_orm_when_something_listens(
    personas: Personas, pipeline
) -> None:
    from django.db.models.signals import post_save

    heard: list[Run] = []

    def listener(sender: type[Run], instance: Run, created: bool, **kwargs: object) -> None:
        heard.append(instance)

    post_save.connect(listener, sender=Run, weak=False)
    try:
        run = run_start(
            workflow=pipeline, user=personas.owner, inputs={"topic": "kelp"}, dispatch=False
        )
    finally:
        post_save.disconnect(listener, sender=Run)
    assert heard == [run]
    assert _row(run) == _row(Run.objects.get(pk=run.pk))


def test_the_latest_version_is_read_as_the_orm_reads_it(personas: Personas, pipeline) -> None:
    from workflows.services.runs import workflow_latest_version
    from workflows.services.workflows import workflow_publish

    workflow_publish(workflow=pipeline, user=personas.owner)
    latest = workflow_latest_version(pipeline)
    expected = pipeline.versions.order_by("-number").first()
    assert latest is not None and expected is not None and latest.number == 2
    assert {f.attname: getattr(latest, f.attname) for f in latest._meta.concrete_fields} == {
        f.attname: getattr(expected, f.attname) for f in expected._meta.concrete_fields
    }
    assert latest.workflow is pipeline


@pytest.mark.services  # PostgreSQL's commits
def test_a_launch_sends_the_run_before_its_flush_and_returns_it_durable(
    personas: Personas, pipeline, monkeypatch
) -> None:
    """On PostgreSQL the run's row is committed without waiting for the disk, the run is
    dispatched (a worker can take it at once), and only then does the launch wait for the
    flush: it returns with the run on disk, as before."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    import workflows.services.runs as runs
    from a2a_site import db

    assert connection.vendor == "postgresql"
    sent: dict[str, object] = {}

    def dispatch(run_id: object, *, priority: int | None = None) -> bool:
        assert Run.objects.filter(pk=run_id, status=RunStatus.QUEUED).exists()
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_current_wal_insert_lsn()::text")
            sent["lsn"] = cursor.fetchone()[0]
        return True

    monkeypatch.setattr(runs, "dispatch_run", dispatch)
    with CaptureQueriesContext(connection) as captured:
        run = run_start(workflow=pipeline, user=personas.owner, inputs={"topic": "kelp"})
    statements = [query["sql"] for query in captured.captured_queries]
    # The INSERT goes as text, or as the EXECUTE of its prepared form (a2a_site.db).
    inserts = [i for i, sql in enumerate(statements) if sql.startswith(("INSERT", "EXECUTE"))]
    assert inserts, statements
    insert = inserts[0]
    texts = {name: sql for sql, name in db._names.items()}
    first = statements[insert]
    text = texts[first.split()[1].split("(")[0]] if first.startswith("EXECUTE") else first
    assert text.startswith("INSERT") and "synchronous_commit" in text
    assert "pg_current_wal_insert_lsn" in statements[insert + 2]  # after the dispatch's check
    assert "pg_logical_emit_message" in statements[-1]  # the flush comes last
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_flush_lsn() >= %s::pg_lsn", [sent["lsn"]])
        assert cursor.fetchone()[0], "the launch returned before its run was on disk"
    assert Run.objects.get(pk=run.pk).status == RunStatus.QUEUED


def test_inside_a_transaction_the_launch_commits_as_the_caller_does(
    personas: Personas, pipeline
) -> None:
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured, transaction.atomic():
        run_start(workflow=pipeline, user=personas.owner, inputs={"topic": "kelp"}, dispatch=False)
    statements = " ".join(query["sql"] for query in captured.captured_queries)
    assert "synchronous_commit" not in statements
    assert "pg_logical_emit_message" not in statements


def test_a_launch_reads_its_version_and_the_workspaces_budgets_in_one_statement(
    personas: Personas, pipeline
) -> None:
    """Before its INSERT a launch reads once: the workflow's latest version beside whether
    its workspace has a budget (`launch_refusal` asks nothing more when it has none)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        run = run_start(
            workflow=pipeline, user=personas.owner, inputs={"topic": "kelp"}, dispatch=False
        )
    statements = [query["sql"] for query in captured.captured_queries]
    first_write = next(
        i
        for i, sql in enumerate(statements)
        if sql.lstrip().startswith(("INSERT", "EXECUTE", "PREPARE"))
    )
    assert len(statements[:first_write]) == 1, statements[:first_write]
    assert run.version == workflow_latest_version(pipeline)
