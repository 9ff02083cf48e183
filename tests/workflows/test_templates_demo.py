"""Every template, on the offline demo model with no script at all, runs and shows its feature.

What a newcomer sees after `make run`: tools called with sensible arguments (each result linked to
its call), the support triage handing the customer to billing, selectors and routers answering
with a valid choice, votes cast, a draft waiting for approval — and replies that read like the
role's work rather than the prompt given back.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from agents.models import LedgerEntry
from tests.conftest import Personas
from tests.workflows.conftest import finished
from workflows.models import Run, RunEvent, RunStatus
from workflows.services.runs import run_answer, run_start
from workflows.templates_catalog import TEMPLATES, template_instantiate

pytestmark = pytest.mark.django_db(transaction=True)

INPUTS = {
    "research_pipeline": {"topic": "urban heat islands"},
    "parallel_research": {"topic": "urban heat islands"},
    "round_robin_debate": {"topic": "a four-day week"},
    "selector_team": {"task": "estimate 17*23"},
    "support_handoff": {"message": "I was charged twice for my subscription"},
    "panel_vote": {"proposal": "plant trees on every street"},
    "council_decision": {"question": "open the office on Saturdays"},
    "approved_draft": {"topic": "heat pumps"},
}

# What the templates tell agents; a reply that repeats it echoes the prompt.
PROMPT_WORDS = (
    "Research this topic",
    "Analyse these findings",
    "Write a short article about",
    "Answer with exactly one of",
    "Should we adopt this proposal",
    "Hand the conversation",
)


@pytest.fixture
def demo(personas: Personas, llm_server: Any) -> Any:
    from tests.agents.factories import make_provider

    llm_server.set_script({"rules": []})  # nothing scripted: the demo model's own replies
    return make_provider(personas.workspace)


def _run(personas: Personas, demo: Any, key: str) -> Run:
    workflow = template_instantiate(
        key=key, workspace=personas.workspace, user=personas.owner, provider=demo
    )
    graph = workflow.versions.get().graph
    fields = {field["name"] for field in (graph.get("inputs") or {}).get("fields", [])}
    inputs = {name: value for name, value in INPUTS[key].items() if name in fields}
    run = finished(run_start(workflow=workflow, user=personas.owner, inputs=inputs), timeout=90)
    if key == "approved_draft":
        assert run.status == RunStatus.WAITING, run.reason
        assert run.waiting_request["kind"] == "approval"
        run_answer(
            run=run,
            step_key=run.waiting_request["step_key"],
            answer={"approved": True},
            user=personas.owner,
        )
        run = finished(run, timeout=90)
    assert run.status == RunStatus.SUCCEEDED, run.reason
    assert run.output
    assert not LedgerEntry.objects.filter(run_id=run.pk).exclude(status="completed").exists()
    for text in _messages(run).values():
        assert not any(words in text for words in PROMPT_WORDS), text
        assert "{{" not in text
    return run


def _events(run: Run, kind: str) -> list[dict[str, Any]]:
    return list(RunEvent.objects.filter(run=run, kind=kind).values_list("data", flat=True))


def _messages(run: Run) -> dict[str, str]:
    return {
        f"{data.get('agent')}#{index}": str(data.get("text", ""))
        for index, data in enumerate(_events(run, "message"))
    }


def _tools_paired(run: Run) -> list[tuple[str, str, str]]:
    """(agent, tool, result) for every call, each result found by the call's correlation id."""
    results = {data["correlation_id"]: data for data in _events(run, "tool_result")}
    paired = []
    for call in _events(run, "tool_call"):
        assert call["correlation_id"].startswith("tool:")
        result = results[call["correlation_id"]]
        assert (result["sender"], result["receiver"]) == (call["receiver"], call["sender"])
        paired.append((call["agent"], call["name"], str(result["content"])))
    return paired


def test_there_is_a_test_below_for_every_template() -> None:
    assert set(INPUTS) == set(TEMPLATES)


def test_the_research_pipeline_calls_its_tools(personas: Personas, demo, executor) -> None:
    run = _run(personas, demo, "research_pipeline")
    paired = _tools_paired(run)
    assert not any("not a valid" in result for _, _, result in paired)
    assert {(agent, tool) for agent, tool, _ in paired} == {
        ("Researcher", "http_get"),
        ("Researcher", "current_time"),
        ("Analyst", "calculator"),
    }
    calls = {data["name"]: json.loads(data["arguments"]) for data in _events(run, "tool_call")}
    assert calls["http_get"] == {"url": "https://en.wikipedia.org/wiki/Urban_heat_islands"}
    assert calls["current_time"] == {"timezone": "UTC"}
    clock = next(result for _, tool, result in paired if tool == "current_time")
    assert json.loads(clock)["timezone"] == "UTC"
    writer = [text for who, text in _messages(run).items() if who.startswith("Writer")]
    assert writer and "urban heat islands" in writer[0].lower()


def test_parallel_research_runs_both_researchers_with_their_tools(
    personas: Personas, demo, executor
) -> None:
    run = _run(personas, demo, "parallel_research")
    tools = {(agent, tool) for agent, tool, _ in _tools_paired(run)}
    assert {("Source researcher", "http_get"), ("Critical researcher", "http_get")} <= tools
    assert ("Analyst", "calculator") in tools


def test_the_debate_goes_round_and_the_moderator_ends_it(
    personas: Personas, demo, executor
) -> None:
    run = _run(personas, demo, "round_robin_debate")
    speakers = [data["agent"] for data in _events(run, "message")]
    assert speakers[:3] == ["Optimist", "Skeptic", "Moderator"]
    assert speakers[-1] == "Moderator" and len(speakers) < 12
    assert "TERMINATE" in _events(run, "message")[-1]["text"]


def test_the_selector_names_a_member_and_the_engineer_computes(
    personas: Personas, demo, executor
) -> None:
    run = _run(personas, demo, "selector_team")
    chosen = [data for data in _events(run, "state") if data.get("speaker_name")]
    assert chosen and not any(data.get("fallback") for data in chosen)
    assert [data["speaker_name"] for data in chosen][:3] == ["Planner", "Engineer", "Reviewer"]
    # The sum in the task goes to the calculator (and only there: no web page for a sum).
    assert {(agent, tool, result) for agent, tool, result in _tools_paired(run)} == {
        ("Engineer", "calculator", "391")
    }


def test_triage_hands_the_customer_to_billing(personas: Personas, demo, executor) -> None:
    run = _run(personas, demo, "support_handoff")
    (handoff,) = _events(run, "handoff")
    assert (handoff["sender"], handoff["receiver"]) == ("Triage", "Billing support")
    accepted = [
        data
        for data in _events(run, "message")
        if data["correlation_id"] == handoff["correlation_id"]
    ]
    assert [data["agent"] for data in accepted] == ["Billing support"]
    assert run.output == accepted[0]["text"]
    assert "Transferred" not in run.output
    triage = _events(run, "message")[0]
    assert (triage["agent"], triage["text"]) == (
        "Triage",
        "Thanks for explaining. I am passing you to billing support, who can sort this out.",
    )


def test_the_panel_votes_with_valid_options(personas: Personas, demo, executor) -> None:
    run = _run(personas, demo, "panel_vote")
    ballots = [data for data in _events(run, "vote") if data.get("option") is not None]
    assert len(ballots) >= 3
    assert {ballot["option"] for ballot in ballots} <= {"adopt", "reject"}
    assert run.output in ("adopt", "reject")
    assert _events(run, "vote")[-1]["result"] == run.output
    assert ("Economist", "calculator") in {(a, t) for a, t, _ in _tools_paired(run)}


def test_the_council_commits_a_proposal(personas: Personas, demo, executor) -> None:
    run = _run(personas, demo, "council_decision")
    (decision,) = _events(run, "consensus")
    assert decision["committed"] is True and run.output == decision["proposal"]
    assert "saturdays" in str(run.output).lower()


def test_the_draft_waits_for_approval_and_is_published(personas: Personas, demo, executor) -> None:
    run = _run(personas, demo, "approved_draft")
    asked, answered = (
        _events(run, "human_request"),
        [data for data in _events(run, "message") if data.get("role") == "human"],
    )
    assert asked[0]["correlation_id"] == answered[0]["correlation_id"] == "ask:review"
    assert "heat pumps" in str(run.output).lower()


def test_an_llm_router_gets_a_route_it_has(personas: Personas, demo, executor) -> None:
    from tests.agents.factories import make_agent
    from workflows.graph.examples import edge, graph, node, text_variable
    from workflows.services.workflows import workflow_create, workflow_publish

    router = make_agent(personas.workspace, name="Router", provider=demo, role="a ticket router")
    the_graph = graph(
        nodes=[
            node("start", "start", 0, 0, input_mapping={"topic": "topic"}),
            node(
                "route",
                "router",
                200,
                0,
                mode="llm",
                agent_id=str(router.pk),
                routes=["sales", "billing", "technical"],
            ),
            *(
                node(name, "end", 400, index * 100)
                for index, name in enumerate(["sales", "billing", "technical"])
            ),
        ],
        edges=[edge("start", "route")]
        + [edge("route", name, name) for name in ("sales", "billing", "technical")],
        variables=[text_variable("topic")],
        output="route",
    )
    workflow = workflow_create(
        workspace=personas.workspace, user=personas.owner, name="Desk", graph=the_graph
    )
    workflow_publish(workflow=workflow, user=personas.owner)
    run = finished(
        run_start(workflow=workflow, user=personas.owner, inputs={"topic": "my invoice is wrong"}),
        timeout=60,
    )
    assert run.status == RunStatus.SUCCEEDED, run.reason
    (decision,) = _events(run, "router_decision")
    assert decision["route"] == "billing" and "default" not in decision["reason"]
    assert (decision["sender"], decision["receiver"]) == ("route", "billing")
