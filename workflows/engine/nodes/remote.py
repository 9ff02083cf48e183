"""remote_agent nodes: one task on another system's A2A agent, as durable steps.

Step keys: `node/call-n` is the n-th message to the remote agent (the first starts its task,
later ones answer its questions), `node/human-n` a person's answer to its n-th question, and
`node` the node's result. A replayed run finds finished calls recorded and does not send them
again; a call interrupted mid-way follows the task its runner remembered for that step.

When the remote agent asks for input (its task is `input-required`), the node's
`on_input_required` decides who answers: a person in this run (the run waits), a fixed text,
or the nodes after its "input_required" branch, whose result comes back to this node (a loop)
and answers the same remote task.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from dataclasses import asdict
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from workflows.engine.contracts import (
    EventDraft,
    RemoteAgentError,
    RemoteRequest,
    RemoteResult,
    RemoteUpdate,
)
from workflows.engine.nodes import (
    NodeError,
    NodeResult,
    ParsedNode,
    RunStop,
    Scope,
    StepDone,
    executor,
    output_update,
)
from workflows.engine.templating import as_text
from workflows.graph.remote_agent import RemoteAgentConfig

if TYPE_CHECKING:
    from workflows.engine.engine import RunContext

# Marks a node output that hands a remote agent's question to the next node.
PENDING = "remote_input_required"
_NAMESPACE = uuid.UUID("6b1f7c5e-9a53-4d1b-8f2e-2f0c4a9d7e11")


def message_id(run_id: str, call_key: str) -> str:
    """The same id for every attempt of one call, so a remote agent can tell a resend."""
    return str(uuid.uuid5(_NAMESPACE, f"{run_id}:{call_key}"))


def _pending(output: Any) -> Mapping[str, Any] | None:
    if isinstance(output, Mapping) and output.get("kind") == PENDING:
        return output
    return None


def _usage(result: RemoteResult) -> tuple[int, Decimal]:
    usage = result.usage or {}
    tokens = usage.get("tokens")
    try:
        cost = Decimal(str(usage.get("cost_usd"))) if usage.get("cost_usd") is not None else 0
    except InvalidOperation:
        cost = 0
    return (int(tokens) if isinstance(tokens, int) else 0), Decimal(cost)


def _call_events(result: RemoteResult, call_key: str) -> list[EventDraft]:
    remote = {"host": result.host, "task_id": result.task_id, "state": result.state}
    call = {
        "agent": result.agent,
        **remote,
        "resumed": result.resumed,
        # A remote agent's price is not known unless it reports its usage.
        "usage": dict(result.usage) if result.usage else None,
    }
    events = [EventDraft("remote_call", call, call_key)]
    said = result.question if result.state == "input-required" else result.text
    if said:
        message = {"agent": result.agent, "role": "assistant", "text": said, "remote": remote}
        events.append(EventDraft("message", message, call_key))
    return events


async def _call(
    ctx: RunContext, request: RemoteRequest, call_key: str, limit: float | None
) -> StepDone:
    runner = ctx.engine.remote_agents
    if runner is None:
        raise NodeError("Remote agents cannot be called where this run executes.")
    live = ctx.engine.live
    store = ctx.engine.store
    parts = urlsplit(request.url)
    host = f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname or "")

    async def on_update(update: RemoteUpdate) -> None:
        if update.kind == "chunk":
            await live.delta(ctx.run_id, step_key=call_key, agent=update.agent, text=update.text)
            return
        data = {
            "agent": update.agent,
            "role": "assistant",
            "text": update.text,
            "remote": {"host": host, "task_id": update.task_id, "state": update.state},
        }
        await store.emit(ctx.run_id, [EventDraft("message", data, call_key)])

    loop = asyncio.get_running_loop()
    ends = None if limit is None else loop.time() + limit

    def cancel_remote() -> bool:
        # A cancelled run or a limit reached: the remote task is abandoned too. Not when the
        # lease was lost or the worker shuts down: the run resumes and follows the task again.
        return ctx.cancel_seen or (ends is not None and loop.time() >= ends - 0.01)

    try:
        async with asyncio.timeout(limit):
            result = await runner.call(
                request, step_key=call_key, on_update=on_update, cancel_remote=cancel_remote
            )
    except TimeoutError:
        deadline = ctx.snapshot.deadline
        if deadline is not None and ctx.engine.clock() >= deadline - 0.05:
            raise RunStop(
                "failed", f"Run timed out after {ctx.graph.settings.timeout_s} s"
            ) from None
        raise NodeError(
            f"The remote agent did not finish within {request.timeout_s:.0f} s"
        ) from None
    except RemoteAgentError as error:
        raise NodeError(error.reason) from None
    tokens, cost = _usage(result)
    return StepDone(asdict(result), events=_call_events(result, call_key), tokens=tokens, cost=cost)


def _limit(ctx: RunContext, config: RemoteAgentConfig) -> float | None:
    limits = [float(config.timeout_s)] if config.timeout_s else []
    deadline = ctx.snapshot.deadline
    if deadline is not None:
        limits.append(max(deadline - ctx.engine.clock(), 0.01))
    return min(limits) if limits else None


def _answer_done(ctx: RunContext, key: str, answer: Any) -> StepDone:
    by = ctx.answerer(key)
    text = as_text(answer.get("answer", answer) if isinstance(answer, Mapping) else answer)
    events = [
        EventDraft("message", {"agent": by or "a person", "role": "human", "text": text}, key)
    ]
    return StepDone(text, events=events)


@executor("remote_agent")
async def run_remote_agent(ctx: RunContext, node: ParsedNode, scope: Scope) -> NodeResult:
    config = node.config
    assert isinstance(config, RemoteAgentConfig)
    key = scope.key(node.id)
    notes: list[EventDraft] = []
    text = ctx.render(config.input_template, scope, notes, key)
    task_id = context_id = asked_id = ""
    round_ = 1
    pending = _pending(ctx.node_outputs.get(node.id))
    if config.on_input_required == "next_node" and pending is not None:
        # Back from the "input_required" branch: what arrives answers the same remote task.
        task_id = str(pending.get("task_id") or "")
        context_id = str(pending.get("context_id") or "")
        asked_id = str(pending.get("question_id") or "")
        round_ = int(pending.get("round") or 1) + 1
        text = as_text(scope.last)
    while True:
        call_key = f"{key}/call-{round_}"
        request = RemoteRequest(
            url=config.url,
            text=text,
            message_id=message_id(ctx.run_id, call_key),
            remote_agent_id=config.remote_agent_id,
            skill_id=config.skill_id,
            task_id=task_id,
            context_id=context_id,
            asked_id=asked_id,
            timeout_s=float(config.timeout_s) if config.timeout_s else None,
        )
        step_input = {"text": text, "task_id": task_id or None, "skill_id": config.skill_id}
        limit = _limit(ctx, config)
        record = await ctx.step(
            call_key, node, step_input, partial(_call, ctx, request, call_key, limit)
        )
        result = dict(record.output or {})
        if result.get("state") != "input-required":
            break
        question = str(result.get("question") or "The remote agent asks for more input.")
        if round_ >= config.max_input_rounds:
            raise NodeError(
                f"The remote agent asked for input {round_} times (the node allows "
                f"{config.max_input_rounds}); its last question: {question}"
            )
        task_id = str(result.get("task_id") or "")
        context_id = str(result.get("context_id") or "")
        asked_id = str(result.get("question_id") or "")
        if config.on_input_required == "next_node":
            handed = {
                "kind": PENDING,
                "question": question,
                "agent": result.get("agent"),
                "task_id": task_id,
                "context_id": context_id,
                "question_id": asked_id,
                "round": round_,
            }
            done = StepDone(handed, branch="input_required")
            record = await ctx.step(key, node, None, partial(_ready, done))
            return NodeResult(record.output, record.branch)
        if config.on_input_required == "fixed_answer":
            text = ctx.render(config.fixed_answer or "", scope, notes, key)
        else:
            human_key = f"{key}/human-{round_}"
            asking = {
                "kind": "input",
                "prompt": f"{result.get('agent') or 'The remote agent'} asks: {question}",
                "node_id": node.id,
                "field": None,
                "timeout_s": None,
            }
            answered = await ctx.human_step(
                human_key,
                node,
                asking,
                partial(_answer_done, ctx, human_key),
            )
            text = as_text(answered.output)
        round_ += 1
    output = str(result.get("text") or "")
    branch = "done" if config.branches() else None
    done = StepDone(output, branch=branch, variables=output_update(config, output), events=notes)
    record = await ctx.step(key, node, None, partial(_ready, done))
    return NodeResult(record.output, record.branch)


async def _ready(done: StepDone) -> StepDone:
    return done
