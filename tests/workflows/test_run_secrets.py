"""A provider that echoes part of a wrong key: no run, step, event, page or log keeps any of it."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

import pytest
from django.urls import reverse

from tests.agents.factories import make_agent, make_provider
from tests.conftest import Personas
from tests.support import canary
from tests.support.canary import CANARY, canary_parts
from tests.support.processes import start_celery_worker
from tests.workflows.conftest import finished
from workflows.graph import examples
from workflows.models import Run, RunEvent, RunStatus, Step, Workflow
from workflows.services.runs import run_start
from workflows.services.workflows import workflow_create, workflow_publish

pytestmark = pytest.mark.django_db(transaction=True)


def _leaky_workflow(personas: Personas, llm_server: Any) -> Workflow:
    """Agents on a provider holding the canary as a key that the provider does not accept: it
    answers like OpenAI, 401 with the wrong key half masked."""
    llm_server.set_script({"api_key": "sk-the-right-key-0000"})
    provider = make_provider(
        personas.workspace,
        kind="openai_compatible",
        name="Canary",
        base_url=f"{llm_server.url}/v1",
        api_key=CANARY,
    )
    agents = [
        make_agent(personas.workspace, name=name, provider=provider)
        for name in ("Researcher", "Analyst", "Writer")
    ]
    graph = examples.research_pipeline(*(str(agent.pk) for agent in agents))
    workflow = workflow_create(
        workspace=personas.workspace, user=personas.owner, name="Leaky", graph=graph
    )
    workflow_publish(workflow=workflow, user=personas.owner, note="first")
    return workflow


def _assert_nothing_kept(run: Run, personas: Personas, client_for: Any) -> None:
    assert run.status == RunStatus.FAILED
    assert "Incorrect API key provided: ****" in run.reason
    assert canary_parts(run.reason) == []
    errors = list(Step.objects.filter(run=run).values_list("error", flat=True))
    assert any("Incorrect API key" in error for error in errors)
    assert all(canary_parts(error) == [] for error in errors)
    events = list(RunEvent.objects.filter(run=run))
    assert "node_failed" in [event.kind for event in events]
    assert all(canary_parts(json.dumps(event.data)) == [] for event in events)
    viewer = client_for(personas.viewer)
    for url in (
        reverse("run_detail", args=[run.pk]),
        reverse("run_nodes_json", args=[run.pk]),
        reverse("run_list"),
    ):
        page = viewer.get(url)
        assert page.status_code == 200, url
        assert canary_parts(page.content.decode()) == [], url


def test_a_masked_echo_of_the_key_is_kept_nowhere(
    personas: Personas, executor, llm_server, client_for, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sightings_before = len(canary.watch.sightings)
    workflow = _leaky_workflow(personas, llm_server)

    run = finished(run_start(workflow=workflow, user=personas.owner, inputs={"topic": "x"}))

    _assert_nothing_kept(run, personas, client_for)
    assert canary_parts(caplog.text) == []
    assert canary.watch.sightings[sightings_before:] == []


@pytest.mark.services
@pytest.mark.slow
def test_a_celery_worker_keeps_no_part_of_the_key_either(
    personas: Personas, llm_server, client_for, settings: Any
) -> None:
    settings.EXECUTION_MODE = "celery"
    workflow = _leaky_workflow(personas, llm_server)
    worker = start_celery_worker(
        f"secrets-{uuid.uuid4().hex[:6]}",
        A2A_DEMO_MODEL_URL=llm_server.url,
        A2A_OUTBOUND_ALLOWED_HOSTS="127.0.0.1",
    )
    try:
        run = run_start(workflow=workflow, user=personas.owner, inputs={"topic": "x"})
        run = finished(run, timeout=60)
        _assert_nothing_kept(run, personas, client_for)
    finally:
        worker.stop()
    assert canary_parts(worker.log_path.read_text(errors="replace")) == []
