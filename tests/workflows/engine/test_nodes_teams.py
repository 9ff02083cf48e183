"""group_chat, handoff and vote nodes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.workflows.engine.conftest import NAMES, Harness, chain, node, var
from workflows.engine import HUMAN_MARKER, NO_DECISION
from workflows.engine.memory import Scripted, ScriptedAgents, transfer_call


def chat(**config: Any) -> dict[str, Any]:
    config.setdefault("members", ["ann", "bob", "cy"])
    config.setdefault("termination", {"max_messages": 4})
    return chain(
        node("chat", "group_chat", 0, 0, output_variable="last", **config),
        output="last",
        variables=[var("last")],
    )


@pytest.mark.asyncio
async def test_round_robin_turns_until_max_messages(harness: Harness):
    harness.add(chat())
    outcome = await harness.run()
    assert outcome.output == "Ann @ chat/turn-3"
    assert [call.agent_id for call in harness.agents.calls] == ["ann", "bob", "cy", "ann"]
    messages = harness.events(kind="message")
    assert [event.data["agent"] for event in messages] == ["Ann", "Bob", "Cy", "Ann"]
    finished = harness.events(kind="node_finished")[0]
    assert len(finished.data["transcript"]) == 4
    # Each member sees the others as users and itself as the assistant.
    history = harness.agents.calls[3].history
    assert [m["role"] for m in history] == ["user", "assistant", "user", "user"]
    assert history[2]["content"] == "Bob: Bob @ chat/turn-1"


@pytest.mark.asyncio
async def test_a_chat_can_hand_on_its_whole_transcript(harness: Harness):
    harness.add(chat(result="transcript", termination={"max_messages": 3}))
    outcome = await harness.run()
    assert outcome.output == (
        "Ann: Ann @ chat/turn-0\n\nBob: Bob @ chat/turn-1\n\nCy: Cy @ chat/turn-2"
    )


@pytest.mark.asyncio
async def test_text_mention_ends_the_chat(harness: Harness):
    harness.add(chat(termination={"any_of": [{"text_mention": "TERMINATE"}, {"max_messages": 9}]}))
    harness.agents = ScriptedAgents(NAMES, {"bob": ["Agreed. TERMINATE"]})
    outcome = await harness.run()
    assert outcome.output == "Agreed. TERMINATE"
    assert len(harness.agents.calls) == 2


@pytest.mark.asyncio
async def test_all_of_needs_every_condition(harness: Harness):
    both = {"all_of": [{"text_mention": "OK"}, {"max_messages": 2}]}
    termination = {"any_of": [both, {"max_messages": 9}]}
    harness.add(chat(termination=termination))
    harness.agents = ScriptedAgents(NAMES, {"ann": ["OK", "x"], "bob": ["no"], "cy": ["OK"]})
    outcome = await harness.run()
    assert outcome.output == "OK"
    assert len(harness.agents.calls) == 3


@pytest.mark.asyncio
async def test_a_token_budget_ends_the_chat(harness: Harness):
    harness.add(chat(termination={"token_budget": 30}))
    await harness.run()
    assert len(harness.agents.calls) == 2


@pytest.mark.asyncio
async def test_a_timeout_uses_the_injected_clock(harness: Harness):
    harness.add(chat(termination={"timeout_s": 10}))

    def tick(call: Any) -> str:
        harness.now[0] += 4
        return "tick"

    harness.agents = ScriptedAgents(NAMES, tick)
    await harness.run()
    assert len(harness.agents.calls) == 3


@pytest.mark.asyncio
async def test_speaker_rules_choose_the_next_speaker(harness: Harness):
    rules = [
        {"after_speaker": "ann", "when_contains": "code", "next_speaker": "cy"},
        {"after_speaker": "cy", "next_speaker": "ann"},
    ]
    harness.add(chat(speaker_selection="rules", speaker_rules=rules))
    harness.agents = ScriptedAgents(NAMES, {"ann": ["some code", "plain"]})
    await harness.run()
    assert [call.agent_id for call in harness.agents.calls] == ["ann", "cy", "ann", "bob"]


@pytest.mark.asyncio
async def test_an_llm_selector_picks_speakers_and_falls_back_to_round_robin(harness: Harness):
    harness.add(chat(speaker_selection="llm_selector", selector_agent_id="sel"))
    harness.agents = ScriptedAgents(NAMES, {"sel": ["Cy", "nobody", "Bob", "Ann"]})
    await harness.run()
    speakers = [call.agent_id for call in harness.agents.calls if call.agent_id != "sel"]
    assert speakers == ["cy", "ann", "bob", "ann"]
    assert "chat/select-1" in harness.agents.keys
    fallbacks = [event.data["fallback"] for event in harness.events(kind="state")]
    assert fallbacks == [False, True, False, False]


@pytest.mark.asyncio
async def test_one_member_keeps_answering_until_the_termination(harness: Harness):
    harness.add(chat(members=["ann"], termination={"max_messages": 3}))
    await harness.run()
    assert [call.agent_id for call in harness.agents.calls] == ["ann", "ann", "ann"]
    roles = [message["role"] for message in harness.agents.calls[2].history]
    assert roles == ["user", "assistant", "assistant"]


@pytest.mark.asyncio
async def test_the_task_may_count_as_the_first_message_as_in_autogen(harness: Harness):
    # AutoGen's MaxMessageTermination(10) stops after 9 agent messages: the task is one.
    harness.add(chat(termination={"max_messages": 4}, task_counts_as_message=True))
    await harness.run()
    assert len(harness.agents.calls) == 3
    # And a stop text in the task ends the chat before anyone speaks.
    stop = {"any_of": [{"text_mention": "TERMINATE"}, {"max_messages": 4}]}
    harness.add(chat(termination=stop, task_counts_as_message=True), "r2", inputs={"topic": "x"})
    harness.add(
        chat(termination=stop, task_counts_as_message=True), "r3", inputs={"topic": "TERMINATE"}
    )
    assert (await harness.run("r2")).status == "succeeded"
    assert len(harness.agents.calls) == 6
    outcome = await harness.run("r3")
    assert (outcome.status, outcome.output) == ("succeeded", "TERMINATE")
    assert len(harness.agents.calls) == 6


@pytest.mark.asyncio
async def test_a_selector_without_repeats_never_picks_the_last_speaker(harness: Harness):
    harness.add(
        chat(
            speaker_selection="llm_selector",
            selector_agent_id="sel",
            allow_repeated_speaker=False,
            termination={"max_messages": 4},
        )
    )
    harness.agents = ScriptedAgents(NAMES, {"sel": ["Ann", "Ann", "Ann", "Ann"]})
    await harness.run()
    speakers = [call.agent_id for call in harness.agents.calls if call.agent_id != "sel"]
    assert speakers == ["ann", "bob", "ann", "bob"]
    # The selector is offered everyone but the last speaker.
    offered = [call.instructions for call in harness.agents.calls if call.agent_id == "sel"]
    assert offered[1].endswith("exactly one of: Bob, Cy")


@pytest.mark.asyncio
async def test_two_members_without_repeats_alternate_without_asking(harness: Harness):
    harness.add(
        chat(
            members=["ann", "bob"],
            speaker_selection="llm_selector",
            selector_agent_id="sel",
            allow_repeated_speaker=False,
        )
    )
    harness.agents = ScriptedAgents(NAMES, {"sel": ["Bob"]})
    await harness.run()
    assert [call.agent_id for call in harness.agents.calls] == ["sel", "bob", "ann", "bob", "ann"]


@pytest.mark.asyncio
async def test_a_selector_prompt_is_filled_and_retried_as_autogen_does(harness: Harness):
    prompt = "Roles:\n{roles}.\nPick from {participants}.\n\n{history}\nOnly the role."
    harness.add(
        chat(
            speaker_selection="llm_selector",
            selector_agent_id="sel",
            selector_prompt=prompt,
            allow_repeated_speaker=False,
            max_selector_attempts=3,
            termination={"max_messages": 2},
        )
    )
    replies = {"sel": ["Cy", "Cy", "Ann and Bob", "nobody"], "cy": ["Cy speaks"]}
    harness.agents = ScriptedAgents(NAMES, replies)
    await harness.run()
    calls = harness.agents.calls
    assert [call.agent_id for call in calls] == ["sel", "cy", "sel", "sel", "sel", "cy"]
    first = calls[0].history
    assert first == [
        {
            "role": "user",
            "content": "Roles:\nAnn\nBob\nCy.\nPick from ['Ann', 'Bob', 'Cy'].\n\n"
            "user: tea\n\n\nOnly the role.",
        }
    ]
    assert calls[0].instructions == ""
    second = calls[2].history[0]["content"]
    assert "Pick from ['Ann', 'Bob']." in second and "user: tea\n\n\nCy: Cy speaks\n\n" in second
    # Cy again, then two names, then none: AutoGen's feedback each time, then the last speaker.
    assert calls[3].history[1:] == [
        {"role": "assistant", "content": "Cy"},
        {
            "role": "user",
            "content": "Repeated speaker is not allowed, please select a different name from: "
            "['Ann', 'Bob'].",
        },
    ]
    assert calls[4].history[-1]["content"].startswith("Expected exactly one name")
    assert [call.step_key for call in calls[2:5]] == [
        "chat/select-1",
        "chat/select-1/retry-1",
        "chat/select-1/retry-2",
    ]
    fallbacks = [event.data["fallback"] for event in harness.events(kind="state")]
    assert fallbacks == [False, True]


@pytest.mark.asyncio
async def test_a_person_member_answers_on_their_turn(harness: Harness):
    # AutoGen's UserProxyAgent: on its turn the run waits for the person.
    harness.add(chat(members=["ann", "person:Pat", "bob"], termination={"max_messages": 4}))
    assert (await harness.run()).status == "waiting"
    assert list(harness.store.runs["r1"].waiting) == ["chat/turn-1"]
    request = harness.events(kind="human_request")[0].data
    assert request["prompt"] == "Ann: Ann @ chat/turn-0" and request["person"] == "Pat"
    harness.store.answer("r1", "chat/turn-1", "Make it green tea")
    outcome = await harness.run()
    assert outcome.status == "succeeded"
    assert [call.agent_id for call in harness.agents.calls] == ["ann", "bob", "ann"]
    assert harness.agents.calls[1].history[-1] == {
        "role": "user",
        "content": "Pat: Make it green tea",
    }
    assert [event.data["agent"] for event in harness.events(kind="message")] == [
        "Ann",
        "Pat",
        "Bob",
        "Ann",
    ]


@pytest.mark.asyncio
async def test_handoff_to_human_waits_and_the_reply_joins_the_chat(harness: Harness):
    termination = {"any_of": [{"handoff_to_human": True}, {"max_messages": 3}]}
    harness.add(chat(termination=termination))
    harness.agents = ScriptedAgents(NAMES, {"bob": [f"Need a person {HUMAN_MARKER}"]})
    assert (await harness.run()).status == "waiting"
    assert list(harness.store.runs["r1"].waiting) == ["chat/human-1"]
    harness.store.answer("r1", "chat/human-1", "Use green tea")
    outcome = await harness.run()
    assert outcome.status == "succeeded"
    assert len(harness.agents.calls) == 3  # ann and bob once each, then cy
    assert harness.agents.calls[-1].history[-1] == {
        "role": "user",
        "content": "human: Use green tea",
    }


def swarm(**config: Any) -> dict[str, Any]:
    config.setdefault("agents", ["ann", "bob", "cy"])
    config.setdefault("start_agent", "ann")
    return chain(
        node("desk", "handoff", 0, 0, context_variables=["topic"], **config),
        variables=[var("topic")],
    )


@pytest.mark.asyncio
async def test_agents_hand_off_with_transfer_tools(harness: Harness):
    doc = swarm()
    doc["nodes"][0]["config"]["input_mapping"] = {"topic": "topic"}
    harness.add(doc)
    harness.agents = ScriptedAgents(
        NAMES,
        {
            "ann": [Scripted("Bob knows", tool_calls=[transfer_call("Bob")])],
            "bob": [Scripted("", tool_calls=[transfer_call("Cy")])],
            "cy": ["Here is the answer"],
        },
    )
    outcome = await harness.run()
    assert outcome.output == "Here is the answer"
    assert harness.agents.keys == ["desk/agent-0-0", "desk/agent-1-1", "desk/agent-2-2"]
    first = harness.agents.calls[0]
    assert [tool["function"]["name"] for tool in first.extra_tools or []] == [
        "transfer_to_bob",
        "transfer_to_cy",
    ]
    assert '"topic": "tea"' in first.instructions
    handoffs = [(e.data["from"], e.data["to"]) for e in harness.events(kind="handoff")]
    assert handoffs == [("Ann", "Bob"), ("Bob", "Cy")]
    # Each hand-off and the turn that accepts it share a correlation id.
    envelopes = [
        (e.kind, e.data["sender"], e.data["receiver"], e.data["correlation_id"])
        for e in harness.events()
        if e.kind in ("handoff", "message")
    ]
    assert envelopes == [
        ("message", "Ann", None, "step:desk/agent-0-0"),
        ("handoff", "Ann", "Bob", "handoff:desk/agent-0-0"),
        ("message", "Bob", None, "handoff:desk/agent-0-0"),
        ("handoff", "Bob", "Cy", "handoff:desk/agent-1-1"),
        ("message", "Cy", None, "handoff:desk/agent-1-1"),
    ]
    last_history = harness.agents.calls[2].history
    assert last_history[-1] == {
        "role": "tool",
        "tool_call_id": "call-cy",
        "content": "Transferred to Cy.",
    }


@pytest.mark.asyncio
async def test_a_swarm_with_a_termination_keeps_the_floor_until_a_handoff(harness: Harness):
    # AutoGen's Swarm: no hand-off means the same agent speaks again; the condition ends it.
    stop = {"any_of": [{"text_mention": "TERMINATE"}, {"max_messages": 10}]}
    harness.add(swarm(termination=stop, task_counts_as_message=True))
    harness.agents = ScriptedAgents(
        NAMES,
        {
            "ann": ["Thinking", Scripted("", tool_calls=(transfer_call("Bob"),))],
            "bob": ["Working", "Done. TERMINATE"],
        },
    )
    outcome = await harness.run()
    assert outcome.output == "Done. TERMINATE"
    assert [call.agent_id for call in harness.agents.calls] == ["ann", "ann", "bob", "bob"]
    # Bob's second turn follows his own answer.
    assert harness.agents.calls[3].history[-1] == {"role": "assistant", "content": "Working"}


@pytest.mark.asyncio
async def test_a_swarm_message_limit_counts_the_task(harness: Harness):
    harness.add(swarm(agents=["ann"], termination={"max_messages": 3}, task_counts_as_message=True))
    outcome = await harness.run()
    assert [call.agent_id for call in harness.agents.calls] == ["ann", "ann"]
    assert outcome.output == "Ann @ desk/agent-0-1"


@pytest.mark.asyncio
async def test_a_swarm_agent_may_hand_the_conversation_to_the_user(harness: Harness):
    # AutoGen's HandoffTermination(target="user"): here the run waits for the user's answer.
    stop = {"any_of": [{"handoff_to_human": True}, {"max_messages": 3}]}
    harness.add(swarm(agents=["ann", "bob"], termination=stop, task_counts_as_message=True))
    to_user = {"id": "call-user", "type": "function", "function": {"name": "transfer_to_user"}}
    harness.agents = ScriptedAgents(
        NAMES,
        {"ann": [Scripted("Which city?", tool_calls=(to_user,)), "Working", "Done"]},
    )
    assert (await harness.run()).status == "waiting"
    offered = [tool["function"]["name"] for tool in harness.agents.calls[0].extra_tools or []]
    assert offered == ["transfer_to_bob", "transfer_to_user"]
    harness.store.answer("r1", "desk/human-0", "Paris")
    outcome = await harness.run()
    assert outcome.status == "succeeded"
    # The user's answer starts AutoGen's count over: it and two more messages make three.
    assert [call.agent_id for call in harness.agents.calls] == ["ann", "ann", "ann"]
    assert harness.agents.calls[1].history[-2:] == [
        {"role": "tool", "tool_call_id": "call-user", "content": "Transferred to the user."},
        {"role": "user", "content": "Paris"},
    ]
    assert outcome.output == "Done"


@pytest.mark.asyncio
async def test_too_many_handoffs_fail_the_node(harness: Harness):
    harness.add(swarm(agents=["ann", "bob"], max_handoffs=2))
    harness.agents = ScriptedAgents(
        NAMES,
        lambda call: Scripted(
            "", tool_calls=[transfer_call("Bob" if call.agent_id == "ann" else "Ann")]
        ),
    )
    outcome = await harness.run()
    assert outcome.reason == "Node 'desk' failed: Hand-off limit of 2 reached"
    assert len(harness.agents.calls) == 3


def ballot(**config: Any) -> dict[str, Any]:
    config.setdefault("voters", ["ann", "bob", "cy"])
    config.setdefault("question", "Ship {{ topic }}?")
    if not config.get("free_form"):
        config.setdefault("options", ["yes", "no"])
    return chain(node("poll", "vote", 0, 0, **config))


def votes(**by_agent: str) -> dict[str, list[str]]:
    return {
        agent: [json.dumps({"option": choice, "reason": "because"})]
        if choice in {"yes", "no"}
        else [choice]
        for agent, choice in by_agent.items()
    }


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("config", "cast", "expected"),
    [
        ({}, {"ann": "yes", "bob": "yes", "cy": "no"}, "yes"),
        ({}, {"ann": "yes", "bob": "I say no", "cy": "No."}, "no"),
        ({"quorum": "unanimous"}, {"ann": "yes", "bob": "yes", "cy": "no"}, NO_DECISION),
        ({"quorum": "k_of_n", "k": 1}, {"ann": "yes", "bob": "no", "cy": "yes"}, "yes"),
        ({"voters": ["ann", "bob"]}, {"ann": "yes", "bob": "no"}, NO_DECISION),
        (
            {"voters": ["ann", "bob"], "tie_policy": "first_option"},
            {"ann": "no", "bob": "yes"},
            "yes",
        ),
        ({}, {"ann": "maybe", "bob": "hmm", "cy": "yes"}, NO_DECISION),
    ],
)
async def test_a_vote_tallies_by_quorum_and_tie_policy(
    harness: Harness, config: dict[str, Any], cast: dict[str, str], expected: str
):
    harness.add(ballot(**config))
    harness.agents = ScriptedAgents(NAMES, votes(**cast))
    outcome = await harness.run()
    assert outcome.output == expected
    events = harness.events(kind="vote")
    assert len(events) == len(cast) + 1
    assert events[-1].data["result"] == expected
    call = harness.agents.calls[0]
    assert call.response_schema is not None
    assert call.response_schema["properties"]["option"]["enum"] == ["yes", "no"]
    assert call.history[0]["content"] == "Ship tea?"
    assert sorted(harness.agents.keys) == [f"poll/voter-{i}" for i in range(len(cast))]


@pytest.mark.asyncio
async def test_a_chair_breaks_a_tie(harness: Harness):
    harness.add(ballot(voters=["ann", "bob"], tie_policy="chair", chair_agent_id="dee"))
    harness.agents = ScriptedAgents(NAMES, {**votes(ann="yes", bob="no"), "dee": ["no"]})
    outcome = await harness.run()
    assert outcome.output == "no"
    assert harness.agents.keys[-1] == "poll/chair"


@pytest.mark.asyncio
async def test_a_free_form_vote_counts_answers(harness: Harness):
    harness.add(ballot(free_form=True))
    harness.agents = ScriptedAgents(NAMES, {"ann": ["Paris"], "bob": ["Paris"], "cy": ["Rome"]})
    outcome = await harness.run()
    assert outcome.output == "Paris"
