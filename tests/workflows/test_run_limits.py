"""Budgets, time limits and provider faults end runs with a definite status and a reason."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.core.management import call_command

from tests.conftest import Personas
from tests.workflows.conftest import finished, research_agents
from workflows.graph import examples
from workflows.models import RunStatus, Workflow
from workflows.services.runs import run_start
from workflows.services.workflows import workflow_create, workflow_publish

pytestmark = pytest.mark.django_db(transaction=True)


def _publish(personas: Personas, graph: dict[str, Any], name: str) -> Workflow:
    workflow = workflow_create(
        workspace=personas.workspace, user=personas.owner, name=name, graph=graph
    )
    workflow_publish(workflow=workflow, user=personas.owner)
    return workflow


def test_a_token_budget_stops_the_run(personas: Personas, executor, llm_server) -> None:
    researcher, analyst, writer = research_agents(personas)
    graph = examples.research_pipeline(str(researcher.pk), str(analyst.pk), str(writer.pk))
    graph["settings"] = {"token_budget": 50, "budget_action": "stop"}
    run = finished(
        run_start(
            workflow=_publish(personas, graph, "Thrifty"),
            user=personas.owner,
            inputs={"topic": "x"},
        )
    )
    assert run.status == RunStatus.FAILED
    # Stopped during the call that reached it, not at the next step.
    assert "The run's token budget of 50 was reached" in run.reason
    assert run.steps_completed < 3


def test_a_run_past_its_time_limit_fails(personas: Personas, executor, llm_server) -> None:
    researcher, analyst, writer = research_agents(personas)
    graph = examples.research_pipeline(str(researcher.pk), str(analyst.pk), str(writer.pk))
    graph["settings"] = {"timeout_s": 1}
    llm_server.set_script({"rules": [{"reply": "slowly", "delay_ms": 700}]})
    run = finished(
        run_start(
            workflow=_publish(personas, graph, "Hurried"),
            user=personas.owner,
            inputs={"topic": "x"},
        )
    )
    assert run.status == RunStatus.FAILED
    assert "timed out" in run.reason


def test_a_provider_failing_in_the_middle_of_a_group_chat(
    personas: Personas, executor, llm_server
) -> None:
    researcher, analyst, writer = research_agents(personas)
    graph = examples.group_chat_debate([str(researcher.pk), str(analyst.pk), str(writer.pk)])
    # The second speaker's call fails for good: the chat cannot go on.
    llm_server.set_script(
        {"rules": [{"system_contains": "sharp analyst", "fault": "500"}, {"reply": "A point."}]}
    )
    run = finished(
        run_start(
            workflow=_publish(personas, graph, "Debate"),
            user=personas.owner,
            inputs={"topic": "x"},
        ),
        timeout=60,
    )
    assert run.status == RunStatus.FAILED
    assert "debate" in run.reason.lower()
    assert "failed to answer" in run.reason or "500" in run.reason
    # The first member's turn was kept.
    assert run.steps.filter(key="debate/turn-0", status="completed").exists()


def test_run_workflow_command_follows_and_summarises(
    personas: Personas, pipeline, executor, llm_server
) -> None:
    out = io.StringIO()
    call_command(
        "run_workflow", "Research pipeline", "--input", '{"topic": "kelp"}', "--json", stdout=out
    )
    summary = json.loads(out.getvalue().strip().splitlines()[-1])
    assert summary["status"] == "succeeded"
    assert summary["steps"] >= 3 and summary["model_calls"] == 3
    assert summary["version"] == 1

    followed = io.StringIO()
    call_command("run_workflow", str(pipeline.pk), "--input", '{"topic": "kelp"}', stdout=followed)
    text = followed.getvalue()
    assert "[Researcher]" in text and "[Writer]" in text
    assert "— succeeded" in text


def test_run_workflow_explains_bad_input(personas: Personas, pipeline) -> None:
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="not valid JSON"):
        call_command("run_workflow", "Research pipeline", "--input", "{topic}")
    with pytest.raises(CommandError, match="No workflow"):
        call_command("run_workflow", "Nope")
    with pytest.raises(CommandError, match="topic"):
        call_command("run_workflow", "Research pipeline", "--input", "{}")


def test_an_agent_slower_than_its_timeout_fails_its_step(
    personas: Personas, executor, llm_server
) -> None:
    from tests.agents.factories import make_agent, make_provider

    provider = make_provider(personas.workspace)
    agents = [
        make_agent(personas.workspace, name=name, provider=provider, timeout_s=1)
        for name in ("Researcher", "Analyst", "Writer")
    ]
    llm_server.set_script({"rules": [{"reply": "eventually", "delay_ms": 3000}]})
    graph = examples.research_pipeline(*(str(agent.pk) for agent in agents))
    run = finished(
        run_start(
            workflow=_publish(personas, graph, "Impatient"),
            user=personas.owner,
            inputs={"topic": "x"},
        )
    )
    assert run.status == RunStatus.FAILED
    assert "Researcher did not finish its turn within 1 s" in run.reason
