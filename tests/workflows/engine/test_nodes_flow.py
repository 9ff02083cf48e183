"""parallel and join, router, loop and sub-workflow nodes."""

from __future__ import annotations

from typing import Any

import pytest

from tests.workflows.engine.conftest import NAMES, Harness, agent, chain, edge, graph, node, var
from workflows.engine import RunFailed
from workflows.engine.contracts import SubrunWaiting
from workflows.engine.memory import ScriptedAgents


def fan_out(strategy: str, *, policy: dict[str, Any] | None = None, **join: Any) -> dict[str, Any]:
    risky = agent("b", "bob", "B", **({"error_policy": policy} if policy else {}))
    return graph(
        [
            node("start", "start", 0, 0),
            node("fan", "parallel", 0, 0),
            agent("a", "ann", "A"),
            risky,
            agent("c", "cy", "C"),
            node("join", "join", 0, 0, strategy=strategy, output_variable="merged", **join),
            node("end", "end", 0, 0, output="merged"),
        ],
        [
            edge("start", "fan"),
            edge("fan", "a"),
            edge("fan", "b"),
            edge("fan", "c"),
            edge("a", "join"),
            edge("b", "join"),
            edge("c", "join"),
            edge("join", "end"),
        ],
        [var("merged", "array") if strategy == "list" else var("merged")],
    )


def slow_first(call: Any) -> Any:
    # "a" answers last in time order; outputs must still come in branch order.
    return f"{call.agent_id} done"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        ("concatenate", "ann done\n\nbob done\n\ncy done"),
        ("list", ["ann done", "bob done", "cy done"]),
        ("first_success", "ann done"),
    ],
)
async def test_a_join_merges_branches_in_branch_order(
    harness: Harness, strategy: str, expected: Any
):
    harness.add(fan_out(strategy))
    harness.agents = ScriptedAgents(NAMES, slow_first)
    outcome = await harness.run()
    assert outcome.output == expected
    assert set(harness.agents.keys) == {"a[0]", "b[1]", "c[2]"}
    assert "join" in harness.store.runs["r1"].completed


@pytest.mark.asyncio
async def test_first_success_tolerates_failed_branches(harness: Harness):
    harness.add(fan_out("first_success"))
    harness.agents = ScriptedAgents(
        NAMES, lambda call: RuntimeError("down") if call.agent_id == "ann" else "fine"
    )
    outcome = await harness.run()
    assert (outcome.status, outcome.output) == ("succeeded", "fine")


@pytest.mark.asyncio
async def test_a_failing_branch_fails_the_run_and_cancels_its_siblings(harness: Harness):
    import asyncio

    harness.add(fan_out("list"))
    gate = asyncio.Event()

    async def sleep(seconds: float) -> None:
        await gate.wait()

    def reply(call: Any) -> Any:
        return RuntimeError("down") if call.agent_id == "bob" else "fine"

    agents = ScriptedAgents(NAMES, reply, delay=1, sleep=sleep)
    # Only bob answers at once; the others wait until cancelled.
    original = agents.turn

    async def turn(**kwargs: Any) -> Any:
        if kwargs["agent_id"] == "bob":
            raise RuntimeError("down")
        return await original(**kwargs)

    agents.turn = turn  # type: ignore[method-assign]
    harness.agents = agents
    outcome = await harness.run()
    assert (outcome.status, outcome.reason) == ("failed", "Node 'b' failed: down")
    failures = {key: error for key, _, error in harness.store.runs["r1"].failures}
    assert failures == {"a[0]": "cancelled", "b[1]": "down", "c[2]": "cancelled"}


@pytest.mark.asyncio
async def test_llm_summary_asks_an_agent(harness: Harness):
    harness.add(fan_out("llm_summary", agent_id="dee"))
    outcome = await harness.run()
    assert outcome.output == "Dee @ join"
    assert "Result 3:\nCy @ c[2]" in harness.agents.calls[-1].history[0]["content"]


@pytest.mark.asyncio
async def test_an_end_inside_a_branch_ends_the_run_after_its_siblings(harness: Harness):
    doc = graph(
        [
            node("start", "start", 0, 0),
            node("fan", "parallel", 0, 0),
            agent("a", "ann"),
            agent("b", "bob"),
            node("early", "end", 0, 0),
            node("late", "end", 0, 0),
        ],
        [
            edge("start", "fan"),
            edge("fan", "a"),
            edge("fan", "b"),
            edge("a", "early"),
            edge("b", "late"),
        ],
    )
    harness.add(doc)
    outcome = await harness.run()
    assert outcome.output == "Ann @ a[0]"
    assert sorted(harness.agents.keys) == ["a[0]", "b[1]"]


def routed(**router: Any) -> dict[str, Any]:
    return graph(
        [
            node("start", "start", 0, 0),
            agent("ask", "ann"),
            node("route", "router", 0, 0, routes=["tech", "other"], **router),
            agent("tech", "bob", "Tech: {{ input }}"),
            agent("other", "cy", "Other: {{ input }}"),
            node("end", "end", 0, 0),
        ],
        [
            edge("start", "ask"),
            edge("ask", "route"),
            edge("route", "tech", "tech"),
            edge("route", "other", "other"),
            edge("tech", "end"),
            edge("other", "end"),
        ],
        [var("score", "number")],
    )


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("reply", "rule", "expected"),
    [
        ("about GPUs", {"operator": "contains", "value": "GPU"}, "tech"),
        ("about tea", {"operator": "contains", "value": "GPU"}, "other"),
        ("v2.1 out", {"operator": "regex", "value": r"v\d+\.\d+"}, "tech"),
        ("tech", {"operator": "equals", "value": "tech"}, "tech"),
        ('{"score": 9}', {"operator": "json_field_gt", "field": "score", "value": 5}, "tech"),
        ('{"score": 1}', {"operator": "json_field_gt", "field": "score", "value": 5}, "other"),
        (
            '{"a": {"b": "x"}}',
            {"operator": "json_field_equals", "field": "a.b", "value": "x"},
            "tech",
        ),
    ],
)
async def test_router_rules_pick_the_first_match_or_the_default(
    harness: Harness, reply: str, rule: dict[str, Any], expected: str
):
    harness.add(routed(rules=[{"route": "tech", **rule}], default_route="other"))
    harness.agents = ScriptedAgents(NAMES, {"ann": [reply]})
    outcome = await harness.run()
    assert outcome.status == "succeeded"
    assert harness.agents.keys[-1] == expected
    decision = harness.events(kind="router_decision")[0]
    assert decision.data["route"] == expected and decision.data["reason"]
    assert harness.agents.calls[-1].history[0]["content"].endswith(reply)


@pytest.mark.asyncio
async def test_a_router_without_match_or_default_fails(harness: Harness):
    harness.add(routed(rules=[{"route": "tech", "operator": "contains", "value": "zzz"}]))
    outcome = await harness.run()
    assert outcome.reason == "Node 'route' failed: no rule matched, and there is no default route"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("answer", "expected", "fallback"),
    [("tech", "tech", False), ("I'd say **other**.", "other", False), ("dunno", "other", True)],
)
async def test_an_llm_router_follows_the_named_route(
    harness: Harness, answer: str, expected: str, fallback: bool
):
    harness.add(routed(mode="llm", agent_id="dee", default_route="other"))
    harness.agents = ScriptedAgents(NAMES, {"dee": [answer]})
    await harness.run()
    assert harness.agents.keys == ["ask", "route", expected]
    assert "tech, other" in harness.agents.calls[1].instructions
    reason = harness.events(kind="router_decision")[0].data["reason"]
    assert ("default route" in reason) is fallback


def looped(**loop: Any) -> dict[str, Any]:
    return graph(
        [
            node("start", "start", 0, 0),
            node("again", "loop", 0, 0, **loop),
            agent("draft", "ann", "Improve {{ input }}", output_variable="count"),
            node("end", "end", 0, 0),
        ],
        [
            edge("start", "again"),
            edge("again", "draft", "loop"),
            edge("draft", "again"),
            edge("again", "end", "done"),
        ],
        [var("count")],
    )


@pytest.mark.asyncio
async def test_a_loop_runs_max_iterations_with_the_iteration_in_its_keys(harness: Harness):
    harness.add(looped(max_iterations=3))
    outcome = await harness.run()
    assert harness.agents.keys == ["draft@again:0", "draft@again:1", "draft@again:2"]
    assert outcome.output == "Ann @ draft@again:2"
    assert harness.agents.calls[1].history[0]["content"] == "Improve Ann @ draft@again:0"


@pytest.mark.asyncio
async def test_a_loop_stops_when_the_text_is_mentioned(harness: Harness):
    harness.add(looped(max_iterations=5, condition={"kind": "text_mention", "value": "DONE"}))
    harness.agents = ScriptedAgents(NAMES, {"ann": ["more", "DONE now"]})
    outcome = await harness.run()
    assert outcome.output == "DONE now"
    assert len(harness.agents.calls) == 2


@pytest.mark.asyncio
async def test_a_loop_stops_on_a_variable_predicate(harness: Harness):
    condition = {"kind": "variable_predicate", "variable": "count", "operator": "gte", "value": 2}
    harness.add(looped(max_iterations=5, condition=condition))
    harness.agents = ScriptedAgents(NAMES, {"ann": ["0", "1", "2", "3"]})
    outcome = await harness.run()
    assert outcome.output == "2"


@pytest.mark.asyncio
async def test_nested_loops_compose_their_keys(harness: Harness):
    doc = graph(
        [
            node("start", "start", 0, 0),
            node("outer", "loop", 0, 0, max_iterations=2),
            node("inner", "loop", 0, 0, max_iterations=2),
            agent("work", "ann"),
            node("end", "end", 0, 0),
        ],
        [
            edge("start", "outer"),
            edge("outer", "inner", "loop"),
            edge("inner", "work", "loop"),
            edge("work", "inner"),
            edge("inner", "outer", "done"),
            edge("outer", "end", "done"),
        ],
    )
    harness.add(doc)
    await harness.run()
    assert harness.agents.keys == [
        "work@outer:0@inner:0",
        "work@outer:0@inner:1",
        "work@outer:1@inner:0",
        "work@outer:1@inner:1",
    ]


def sub(**config: Any) -> dict[str, Any]:
    return chain(
        node(
            "child",
            "subworkflow",
            0,
            0,
            workflow_id="wf-2",
            input_mapping={"subject": "{{ topic }}", "n": "{{ n }}"},
            **{"output_mapping": {"summary": "summary"}, **config},
        ),
        output="summary",
        variables=[var("summary"), var("n", "integer")],
    )


@pytest.mark.asyncio
async def test_a_subworkflow_maps_inputs_and_outputs(harness: Harness):
    harness.add(sub(), depth=1)
    harness.subworkflows.outputs["wf-2"] = {"summary": "short"}
    outcome = await harness.run()
    assert outcome.output == "short"
    assert harness.subworkflows.calls == [
        {
            "workflow_id": "wf-2",
            "inputs": {"subject": "tea", "n": None},
            "step_key": "child",
            "depth": 2,
        }
    ]


@pytest.mark.asyncio
async def test_a_subworkflow_beyond_max_depth_is_refused(harness: Harness):
    harness.add(sub(max_depth=2), depth=2)
    outcome = await harness.run()
    assert outcome.status == "failed"
    assert "would run at depth 3, beyond max_depth 2" in outcome.reason
    assert harness.subworkflows.calls == []


@pytest.mark.asyncio
async def test_a_failed_subworkflow_is_a_node_error(harness: Harness):
    harness.add(sub())
    harness.subworkflows.outputs["wf-2"] = RunFailed("child broke")
    outcome = await harness.run()
    assert outcome.reason == "Node 'child' failed: Sub-workflow 'wf-2' failed: child broke"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("mapping", "output", "expected"),
    [
        ({"*": "summary"}, "a plain text", "a plain text"),
        ({"output": "summary"}, "a plain text", "a plain text"),
        ({"output": "summary"}, ["a", "list"], ["a", "list"]),
        ({"*": "summary"}, {"whole": 1}, {"whole": 1}),
        ({"report.title": "summary"}, {"report": {"title": "deep"}}, "deep"),
        ({"output": "summary"}, {"output": "the field"}, "the field"),
    ],
)
async def test_a_subworkflow_output_of_any_type_maps_back(
    harness: Harness, mapping: dict[str, str], output: Any, expected: Any
):
    harness.add(sub(output_mapping=mapping))
    harness.subworkflows.outputs["wf-2"] = output
    outcome = await harness.run()
    assert outcome.status == "succeeded", outcome.reason
    assert outcome.output == expected
    assert not harness.events(kind="log")


@pytest.mark.asyncio
async def test_a_mapping_the_output_does_not_have_is_a_warning_not_a_null(harness: Harness):
    harness.add(sub())
    harness.subworkflows.outputs["wf-2"] = "only text"
    outcome = await harness.run()
    assert outcome.status == "succeeded"
    (warning,) = harness.events(kind="log")
    assert "(a str) has no 'summary'" in warning.data["message"]


@pytest.mark.asyncio
async def test_a_waiting_child_makes_the_parent_wait_with_its_question_then_resume(
    harness: Harness,
):
    run = harness.add(sub())
    question = {"step_key": "ask", "kind": "input", "prompt": "Which angle?", "since": "x"}
    harness.subworkflows.outputs["wf-2"] = SubrunWaiting("child-1", question)
    outcome = await harness.run()
    assert outcome.status == "waiting"
    assert run.waiting["child"] == {
        "kind": "input",
        "prompt": "Which angle?",
        "node_id": "child",
        "child_run_id": "child-1",
        "child_step_key": "ask",
    }
    (asked,) = harness.events(kind="human_request")
    assert asked.data["child_run_id"] == "child-1"
    # The child answered and finished: the parent's replay takes its output.
    harness.subworkflows.outputs["wf-2"] = {"summary": "done"}
    outcome = await harness.run()
    assert outcome.status == "succeeded" and outcome.output == "done"
    assert [call["step_key"] for call in harness.subworkflows.calls] == ["child", "child"]
