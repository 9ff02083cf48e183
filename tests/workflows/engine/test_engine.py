"""Run-level behaviour: control between and during steps, budgets, limits, errors, humans, load."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from tests.workflows.engine.conftest import NAMES, Harness, agent, chain, edge, graph, node, var
from workflows.engine import CANCELLED_REASON, HUMAN_TIMEOUT, LeaseLost
from workflows.engine.memory import InMemoryStore, MemoryRun, ScriptedAgents


def three_agents() -> dict[str, Any]:
    return chain(
        agent("one", "ann", "Start from {{ topic }}", output_variable="a"),
        agent("two", "bob", "Go on from {{ a }}", output_variable="b"),
        agent("three", "cy", "Finish {{ b }}", output_variable="c"),
        output="c",
        variables=[var("a"), var("b"), var("c")],
    )


@pytest.mark.asyncio
async def test_a_sequence_passes_variables_along_and_names_its_output(harness: Harness):
    harness.add(three_agents())
    outcome = await harness.run()
    assert outcome.status == "succeeded"
    assert outcome.output == "Cy @ three"
    prompts = [call.history[0]["content"] for call in harness.agents.calls]
    assert prompts == ["Start from tea", "Go on from Ann @ one", "Finish Bob @ two"]
    assert [event.kind for event in harness.events()] == ["message"] * 3


@pytest.mark.asyncio
async def test_cancel_between_steps_stops_before_the_next_step(harness: Harness):
    run = harness.add(three_agents())

    def cancel_after_first(memory: MemoryRun) -> None:
        memory.cancel = True

    run.after_complete = cancel_after_first
    outcome = await harness.run()
    assert (outcome.status, outcome.reason) == ("cancelled", CANCELLED_REASON)
    assert harness.agents.keys == ["one"]


@pytest.mark.asyncio
async def test_cancel_interrupts_the_step_in_flight(harness: Harness):
    run = harness.add(three_agents())
    blocked = asyncio.Event()

    async def slow_sleep(seconds: float) -> None:
        await blocked.wait()

    harness.agents = ScriptedAgents(NAMES, delay=60, sleep=slow_sleep)

    async def cancel_soon() -> None:
        while not harness.agents.calls:
            await asyncio.sleep(0)
        run.cancel = True

    canceller = asyncio.create_task(cancel_soon())
    outcome = await asyncio.wait_for(harness.run(heartbeat=0.001, sleep=asyncio.sleep), 5)
    await canceller
    assert outcome.status == "cancelled"
    assert run.failures == [("one", 1, "cancelled")]
    assert run.completed == {}


@pytest.mark.asyncio
async def test_a_token_budget_stops_the_run_with_a_reason(harness: Harness):
    harness.add(three_agents(), token_budget=20)
    outcome = await harness.run()
    assert outcome.status == "failed"
    assert outcome.reason == "Token budget of 20 exceeded (used 30)"
    assert harness.agents.keys == ["one", "two"]


@pytest.mark.asyncio
async def test_a_cost_budget_stops_the_run(harness: Harness):
    harness.add(three_agents(), cost_budget=Decimal("0.0015"))
    outcome = await harness.run()
    assert outcome.status == "failed"
    assert outcome.reason.startswith("Cost budget of $0.0015 exceeded")


@pytest.mark.asyncio
async def test_a_budget_pause_waits_for_approval_then_continues(harness: Harness):
    harness.add(three_agents(), token_budget=20, budget_action="pause")
    waiting = await harness.run()
    assert waiting.status == "waiting"
    assert list(harness.store.runs["r1"].waiting) == ["budget@1"]
    harness.store.answer("r1", "budget@1", {"approved": True})
    outcome = await harness.run()
    assert outcome.status == "succeeded"
    assert harness.agents.keys == ["one", "two", "three"]


@pytest.mark.asyncio
async def test_a_rejected_budget_pause_fails_the_run(harness: Harness):
    harness.add(three_agents(), token_budget=20, budget_action="pause")
    await harness.run()
    harness.store.answer("r1", "budget@1", "rejected")
    outcome = await harness.run()
    assert outcome.status == "failed"
    assert "continuing was rejected" in outcome.reason


@pytest.mark.asyncio
async def test_a_passed_deadline_fails_the_run(harness: Harness):
    harness.add(three_agents(), deadline=999.0)
    outcome = await harness.run()
    assert (outcome.status, outcome.reason) == ("failed", "Run timed out after 3600 s")
    assert harness.agents.calls == []


@pytest.mark.asyncio
async def test_max_steps_from_the_graph_settings_stops_a_run(harness: Harness):
    doc = three_agents()
    doc["settings"] = {"max_steps": 3}
    harness.add(doc)
    outcome = await harness.run()
    assert (outcome.status, outcome.reason) == ("failed", "Stopped after 3 steps (max_steps)")
    assert harness.agents.keys == ["one", "two"]


@pytest.mark.asyncio
async def test_the_engine_default_applies_when_the_graph_sets_no_max_steps(harness: Harness):
    harness.add(three_agents())
    outcome = await harness.run(max_steps_default=2)
    assert outcome.reason == "Stopped after 2 steps (max_steps)"


def flaky(failures: int) -> Any:
    seen: list[str] = []

    def reply(call: Any) -> Any:
        seen.append(call.step_key)
        if call.agent_id == "bob" and seen.count(call.step_key) <= failures:
            return RuntimeError("Provider said 503")
        return f"ok {call.step_key}"

    return reply


def with_policy(**policy: Any) -> dict[str, Any]:
    doc = three_agents()
    doc["nodes"][2]["config"]["error_policy"] = policy
    return doc


@pytest.mark.asyncio
async def test_retry_backs_off_exponentially_then_succeeds(harness: Harness):
    harness.add(with_policy(action="retry", retries=3, backoff_s=2))
    harness.agents = ScriptedAgents(NAMES, flaky(2))
    outcome = await harness.run()
    assert outcome.status == "succeeded"
    assert harness.sleeps == [2, 4]
    run = harness.store.runs["r1"]
    assert [failure[:2] for failure in run.failures] == [("two", 1), ("two", 2)]
    assert run.started[1:4] == [("two", 1), ("two", 2), ("two", 3)]


@pytest.mark.asyncio
async def test_retries_exhausted_fail_the_run_naming_the_node(harness: Harness):
    harness.add(with_policy(action="retry", retries=1, backoff_s=1))
    harness.agents = ScriptedAgents(NAMES, flaky(5))
    outcome = await harness.run()
    assert outcome.status == "failed"
    assert outcome.reason == "Node 'two' failed: Provider said 503"


@pytest.mark.asyncio
async def test_the_default_policy_continues_with_the_default_value(harness: Harness):
    harness.add(with_policy(action="default", default_value="(none)"))
    harness.agents = ScriptedAgents(NAMES, flaky(5))
    outcome = await harness.run()
    assert outcome.status == "succeeded"
    assert harness.agents.calls[-1].history[0]["content"] == "Finish (none)"
    assert harness.store.runs["r1"].completed["two"].output == "(none)"


@pytest.mark.asyncio
async def test_the_error_branch_carries_the_error_text(harness: Harness):
    doc = graph(
        [
            node("start", "start", 0, 0),
            agent("risky", "bob", error_policy={"action": "error_branch"}),
            agent("fine", "ann"),
            agent("recover", "cy", "Recover from: {{ input }}"),
            node("end", "end", 0, 0),
        ],
        [
            edge("start", "risky"),
            edge("risky", "fine"),
            edge("risky", "recover", "error"),
            edge("fine", "end"),
            edge("recover", "end"),
        ],
    )
    harness.add(doc)
    harness.agents = ScriptedAgents(NAMES, flaky(5))
    outcome = await harness.run()
    assert outcome.status == "succeeded"
    assert harness.agents.calls[-1].history[0]["content"] == "Recover from: Provider said 503"
    assert [event.kind for event in harness.events()] == ["node_failed", "message"]


@pytest.mark.asyncio
async def test_a_lost_lease_stops_the_run_without_further_writes(harness: Harness):
    run = harness.add(three_agents())

    def lose_lease(memory: MemoryRun) -> None:
        memory.lease_held = False

    run.after_complete = lose_lease
    with pytest.raises(LeaseLost):
        await harness.run()
    assert run.writes == 2  # step_started and step_completed of the first step
    assert harness.agents.keys == ["one"]


@pytest.mark.asyncio
async def test_a_lease_lost_while_a_step_runs_stops_it_silently(harness: Harness):
    run = harness.add(three_agents())
    blocked = asyncio.Event()

    async def slow_sleep(seconds: float) -> None:
        await blocked.wait()

    harness.agents = ScriptedAgents(NAMES, delay=60, sleep=slow_sleep)

    async def drop_soon() -> None:
        while not harness.agents.calls:
            await asyncio.sleep(0)
        run.lease_held = False

    dropper = asyncio.create_task(drop_soon())
    with pytest.raises(LeaseLost):
        await asyncio.wait_for(harness.run(heartbeat=0.001, sleep=asyncio.sleep), 5)
    await dropper
    assert run.writes == 1 and run.failures == []


def approval_graph(**human: Any) -> dict[str, Any]:
    return graph(
        [
            node("start", "start", 0, 0),
            agent("draft", "ann"),
            node("check", "human", 0, 0, prompt="Ship {{ input }}?", kind="approval", **human),
            agent("ship", "bob", "Ship it"),
            agent("redo", "cy", "Redo it"),
            node("end", "end", 0, 0),
        ],
        [
            edge("start", "draft"),
            edge("draft", "check"),
            edge("check", "ship", "approved"),
            edge("check", "redo", "rejected"),
            edge("ship", "end"),
            edge("redo", "end"),
        ],
    )


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("answer", "expected"),
    [(True, "ship"), ({"approved": False, "comment": "no"}, "redo"), ("approved", "ship")],
)
async def test_an_approval_waits_then_resumes_down_the_answered_branch(
    harness: Harness, answer: Any, expected: str
):
    harness.add(approval_graph())
    waiting = await harness.run()
    assert waiting.status == "waiting"
    run = harness.store.runs["r1"]
    assert run.waiting["check"]["prompt"] == "Ship Ann @ draft?"
    harness.store.answer("r1", "check", answer)
    outcome = await harness.run()
    assert outcome.status == "succeeded"
    assert harness.agents.keys == ["draft", expected]
    assert [event.kind for event in harness.events()] == [
        "message",
        "human_request",
        "message",
        "message",
    ]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("policy", "expected"), [("approve", "succeeded"), ("reject", "succeeded"), ("fail", "failed")]
)
async def test_a_human_timeout_applies_its_policy(harness: Harness, policy: str, expected: str):
    harness.add(approval_graph(timeout_s=60, on_timeout=policy))
    await harness.run()
    harness.store.answer("r1", "check", HUMAN_TIMEOUT)
    outcome = await harness.run()
    assert outcome.status == expected
    if policy == "fail":
        assert outcome.reason == "Node 'check' failed: No answer within 60 s"
    else:
        assert harness.agents.keys[-1] == ("ship" if policy == "approve" else "redo")


@pytest.mark.asyncio
async def test_a_human_input_feeds_the_next_node(harness: Harness):
    doc = chain(
        node("ask", "human", 0, 0, prompt="Which angle?", output_variable="angle"),
        agent("write", "ann", "Write about {{ topic }} from {{ angle }}"),
        variables=[var("angle")],
    )
    harness.add(doc)
    assert (await harness.run()).status == "waiting"
    harness.store.answer("r1", "ask", "history")
    assert (await harness.run()).status == "succeeded"
    assert harness.agents.calls[0].history[0]["content"] == "Write about tea from history"


@pytest.mark.asyncio
async def test_reducers_append_and_merge(harness: Harness):
    doc = chain(
        agent("one", "ann", output_variable="notes"),
        agent("two", "bob", output_variable="notes"),
        node(
            "tool",
            "tool",
            0,
            0,
            tool="lookup",
            arguments={"q": "{{ topic }}"},
            output_variable="meta",
        ),
        output="{{ notes }} | {{ meta.q }}",
        variables=[var("notes", "array", "append"), var("meta", "object", "merge")],
    )
    harness.add(doc)
    outcome = await harness.run()
    assert outcome.output == '["Ann @ one", "Bob @ two"] | tea'


@pytest.mark.asyncio
async def test_an_invalid_graph_fails_with_a_reason(harness: Harness):
    harness.add({"nodes": "nope"})
    outcome = await harness.run()
    assert outcome.status == "failed"
    assert outcome.reason.startswith("The workflow graph cannot run")


@pytest.mark.asyncio
async def test_two_hundred_runs_share_one_loop():
    in_flight = peak = 0

    async def model_call_wait(seconds: float) -> None:
        # Counts the calls waiting on "the provider" at once: the measure of sharing the loop,
        # which a stopwatch on a shared machine is not.
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            await asyncio.sleep(seconds)
        finally:
            in_flight -= 1

    store = InMemoryStore()
    agents = ScriptedAgents(NAMES, delay=0.2, sleep=model_call_wait)
    harness = Harness(store=store, agents=agents)
    for index in range(200):
        harness.add(three_agents(), run_id=f"run-{index}")
    engine = harness.engine(sleep=asyncio.sleep, heartbeat=1.0)
    outcomes = await asyncio.gather(*(engine.run(f"run-{index}") for index in range(200)))
    assert {outcome.status for outcome in outcomes} == {"succeeded"}
    assert len(agents.calls) == 600
    # One run at a time would have one call in flight; sharing the loop, the runs wait together.
    assert peak >= 150, peak


def two_branches(left: dict[str, Any]) -> dict[str, Any]:
    return graph(
        [
            node("start", "start", 0, 0),
            node("fan", "parallel", 0, 0),
            left,
            agent("right", "bob"),
            node("join", "join", 0, 0, strategy="list"),
            node("end", "end", 0, 0),
        ],
        [
            edge("start", "fan"),
            edge("fan", left["id"]),
            edge("fan", "right"),
            edge(left["id"], "join"),
            edge("right", "join"),
            edge("join", "end"),
        ],
    )


@pytest.mark.asyncio
async def test_a_human_in_one_branch_waits_while_the_other_finishes(harness: Harness):
    harness.add(two_branches(node("ask", "human", 0, 0, prompt="Angle?")))
    assert (await harness.run()).status == "waiting"
    run = harness.store.runs["r1"]
    assert set(run.completed) == {"right[1]"} and list(run.waiting) == ["ask[0]"]
    harness.store.answer("r1", "ask[0]", "mine")
    outcome = await harness.run()
    assert outcome.output == ["mine", "Bob @ right[1]"]
    assert harness.agents.keys == ["right[1]"]


@pytest.mark.asyncio
async def test_a_lease_lost_in_a_branch_stops_its_siblings_without_writes(harness: Harness):
    run = harness.add(two_branches(agent("left", "ann")))
    hang = asyncio.Event()
    agents = ScriptedAgents(NAMES)
    original = agents.turn

    async def turn(**kwargs: Any) -> Any:
        if kwargs["agent_id"] == "bob":
            run.lease_held = False  # another worker took the run over
            await hang.wait()
        while run.lease_held:
            await asyncio.sleep(0)
        return await original(**kwargs)

    agents.turn = turn  # type: ignore[method-assign]
    harness.agents = agents
    with pytest.raises(LeaseLost):
        await asyncio.wait_for(harness.run(), 5)
    assert run.failures == [] and run.completed == {}
    assert run.writes == 2  # the two step_started calls, before the lease was lost


@pytest.mark.asyncio
async def test_the_transcript_names_who_answered_and_says_what_they_decided(harness: Harness):
    harness.add(approval_graph())
    await harness.run()
    harness.store.answer("r1", "check", {"approved": False, "comment": "too long"}, by="olivia")
    await harness.run()

    (answer,) = [event.data for event in harness.events(kind="message") if event.data.get("role")]
    assert answer == {
        "agent": "olivia",
        "role": "human",
        "text": "Rejected: too long",
        # The answer shares its correlation id with the question it answers.
        "type": "message",
        "sender": "olivia",
        "receiver": None,
        "correlation_id": "ask:check",
    }
    (asked,) = harness.events(kind="human_request")
    assert (asked.data["correlation_id"], asked.data["receiver"]) == ("ask:check", "person")


@pytest.mark.asyncio
async def test_a_timed_out_approval_says_no_one_answered(harness: Harness):
    harness.add(approval_graph(timeout_s=60, on_timeout="approve"))
    await harness.run()
    harness.store.answer("r1", "check", HUMAN_TIMEOUT)
    await harness.run()

    (answer,) = [event.data for event in harness.events(kind="message") if event.data.get("role")]
    assert answer["agent"] == "no answer"
    assert answer["text"] == "No answer within 60 s, so: Approved."
