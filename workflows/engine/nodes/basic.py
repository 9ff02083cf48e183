"""start, end, agent and tool nodes."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from workflows.engine.contracts import AgentReply, EventDraft
from workflows.engine.nodes import (
    NodeError,
    NodeResult,
    ParsedNode,
    Scope,
    StepDone,
    executor,
    output_update,
)
from workflows.engine.templating import inputs_as_text, render_value
from workflows.graph.nodes import AgentNodeConfig, StartConfig, ToolConfig

if TYPE_CHECKING:
    from workflows.engine.engine import RunContext


def message_event(key: str, agent_id: str | None, name: str, reply: AgentReply) -> EventDraft:
    usage = {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "cost": str(reply.cost),
        "model": reply.model,
        "deployment": reply.deployment,
        "latency_ms": round(reply.latency_ms),
        "retries": reply.retries,
        "fallbacks": reply.fallbacks,
    }
    if reply.unpriced_calls:
        usage["unpriced_calls"] = reply.unpriced_calls
    if reply.policy:
        usage["policy"] = reply.policy
    data = {"agent": name, "agent_id": agent_id, "text": reply.text, "usage": usage}
    if reply.stopped:
        data["stopped"] = reply.stopped  # the answer was cut short by a limit: shown so
    return EventDraft("message", data, key)


def reply_done(reply: AgentReply, output: Any, events: list[EventDraft], **extra: Any) -> StepDone:
    """A step result that carries the reply's usage and its tool-loop events before `events`."""
    return StepDone(
        output,
        events=[*reply.events, *events],
        tokens=reply.prompt_tokens + reply.completion_tokens,
        cost=reply.cost,
        **extra,
    )


@executor("start")
async def run_start(ctx: RunContext, node: ParsedNode, scope: Scope) -> NodeResult:
    assert isinstance(node.config, StartConfig)
    inputs = ctx.snapshot.inputs
    # Pure and cheap, so it is re-done on every replay rather than recorded.
    ctx.apply({variable: inputs.get(name) for name, variable in node.config.input_mapping.items()})
    # Each input stays reachable by name in templates; what flows on is their text.
    return NodeResult(inputs_as_text(inputs))


@executor("end")
async def run_end(ctx: RunContext, node: ParsedNode, scope: Scope) -> NodeResult:
    # The walker finishes at end nodes itself; this exists so the registry is complete.
    return NodeResult(ctx.end_output(node, scope))


@executor("agent")
async def run_agent(ctx: RunContext, node: ParsedNode, scope: Scope) -> NodeResult:
    config = node.config
    assert isinstance(config, AgentNodeConfig)
    key = scope.key(node.id)
    notes: list[EventDraft] = []
    prompt = ctx.render(config.input_template, scope, notes, key)
    instructions = ctx.render(config.instructions, scope, notes, key)

    async def work() -> StepDone:
        history = [{"role": "user", "content": prompt}]
        reply, name = await ctx.agent_turn(key, config.agent_id, history, instructions=instructions)
        events = [*notes, message_event(key, config.agent_id, name, reply)]
        return reply_done(reply, reply.text, events, variables=output_update(config, reply.text))

    record = await ctx.step(key, node, {"prompt": prompt}, work)
    return NodeResult(record.output, record.branch)


@executor("tool")
async def run_tool(ctx: RunContext, node: ParsedNode, scope: Scope) -> NodeResult:
    config = node.config
    assert isinstance(config, ToolConfig)
    key = scope.key(node.id)
    missing: list[str] = []
    arguments = render_value(config.arguments, ctx.template_context(scope), missing)
    arguments_json = json.dumps(arguments, ensure_ascii=False, default=str)

    async def work() -> StepDone:
        content, is_error = await ctx.engine.tools.call(
            config.tool, arguments_json, variables=dict(ctx.variables)
        )
        if is_error:
            raise NodeError(f"Tool '{config.tool}' failed: {content}")
        events = [
            EventDraft("tool_call", {"name": config.tool, "arguments": arguments_json}, key),
            EventDraft("tool_result", {"name": config.tool, "content": content}, key),
        ]
        if missing:
            names = ", ".join(dict.fromkeys(missing))
            message = {"level": "warning", "message": f"Unknown names: {names}"}
            events.insert(0, EventDraft("log", message, key))
        return StepDone(content, variables=output_update(config, content), events=events)

    record = await ctx.step(key, node, {"tool": config.tool, "arguments": arguments}, work)
    return NodeResult(record.output, record.branch)
