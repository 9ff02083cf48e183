"""An agent's http_get in a run reaches an internal host only if the workspace and the
administrator both allow it for tools; the providers' allow-list is not enough."""

from __future__ import annotations

from typing import Any

import pytest

from agents.services.tool_hosts import tool_host_policy_update
from tests.agents.factories import make_agent, make_provider
from tests.conftest import Personas
from tests.workflows.conftest import finished
from workflows.graph import examples
from workflows.models import Run, RunEvent, RunStatus
from workflows.services.runs import run_start
from workflows.services.workflows import workflow_create, workflow_publish

pytestmark = pytest.mark.django_db(transaction=True)


def _fetching_run(personas: Personas, llm_server: Any) -> Run:
    """Every agent of the pipeline fetches the provider's own model list (an internal host)."""
    target = f"{llm_server.url}/v1/models"
    llm_server.set_script(
        {
            "rules": [
                {"last_role": "tool", "reply": "Fetched."},
                {
                    "has_tools": True,
                    "last_role": "user",
                    "tool_call": {"name": "http_get", "arguments": {"url": target}},
                },
            ]
        }
    )
    provider = make_provider(personas.workspace)
    agents = [
        make_agent(personas.workspace, name=name, provider=provider, tools=["http_get"])
        for name in ("Researcher", "Analyst", "Writer")
    ]
    graph = examples.research_pipeline(*(str(agent.pk) for agent in agents))
    workflow = workflow_create(
        workspace=personas.workspace, user=personas.owner, name="Fetch", graph=graph
    )
    workflow_publish(workflow=workflow, user=personas.owner, note="first")
    return finished(run_start(workflow=workflow, user=personas.owner, inputs={"topic": "x"}))


def _tool_results(run: Run) -> list[str]:
    return [
        str(event.data.get("content") or event.data)
        for event in RunEvent.objects.filter(run=run, kind="tool_result")
    ]


def test_the_providers_allow_list_does_not_open_the_host_to_tools(
    personas: Personas, executor, llm_server, settings: Any
) -> None:
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.TOOL_ALLOWED_HOSTS = []

    run = _fetching_run(personas, llm_server)

    assert run.status == RunStatus.SUCCEEDED, run.reason
    results = _tool_results(run)
    assert results
    assert all("127.0.0.1 is a loopback address" in result for result in results)
    assert not any("HTTP 200" in result for result in results)


def test_a_host_both_allow_is_fetched(
    personas: Personas, executor, llm_server, settings: Any
) -> None:
    settings.TOOL_ALLOWED_HOSTS = ["127.0.0.1"]
    tool_host_policy_update(
        workspace=personas.workspace, user=personas.owner, public_hosts=True, hosts=["127.0.0.1"]
    )

    run = _fetching_run(personas, llm_server)

    assert run.status == RunStatus.SUCCEEDED, run.reason
    results = _tool_results(run)
    assert results
    assert all("HTTP 200" in result for result in results), results
