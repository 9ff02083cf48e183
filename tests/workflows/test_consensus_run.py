"""A consensus node run for real: agents on the fake provider, the decision log on the run page."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.urls import reverse

from monitoring.trace.spans import run_trace
from tests.agents.factories import make_agent, make_provider
from tests.conftest import Personas
from tests.workflows.conftest import finished
from workflows.graph.examples import edge, node
from workflows.models import Run, RunStatus, Step, Workflow
from workflows.services.runs import run_start
from workflows.services.workflows import workflow_create, workflow_publish

pytestmark = pytest.mark.django_db(transaction=True)

# The proposer's first plan draws the skeptic's objection; the revision meets it.
COUNCIL_SCRIPT = {
    "rules": [
        {
            "system_contains": "You propose a decision",
            "last_message_contains": "Objections",
            "reply": "Plan B: a four-day week, with Friday cover on a rota.",
        },
        {"system_contains": "You propose a decision", "reply": "Plan A: a four-day week."},
        {
            "system_contains": "a skeptic",
            "last_message_contains": "Plan A",
            "reply": json.dumps({"decision": "reject", "reason": "Who covers Fridays?"}),
        },
        {
            "system_contains": "Accept or reject",
            "reply": json.dumps({"decision": "accept", "reason": "Works for me."}),
        },
    ]
}


def council_workflow(personas: Personas, **config: Any) -> Workflow:
    provider = make_provider(personas.workspace)
    planner = make_agent(personas.workspace, name="Planner", provider=provider, role="a planner")
    members = [
        make_agent(personas.workspace, name=name, provider=provider, role=role)
        for name, role in (
            ("Skeptic", "a skeptic"),
            ("Ally", "a supportive colleague"),
            ("Steward", "a budget steward"),
        )
    ]
    agree = node(
        "agree",
        "consensus",
        0,
        0,
        proposer_agent_id=str(planner.pk),
        members=[str(member.pk) for member in members],
        task="Propose how the team works: {{ topic }}",
        quorum="unanimous",
        output_variable="plan",
        **config,
    )
    agree["label"] = "Agree on a plan"
    graph = {
        "schema_version": 1,
        "nodes": [node("start", "start", 0, 0), agree, node("end", "end", 0, 0, output="plan")],
        "edges": [edge("start", "agree"), edge("agree", "end")],
        "variables": [{"name": "plan", "type": "string"}],
        "inputs": {"fields": [{"name": "topic", "type": "text"}]},
    }
    workflow = workflow_create(
        workspace=personas.workspace, user=personas.owner, name="Council", graph=graph
    )
    workflow_publish(workflow=workflow, user=personas.owner, note="first")
    return workflow


def test_a_council_revises_its_plan_and_commits_it(
    personas: Personas, llm_server: Any, executor: Any, client_for: Any
) -> None:
    llm_server.set_script(COUNCIL_SCRIPT)
    workflow = council_workflow(personas)
    run = finished(run_start(workflow=workflow, user=personas.owner, inputs={"topic": "Fridays"}))
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.output == "Plan B: a four-day week, with Friday cover on a rota."
    keys = set(Step.objects.filter(run=run).values_list("key", flat=True))
    assert {"agree/term-1/propose", "agree/term-2/propose", "agree/term-2/member-0"} <= keys
    # Members answered through the structured output the node asked for.
    ballots = [r for r in llm_server.requests if "Accept or reject" in json.dumps(r)]
    assert len(ballots) == 6
    [decision] = run.events.filter(kind="consensus")
    assert decision.data["committed"] is True and decision.data["term"] == 2

    # The trace names each sub-step by its term and role, nested under the node's step.
    names = {span.name for span in run_trace(run).by_id.values()}
    assert {
        "Agree on a plan · term 1 · proposal",
        "Agree on a plan · term 2 · member 1",
    } <= names

    page = client_for(personas.viewer).get(reverse("run_detail", args=[run.pk])).content.decode()
    assert "Decision log" in page
    assert "Term 1" in page and "Term 2" in page
    assert "Who covers Fridays?" in page
    assert "committed</span> in term 2: 3 of 3 members accepted (3 needed)" in page


def test_a_run_without_a_consensus_node_has_no_decision_log(
    personas: Personas, pipeline: Workflow, client_for: Any
) -> None:
    run = Run.objects.create(
        workflow=pipeline,
        version=pipeline.versions.get(),
        workspace=personas.workspace,
        inputs={"topic": "x"},
    )
    page = client_for(personas.viewer).get(reverse("run_detail", args=[run.pk])).content.decode()
    assert 'id="run-decisions" hidden' in page and "Decision log" not in page
