"""A provider that echoes part of a wrong key: no run, step, event, page or log keeps any of it."""

from __future__ import annotations

import json
import logging

import pytest
from django.urls import reverse

from tests.agents.factories import make_agent, make_provider
from tests.conftest import Personas
from tests.support import canary
from tests.support.canary import CANARY, canary_parts
from tests.workflows.conftest import finished
from workflows.graph import examples
from workflows.models import RunEvent, RunStatus, Step
from workflows.services.runs import run_start
from workflows.services.workflows import workflow_create, workflow_publish

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_masked_echo_of_the_key_is_kept_nowhere(
    personas: Personas, executor, llm_server, client_for, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sightings_before = len(canary.watch.sightings)
    # The provider knows another key, and answers like OpenAI: 401, the wrong key half masked.
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

    run = finished(run_start(workflow=workflow, user=personas.owner, inputs={"topic": "x"}))

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
    assert canary_parts(caplog.text) == []
    assert canary.watch.sightings[sightings_before:] == []
