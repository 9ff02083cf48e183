"""Every shipped template runs end to end: real executor, real gateway, the fake LLM server.

Scripted replies make the agents behave as the pattern needs — a moderator who ends the debate,
a selector who names the next speaker, a triage agent that hands off through its transfer tool,
voters who answer in JSON — and everything else gets the demo model's default replies.
"""

from __future__ import annotations

from typing import Any

import pytest

from agents.models import LedgerEntry
from tests.conftest import Personas
from tests.workflows.conftest import finished
from workflows.models import Run, RunEvent, RunStatus, Step
from workflows.services.runs import run_answer, run_start
from workflows.templates_catalog import template_instantiate

pytestmark = pytest.mark.django_db(transaction=True)

RULES: list[dict[str, Any]] = [
    {"system_contains": "debate moderator", "reply": "Both sides were heard. TERMINATE"},
    {"system_contains": "chooses the next speaker", "reply": "Reviewer"},
    {"system_contains": "demanding reviewer", "reply": "This fully answers it. TERMINATE"},
    {
        "system_contains": "support triage",
        "has_tools": True,
        "last_role": "user",
        "tool_call": {"name": "transfer_to_billing_support", "arguments": {}},
    },
    {"system_contains": "billing support specialist", "reply": "Your refund is on its way."},
]

INPUTS = {
    "research_pipeline": {"topic": "urban heat islands"},
    "parallel_research": {"topic": "urban heat islands"},
    "round_robin_debate": {"topic": "a four-day week"},
    "selector_team": {"task": "estimate 17*23"},
    "support_handoff": {"message": "I was charged twice"},
    "panel_vote": {"proposal": "plant trees on every street"},
    "council_decision": {"question": "should the office close on Fridays?"},
    "approved_draft": {"topic": "heat pumps"},
}


@pytest.fixture
def demo(personas: Personas, llm_server: Any) -> Any:
    from tests.agents.factories import make_provider

    llm_server.set_script({"rules": RULES})
    return make_provider(personas.workspace)


def _start(personas: Personas, demo: Any, key: str) -> Run:
    workflow = template_instantiate(
        key=key, workspace=personas.workspace, user=personas.owner, provider=demo
    )
    graph = workflow.versions.get().graph
    fields = {field["name"] for field in (graph.get("inputs") or {}).get("fields", [])}
    inputs = {name: value for name, value in INPUTS[key].items() if name in fields}
    return run_start(workflow=workflow, user=personas.owner, inputs=inputs)


def _kinds(run: Run) -> list[str]:
    return list(RunEvent.objects.filter(run=run).values_list("kind", flat=True))


@pytest.mark.parametrize(
    "key", ["research_pipeline", "parallel_research", "round_robin_debate", "selector_team"]
)
def test_the_template_runs_to_success(personas: Personas, demo, executor, key: str) -> None:
    run = finished(_start(personas, demo, key), timeout=60)
    assert run.status == RunStatus.SUCCEEDED, run.reason
    assert run.output
    assert "message" in _kinds(run)
    assert not LedgerEntry.objects.filter(run_id=run.pk).exclude(status="completed").exists()


def test_the_debate_stops_when_the_moderator_says_terminate(
    personas: Personas, demo, executor
) -> None:
    run = finished(_start(personas, demo, "round_robin_debate"), timeout=60)
    messages = list(RunEvent.objects.filter(run=run, kind="message").values_list("data", flat=True))
    speakers = [message["agent"] for message in messages]
    assert speakers == ["Optimist", "Skeptic", "Moderator"]
    assert "TERMINATE" in messages[-1]["text"]


def test_triage_hands_off_to_billing(personas: Personas, demo, executor, llm_server) -> None:
    run = finished(_start(personas, demo, "support_handoff"), timeout=60)
    assert run.status == RunStatus.SUCCEEDED, run.reason
    handoff = RunEvent.objects.get(run=run, kind="handoff")
    assert "Billing" in str(handoff.data)
    assert "refund is on its way" in str(run.output)
    triage_request = next(r for r in llm_server.requests if r["body"].get("tools"))
    names = {tool["function"]["name"] for tool in triage_request["body"]["tools"]}
    assert {"transfer_to_billing_support", "transfer_to_technical_support"} <= names


def test_the_panel_votes(personas: Personas, demo, executor) -> None:
    run = finished(_start(personas, demo, "panel_vote"), timeout=60)
    assert run.status == RunStatus.SUCCEEDED, run.reason
    assert RunEvent.objects.filter(run=run, kind="vote").count() >= 3
    assert Step.objects.filter(run=run, key__contains="/voter-").count() == 3


def test_the_council_commits_on_the_demo_model(personas: Personas, demo, executor) -> None:
    run = finished(_start(personas, demo, "council_decision"), timeout=60)
    assert run.status == RunStatus.SUCCEEDED, run.reason
    [decision] = RunEvent.objects.filter(run=run, kind="consensus")
    assert decision.data["committed"] is True
    assert run.output == decision.data["proposal"] and run.output
    assert Step.objects.filter(run=run, key__contains="/member-").count() == 3


def test_a_draft_waits_for_approval_then_finishes(personas: Personas, demo, executor) -> None:
    run = finished(_start(personas, demo, "approved_draft"), timeout=60)
    assert run.status == RunStatus.WAITING, run.reason
    assert "human_request" in _kinds(run)
    key = run.waiting_request["step_key"]
    calls = LedgerEntry.objects.filter(run_id=run.pk).count()
    run_answer(run=run, step_key=key, answer={"approved": True}, user=personas.owner)
    run = finished(run, timeout=60)
    assert run.status == RunStatus.SUCCEEDED, run.reason
    assert run.attempts == 2
    assert LedgerEntry.objects.filter(run_id=run.pk).count() == calls, "no step ran twice"
