"""start, end, agent and tool nodes, and templates."""

from __future__ import annotations

import pytest

from tests.workflows.engine.conftest import Harness, agent, chain, node, var
from workflows.engine import render
from workflows.engine.memory import ScriptedAgents
from workflows.engine.templating import render_value


def test_templates_reach_nested_fields_and_report_missing_names():
    rendered = render(
        "{{ a }} {{ b.c.0 }} {{ nope }} {{ j.x }}", {"a": 1, "b": {"c": ["z"]}, "j": '{"x": 2}'}
    )
    assert rendered.text == "1 z  2"
    assert rendered.missing == ("nope",)


def test_templates_never_evaluate():
    assert render("{{ __import__('os') }}", {}).text == "{{ __import__('os') }}"


def test_a_lone_placeholder_keeps_its_type():
    missing: list[str] = []
    value = render_value({"n": "{{ n }}", "s": "n={{ n }}", "l": ["{{ gone }}"]}, {"n": 3}, missing)
    assert value == {"n": 3, "s": "n=3", "l": [None]}
    assert missing == ["gone"]


@pytest.mark.asyncio
async def test_start_maps_inputs_and_end_renders_a_template(harness: Harness):
    doc = chain(output="About {{ subject }}!", variables=[var("subject")])
    doc["nodes"][0]["config"]["input_mapping"] = {"topic": "subject"}
    harness.add(doc)
    outcome = await harness.run()
    assert (outcome.status, outcome.output) == ("succeeded", "About tea!")


@pytest.mark.asyncio
async def test_the_first_agent_reads_the_inputs_as_text_not_json(harness: Harness):
    harness.add(chain(agent("one", "ann")), inputs={"topic": "green roofs"})
    await harness.run()
    assert harness.agents.calls[0].history == [{"role": "user", "content": "green roofs"}]
    harness.add(chain(agent("one", "ann")), "r2", inputs={"topic": "green roofs", "pages": 3})
    await harness.run("r2")
    prompt = harness.agents.calls[1].history[0]["content"]
    assert prompt == "topic: green roofs\npages: 3"


@pytest.mark.asyncio
async def test_the_graph_output_may_name_a_node(harness: Harness):
    harness.add(chain(agent("one", "ann"), agent("two", "bob"), output=None))
    harness.store.runs["r1"].graph["output"] = "one"  # type: ignore[index]
    outcome = await harness.run()
    assert outcome.output == "Ann @ one"


@pytest.mark.asyncio
async def test_an_agent_turn_streams_deltas_and_records_one_message(harness: Harness):
    from workflows.engine.memory import Scripted

    doc = chain(agent("one", "ann", "Hi {{ topic }} {{ missing }}", instructions="Be {{ topic }}"))
    harness.add(doc)
    harness.agents = ScriptedAgents(
        {"ann": "Ann"}, {"ann": [Scripted("Hello there", deltas=("Hel", "lo there"))]}
    )
    outcome = await harness.run()
    assert outcome.output == "Hello there"
    call = harness.agents.calls[0]
    assert (call.history, call.instructions) == ([{"role": "user", "content": "Hi tea "}], "Be tea")
    assert [delta[3] for delta in harness.live.deltas] == ["Hel", "lo there"]
    log, message = harness.events()
    assert log.kind == "log" and "missing" in log.data["message"]
    assert message.data["text"] == "Hello there" and message.step_key == "one"
    assert message.data["usage"]["prompt_tokens"] == 10


@pytest.mark.asyncio
async def test_a_tool_node_renders_its_arguments(harness: Harness):
    doc = chain(
        node("calc", "tool", 0, 0, tool="calc", arguments={"q": "{{ topic }}", "n": 2}),
    )
    harness.add(doc)
    outcome = await harness.run()
    assert outcome.output == '{"q": "tea", "n": 2}'
    assert harness.tools.calls == [("calc", {"q": "tea", "n": 2})]
    assert [event.kind for event in harness.events()] == ["tool_call", "tool_result"]


@pytest.mark.asyncio
async def test_a_tool_error_goes_through_the_error_policy(harness: Harness):
    policy = {"action": "default", "default_value": "fallback"}
    harness.add(chain(node("calc", "tool", 0, 0, tool="calc", error_policy=policy)))
    harness.tools.errors["calc"] = "division by zero"
    outcome = await harness.run()
    assert outcome.output == "fallback"
    assert harness.store.runs["r1"].failures == [
        ("calc", 1, "Tool 'calc' failed: division by zero")
    ]


@pytest.mark.asyncio
async def test_a_tool_error_fails_the_run_by_default(harness: Harness):
    harness.add(chain(node("calc", "tool", 0, 0, tool="calc")))
    harness.tools.errors["calc"] = "boom"
    outcome = await harness.run()
    assert (outcome.status, outcome.reason) == (
        "failed",
        "Node 'calc' failed: Tool 'calc' failed: boom",
    )
