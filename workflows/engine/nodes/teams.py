"""Team nodes: group_chat, handoff (swarm) and vote. Every agent turn is its own sub-step."""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any

from workflows.engine.contracts import EventDraft
from workflows.engine.envelope import handoff_id
from workflows.engine.nodes import (
    NodeError,
    NodeResult,
    ParsedNode,
    Scope,
    StepDone,
    executor,
    output_update,
)
from workflows.engine.nodes.basic import message_event, reply_done
from workflows.engine.nodes.chat import ChatState, chat_history, next_speaker
from workflows.engine.nodes.flow import pick_named
from workflows.engine.templating import as_text
from workflows.graph.nodes import (
    PERSON_PREFIX,
    AllOf,
    AnyOf,
    GroupChatConfig,
    HandoffConfig,
    HandoffToHuman,
    VoteConfig,
    is_person,
)

if TYPE_CHECKING:
    from workflows.engine.engine import RunContext

# A member writing this asks for a person when the chat's termination has handoff_to_human.
HUMAN_MARKER = "HANDOFF_TO_HUMAN"
NO_DECISION = "no_decision"
# Beyond any sane chat; stops a termination that can never fire from running forever.
MAX_CHAT_TURNS = 1000


async def _finish(
    ctx: RunContext, node: ParsedNode, key: str, output: Any, data: dict[str, Any]
) -> NodeResult:
    """The node's own record: its output and variables, so a replay skips the whole node."""
    done = StepDone(
        output,
        variables=output_update(node.config, output),
        events=[EventDraft("node_finished", {"node_id": node.id, **data}, key)],
    )

    async def work() -> StepDone:
        return done

    record = await ctx.step(key, node, None, work)
    return NodeResult(record.output, record.branch)


async def _chat_turn(
    ctx: RunContext,
    node: ParsedNode,
    key: str,
    agent_id: str,
    history: list[dict[str, Any]],
    instructions: str = "",
) -> dict[str, Any]:
    async def work() -> StepDone:
        reply, name = await ctx.agent_turn(
            key, agent_id, history, instructions=instructions, role="member"
        )
        usage = reply.prompt_tokens + reply.completion_tokens
        output = {
            "agent_id": agent_id,
            "agent": name,
            "text": reply.text,
            "tokens": usage,
            "cost": str(reply.cost),
        }
        return reply_done(reply, output, [message_event(key, agent_id, name, reply)])

    record = await ctx.step(key, node, None, work)
    return dict(record.output)


def _wants_human(condition: Any) -> bool:
    if isinstance(condition, AnyOf | AllOf):
        parts = condition.any_of if isinstance(condition, AnyOf) else condition.all_of
        return any(_wants_human(part) for part in parts)
    return isinstance(condition, HandoffToHuman)


@executor("group_chat")
async def run_group_chat(ctx: RunContext, node: ParsedNode, scope: Scope) -> NodeResult:
    config = node.config
    assert isinstance(config, GroupChatConfig)
    key = scope.key(node.id)
    task = as_text(scope.last)
    members = list(config.members)
    names = [
        member[len(PERSON_PREFIX) :] if is_person(member) else await ctx.agent_name(member)
        for member in members
    ]
    state = ChatState(ctx.engine.clock(), task, config.task_counts_as_message)
    wants_human = _wants_human(config.termination)
    if config.task_counts_as_message and state.holds(config.termination, ctx.engine.clock()):
        # As in AutoGen: the task alone met the termination (max_messages 1, or its text).
        return await _finish(ctx, node, key, task, {"messages": 0, "transcript": []})
    for turn in range(MAX_CHAT_TURNS):
        speaker = await next_speaker(ctx, node, config, key, turn, state, names)
        if is_person(speaker):
            message = await _person_turn(
                ctx, node, f"{key}/turn-{turn}", speaker, names[members.index(speaker)], state
            )
        else:
            history = chat_history(task, state.transcript, speaker)
            message = await _chat_turn(ctx, node, f"{key}/turn-{turn}", speaker, history)
        state.transcript.append(message)
        state.agent_messages += 1
        state.tokens += int(message["tokens"])
        state.cost += Decimal(message["cost"])
        if wants_human and not is_person(speaker) and HUMAN_MARKER in message["text"]:
            request = {"kind": "input", "prompt": message["text"], "node_id": node.id}
            human_key = f"{key}/human-{turn}"
            record = await ctx.human_step(
                human_key,
                node,
                request,
                partial(_human_message, key=key, by=ctx.answerer(human_key)),
            )
            if config.task_counts_as_message:
                # In AutoGen the person's answer starts a new run, whose counts start over.
                state = state.restarted(ctx.engine.clock(), record.output["text"])
            state.transcript.append(dict(record.output))
        if state.holds(config.termination, ctx.engine.clock()):
            break
    else:
        raise NodeError(f"The chat did not end within {MAX_CHAT_TURNS} turns")
    if config.result == "transcript":
        result = "\n\n".join(f"{m['agent']}: {m['text']}" for m in state.transcript)
    else:
        result = state.transcript[-1]["text"]
    return await _finish(
        ctx, node, key, result, {"messages": len(state.transcript), "transcript": state.transcript}
    )


async def _person_turn(
    ctx: RunContext, node: ParsedNode, key: str, member: str, name: str, state: ChatState
) -> dict[str, Any]:
    """A person's turn in the chat: the run waits for their answer (AutoGen's UserProxyAgent)."""
    last = state.transcript[-1] if state.transcript else None
    prompt = f"{last['agent']}: {last['text']}" if last else state.task
    request = {"kind": "input", "prompt": prompt, "node_id": node.id, "person": name}

    def build(answer: Any) -> StepDone:
        text = as_text(answer)
        output = {"agent_id": member, "agent": name, "text": text, "tokens": 0, "cost": "0"}
        said = {"agent": name, "role": "human", "text": text}
        return StepDone(output, events=[EventDraft("message", said, key)])

    record = await ctx.human_step(key, node, request, build)
    return dict(record.output)


def _human_message(answer: Any, *, key: str, by: str) -> StepDone:
    text = as_text(answer)
    output = {"agent_id": None, "agent": "human", "text": text, "tokens": 0, "cost": "0"}
    said = {"agent": by or "a person", "role": "human", "text": text}
    return StepDone(output, events=[EventDraft("message", said, key)])


def _tool_name(call: dict[str, Any]) -> str:
    function = call.get("function")
    if isinstance(function, dict):
        return str(function.get("name", ""))
    return str(call.get("name", ""))


def _transfer_names(names: list[str]) -> list[str]:
    slugs = [re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_") or "agent" for name in names]
    # Two agents may share a display name; the index keeps their tools apart.
    return [
        f"transfer_to_{slug}" if slugs.count(slug) == 1 else f"transfer_to_{slug}_{index}"
        for index, slug in enumerate(slugs)
    ]


@executor("handoff")
async def run_handoff(ctx: RunContext, node: ParsedNode, scope: Scope) -> NodeResult:
    config = node.config
    assert isinstance(config, HandoffConfig)
    key = scope.key(node.id)
    agents = list(config.agents)
    names = [await ctx.agent_name(agent) for agent in agents]
    tool_names = _transfer_names(names)
    active = agents.index(config.start_agent)
    wants_human = config.termination is not None and _wants_human(config.termination)
    task = as_text(scope.last)
    history: list[dict[str, Any]] = [{"role": "user", "content": task}]
    state = ChatState(ctx.engine.clock(), task, config.task_counts_as_message)
    counted = config.termination is not None and config.task_counts_as_message
    if counted and state.holds(config.termination, ctx.engine.clock()):
        return await _finish(ctx, node, key, task, {"handoffs": 0, "agent": names[active]})
    handoffs = 0
    turn = 0
    accepting: str | None = None  # the hand-off the active agent's next turn accepts
    while True:
        turn_key = f"{key}/agent-{active}-{turn}"
        extra_tools = [
            {
                "type": "function",
                "function": {
                    "name": tool_names[index],
                    "description": f"Hand the conversation over to {names[index]}.",
                    "parameters": {"type": "object", "properties": {}},
                },
            }
            for index in range(len(agents))
            if index != active
        ]
        if wants_human:
            extra_tools.append(_USER_TOOL)
        context = {name: ctx.variables.get(name) for name in config.context_variables}
        instructions = "Hand the conversation to a better-suited colleague with a transfer tool."
        if context:
            instructions += "\nContext: " + json.dumps(context, default=str, ensure_ascii=False)
        output = await _handoff_turn(
            ctx,
            node,
            turn_key,
            agents,
            names,
            tool_names,
            active,
            list(history),
            extra_tools,
            instructions,
            accepting,
        )
        accepting = None
        history.extend(output["messages"])
        target = output["handoff_to"]
        finished = {"handoffs": handoffs, "agent": names[active]}
        if config.termination is not None:
            # AutoGen's Swarm: every answer is a message, a hand-off included.
            state.transcript.append({"agent_id": agents[active], "text": output["text"]})
            state.agent_messages += 1
            state.tokens += int(output.get("tokens", 0))
            state.cost += Decimal(str(output.get("cost", "0")))
            if state.holds(config.termination, ctx.engine.clock()):
                return await _finish(ctx, node, key, output["text"], finished)
            if output.get("to_user"):
                answer = await _ask_the_user(ctx, node, key, turn, names[active], output)
                history += [
                    {
                        "role": "tool",
                        "tool_call_id": output["call_id"],
                        "content": "Transferred to the user.",
                    },
                    {"role": "user", "content": answer},
                ]
                # In AutoGen the user's answer starts a new run, whose counts start over.
                if config.task_counts_as_message:
                    state = state.restarted(ctx.engine.clock(), answer)
                turn += 1
                continue
            if target is None:
                turn += 1
                if turn >= MAX_CHAT_TURNS:
                    raise NodeError(f"The swarm did not end within {MAX_CHAT_TURNS} turns")
                continue
        elif target is None:
            return await _finish(ctx, node, key, output["text"], finished)
        if handoffs >= config.max_handoffs:
            raise NodeError(f"Hand-off limit of {config.max_handoffs} reached")
        history.append(
            {
                "role": "tool",
                "tool_call_id": output["call_id"],
                "content": f"Transferred to {names[target]}.",
            }
        )
        handoffs += 1
        active = target
        accepting = handoff_id(turn_key)
        turn += 1


USER_TOOL_NAME = "transfer_to_user"
# Offered in a swarm whose termination has handoff_to_human: AutoGen's hand-off to the user.
_USER_TOOL = {
    "type": "function",
    "function": {
        "name": USER_TOOL_NAME,
        "description": "Hand the conversation to the user; you go on once they answer.",
        "parameters": {"type": "object", "properties": {}},
    },
}


async def _ask_the_user(
    ctx: RunContext, node: ParsedNode, key: str, turn: int, agent: str, output: dict[str, Any]
) -> str:
    prompt = output["text"].strip() or f"{agent} hands the conversation to you."
    request = {"kind": "input", "prompt": prompt, "node_id": node.id}
    human_key = f"{key}/human-{turn}"
    answered = partial(_human_message, key=key, by=ctx.answerer(human_key))
    record = await ctx.human_step(human_key, node, request, answered)
    return str(record.output["text"])


async def _handoff_turn(
    ctx: RunContext,
    node: ParsedNode,
    key: str,
    agents: list[str],
    names: list[str],
    tool_names: list[str],
    active: int,
    history: list[dict[str, Any]],
    extra_tools: list[dict[str, Any]],
    instructions: str,
    accepting: str | None = None,
) -> dict[str, Any]:
    async def work() -> StepDone:
        reply, name = await ctx.agent_turn(
            key, agents[active], history, instructions=instructions, extra_tools=extra_tools
        )
        target: int | None = None
        call_id = ""
        to_user = False
        for call in reply.tool_calls:
            if _tool_name(call) in tool_names and tool_names.index(_tool_name(call)) != active:
                target = tool_names.index(_tool_name(call))
                call_id = str(call.get("id", ""))
                break
            if _tool_name(call) == USER_TOOL_NAME and _USER_TOOL in extra_tools:
                to_user = True
                call_id = str(call.get("id", ""))
                break
        messages = reply.messages or [{"role": "assistant", "content": reply.text}]
        said = message_event(key, agents[active], name, reply)
        if accepting is not None:
            # This turn takes the conversation over: its message answers the hand-off.
            said = EventDraft("message", {**said.data, "correlation_id": accepting}, key)
        events = [said]
        if target is not None:
            data = {
                "from": name,
                "to": names[target],
                "to_agent_id": agents[target],
                "sender": name,
                "receiver": names[target],
            }
            events.append(EventDraft("handoff", data, key))
        output = {
            "agent_id": agents[active],
            "text": reply.text,
            "messages": messages,
            "handoff_to": target,
            "to_user": to_user,
            "call_id": call_id,
            "tokens": reply.prompt_tokens + reply.completion_tokens,
            "cost": str(reply.cost),
        }
        return reply_done(reply, output, events)

    record = await ctx.step(key, node, None, work)
    return dict(record.output)


def parse_vote(text: str, options: list[str], free_form: bool) -> tuple[str | None, str]:
    """(option, reason) from a JSON answer, or from plain text naming one option."""
    reason = ""
    answer = text
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and "option" in parsed:
        answer = as_text(parsed.get("option"))
        reason = as_text(parsed.get("reason"))
    if free_form:
        return (answer.strip() or None), reason
    return pick_named(answer, options), reason


@executor("vote")
async def run_vote(ctx: RunContext, node: ParsedNode, scope: Scope) -> NodeResult:
    config = node.config
    assert isinstance(config, VoteConfig)
    key = scope.key(node.id)
    notes: list[EventDraft] = []
    question = ctx.render(config.question, scope, notes, key)
    options = list(config.options)
    option_schema: dict[str, Any] = {"type": "string"}
    if options:
        option_schema["enum"] = options
    schema = {
        "type": "object",
        "properties": {"option": option_schema, "reason": {"type": "string"}},
        "required": ["option", "reason"],
    }
    ask = (
        f"Vote on this question. Choose one of: {', '.join(options)}. "
        if options
        else "Vote on this question with a short answer. "
    ) + 'Reply as JSON: {"option": ..., "reason": ...}.'

    async def cast(index: int, voter: str) -> dict[str, Any]:
        voter_key = f"{key}/voter-{index}"

        async def work() -> StepDone:
            history = [{"role": "user", "content": question}]
            reply, name = await ctx.agent_turn(
                voter_key, voter, history, instructions=ask, response_schema=schema, role="voter"
            )
            option, reason = parse_vote(reply.text, options, config.free_form)
            ballot = {"voter": voter, "agent": name, "option": option, "reason": reason}
            return reply_done(reply, ballot, [EventDraft("vote", ballot, voter_key)])

        return dict((await ctx.step(voter_key, node, None, work)).output)

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [
                group.create_task(cast(index, voter)) for index, voter in enumerate(config.voters)
            ]
    except BaseExceptionGroup as grouped:
        # One voter's failure is the node's failure; say which, not "a TaskGroup failed".
        raise grouped.exceptions[0] from None
    ballots = [task.result() for task in tasks]
    winner, why = await _decide(ctx, node, config, key, question, ballots)
    counts = Counter(ballot["option"] for ballot in ballots if ballot["option"] is not None)
    result = {
        "result": winner or NO_DECISION,
        "decided": winner is not None,
        "counts": dict(counts),
        "reason": why,
    }
    output = winner or NO_DECISION
    done = StepDone(
        output,
        variables=output_update(config, output),
        events=[*notes, EventDraft("vote", result, key)],
    )

    async def finish() -> StepDone:
        return done

    record = await ctx.step(key, node, None, finish)
    return NodeResult(record.output, record.branch)


async def _decide(
    ctx: RunContext,
    node: ParsedNode,
    config: VoteConfig,
    key: str,
    question: str,
    ballots: list[dict[str, Any]],
) -> tuple[str | None, str]:
    counts = Counter(ballot["option"] for ballot in ballots if ballot["option"] is not None)
    if not counts:
        return None, "no valid votes"
    order = list(config.options) or list(counts)
    top = max(counts.values())
    leaders = [option for option in order if counts.get(option) == top]
    if len(leaders) == 1:
        voters = len(config.voters)
        needed = {"majority": voters // 2 + 1, "unanimous": voters}.get(
            config.quorum, config.k or voters
        )
        if top >= needed:
            return leaders[0], f"{top} of {voters} votes ({config.quorum})"
        return None, f"{top} of {voters} votes misses the {config.quorum} quorum of {needed}"
    tied = ", ".join(leaders)
    if config.tie_policy == "first_option":
        return leaders[0], f"tie between {tied}; took the first option"
    if config.tie_policy == "no_decision":
        return None, f"tie between {tied}"
    assert config.chair_agent_id is not None
    chair = config.chair_agent_id
    chair_key = f"{key}/chair"

    async def work() -> StepDone:
        history = [{"role": "user", "content": f"{question}\n\nThe vote is tied between: {tied}."}]
        instructions = f"Break the tie. Answer with exactly one of: {tied}."
        reply, name = await ctx.agent_turn(
            chair_key, chair, history, instructions=instructions, role="chair"
        )
        chosen = pick_named(reply.text, leaders)
        return reply_done(reply, chosen, [message_event(chair_key, chair, name, reply)])

    record = await ctx.step(chair_key, node, None, work)
    if record.output is None:
        return None, f"tie between {tied}; the chair's answer named none of them"
    return str(record.output), f"tie between {tied}; the chair chose"
