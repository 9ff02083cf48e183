"""Crash anywhere, resume with a fresh Engine: every completed step happens exactly once."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tests.workflows.engine.conftest import (
    NAMES,
    Harness,
    agent,
    chain,
    edge,
    event_signature,
    graph,
    node,
    var,
)
from workflows.engine import Engine
from workflows.engine.memory import (
    AgentCall,
    ProcessDied,
    Scripted,
    ScriptedAgents,
    transfer_call,
)


def sequence() -> dict[str, Any]:
    return chain(
        agent("research", "ann", "Research {{ topic }}", output_variable="findings"),
        agent("analysis", "bob", "Analyse {{ findings }}", output_variable="analysis"),
        agent("writing", "cy", "Write {{ analysis }}", output_variable="report"),
        output="report",
        variables=[var("findings"), var("analysis"), var("report")],
    )


def parallel() -> dict[str, Any]:
    return graph(
        [
            node("start", "start", 0, 0),
            node("fan", "parallel", 0, 0),
            agent("a", "ann", "A {{ topic }}"),
            agent("a2", "bob", "A2 {{ input }}"),
            agent("b", "cy", "B {{ topic }}"),
            node("join", "join", 0, 0, strategy="concatenate", output_variable="notes"),
            agent("final", "dee", "Sum {{ notes }}"),
            node("end", "end", 0, 0),
        ],
        [
            edge("start", "fan"),
            edge("fan", "a"),
            edge("a", "a2"),
            edge("fan", "b"),
            edge("a2", "join"),
            edge("b", "join"),
            edge("join", "final"),
            edge("final", "end"),
        ],
        [var("notes")],
    )


def loop() -> dict[str, Any]:
    return graph(
        [
            node("start", "start", 0, 0),
            node("again", "loop", 0, 0, max_iterations=3),
            agent("draft", "ann", "Draft {{ input }}"),
            agent("review", "bob", "Review {{ input }}"),
            node("end", "end", 0, 0),
        ],
        [
            edge("start", "again"),
            edge("again", "draft", "loop"),
            edge("draft", "review"),
            edge("review", "again"),
            edge("again", "end", "done"),
        ],
    )


def group_chat() -> dict[str, Any]:
    chat = node(
        "chat",
        "group_chat",
        0,
        0,
        members=["ann", "bob", "cy"],
        termination={"max_messages": 5},
        output_variable="last",
    )
    return chain(chat, output="last", variables=[var("last")])


def vote() -> dict[str, Any]:
    poll = node(
        "poll",
        "vote",
        0,
        0,
        voters=["ann", "bob", "cy"],
        question="{{ topic }}?",
        options=["yes", "no"],
        output_variable="decision",
    )
    return chain(agent("prep", "dee"), poll, output="decision", variables=[var("decision")])


def consensus() -> dict[str, Any]:
    # Term 1 rejected, term 2's proposer fails, Cy (most acceptances) is elected and commits.
    agree = node("agree", "consensus", 0, 0, proposer_agent_id="ann", members=["bob", "cy", "dee"])
    return chain(agree, agent("after", "sel"))


def consensus_by_vote() -> dict[str, Any]:
    # As above, but the members elect the new proposer by a ballot of their own.
    agree = node(
        "agree",
        "consensus",
        0,
        0,
        proposer_agent_id="ann",
        members=["bob", "cy", "dee"],
        election="vote",
    )
    return chain(agree, agent("after", "sel"))


def handoff() -> dict[str, Any]:
    desk = node("desk", "handoff", 0, 0, agents=["ann", "bob", "cy"], start_agent="ann")
    return chain(desk, agent("after", "dee"))


def scripted(call: AgentCall) -> Any:
    if call.step_key == "desk/agent-0-0":
        return Scripted("to Bob", tool_calls=[transfer_call("Bob")])
    if call.step_key == "desk/agent-1-1":
        return Scripted("to Cy", tool_calls=[transfer_call("Cy")])
    if call.step_key.startswith("poll/voter-"):
        return '{"option": "yes", "reason": "fine"}'
    if call.step_key == "agree/term-2/propose":
        return RuntimeError("the proposer's provider is down")
    if call.step_key in ("agree/term-1/member-0", "agree/term-1/member-2"):
        return '{"decision": "reject", "reason": "too vague"}'
    if "/elect-" in call.step_key:
        return '{"candidate": "Cy", "reason": "steady"}'
    if "/member-" in call.step_key:
        return '{"decision": "accept", "reason": "fine"}'
    return f"{NAMES[call.agent_id]} @ {call.step_key}"


SHAPES = {
    "sequence": (sequence, 3),
    "parallel": (parallel, 4),
    "loop": (loop, 6),
    "chat": (group_chat, 5),
    "vote": (vote, 4),
    "handoff": (handoff, 4),
    "consensus": (consensus, 9),
    "consensus_by_vote": (consensus_by_vote, 12),
}
CASES = [(name, point) for name, (_, calls) in SHAPES.items() for point in range(1, calls + 1)]


async def uninterrupted(shape: str) -> tuple[Harness, Any]:
    reference = Harness(agents=ScriptedAgents(NAMES, scripted))
    reference.add(SHAPES[shape][0]())
    outcome = await reference.run()
    assert outcome.status == "succeeded", outcome.reason
    assert len(reference.agents.calls) == SHAPES[shape][1]
    return reference, outcome


@pytest.mark.asyncio
@pytest.mark.parametrize(("shape", "crash_at"), CASES)
async def test_a_resumed_run_does_each_completed_step_once(shape: str, crash_at: int):
    reference, expected = await uninterrupted(shape)
    harness = Harness()
    harness.add(SHAPES[shape][0]())
    harness.agents = ScriptedAgents(NAMES, scripted, crash_at=crash_at)
    with pytest.raises(ProcessDied):
        await harness.run()
    crashed_key = harness.agents.keys[crash_at - 1]
    first_calls = harness.agents.keys
    done_before = set(harness.store.runs["r1"].completed)
    assert crashed_key not in done_before

    resumed_agents = ScriptedAgents(NAMES, scripted)
    outcome = await Engine(
        harness.store,
        resumed_agents,
        harness.tools,
        harness.subworkflows,
        harness.live,
        heartbeat=None,
    ).run("r1")

    assert outcome.status == "succeeded", outcome.reason
    assert outcome.output == expected.output
    # Steps recorded before the crash are never called again; the rest exactly once more
    # (in a parallel, a sibling in flight at the crash is interrupted too).
    expected_keys = Counter(reference.agents.keys)
    assert max(Counter(first_calls).values()) == 1
    called_before = done_before & set(expected_keys)  # joins and chat summaries call nobody
    assert called_before <= set(first_calls)
    assert Counter(resumed_agents.keys) == expected_keys - Counter(called_before)
    assert crashed_key in resumed_agents.keys
    run = harness.store.runs["r1"]
    assert set(run.completed) == set(reference.store.runs["r1"].completed)
    stored = [event for event in run.events if event.kind != "node_failed"]
    assert event_signature(stored) == event_signature(reference.store.runs["r1"].events)
    assert [event.seq for event in run.events] == list(range(1, len(run.events) + 1))


@pytest.mark.asyncio
async def test_a_finished_run_replays_without_any_call(harness: Harness):
    harness.add(sequence())
    first = await harness.run()
    events = len(harness.events())
    calls = len(harness.agents.calls)
    again = await harness.run()
    assert again == first
    assert len(harness.agents.calls) == calls
    assert len(harness.events()) == events


@pytest.mark.asyncio
async def test_a_step_that_died_mid_way_is_started_again(harness: Harness):
    harness.add(sequence())
    harness.agents = ScriptedAgents(NAMES, crash_at=2)
    with pytest.raises(ProcessDied):
        await harness.run()
    harness.agents = ScriptedAgents(NAMES)
    await harness.run()
    started = [key for key, _ in harness.store.runs["r1"].started]
    assert started == ["research", "analysis", "analysis", "writing"]


@pytest.mark.asyncio
async def test_a_duplicate_completion_keeps_the_stored_record(harness: Harness):
    """Another process finished the step first: its record wins, nothing is stored twice."""
    harness.add(sequence())
    store = harness.store
    original = store.step_completed

    async def racing(run_id: str, record: Any, events: Any) -> bool:
        if record.key == "analysis":
            from dataclasses import replace

            await original(
                run_id, replace(record, output="theirs", variables={"analysis": "theirs"}), []
            )
        return await original(run_id, record, events)

    store.step_completed = racing  # type: ignore[method-assign]
    outcome = await harness.run()
    assert outcome.status == "succeeded"
    assert store.runs["r1"].completed["analysis"].output == "theirs"
    assert harness.agents.calls[-1].history[0]["content"] == "Write theirs"
