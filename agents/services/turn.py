"""One agent turn: the model's reply, with its tool-call loop bounded by the agent's limit.

Pure async and free of HTTP and Celery: the playground streams its events to a browser, and the
run engine's agent node records them as run events.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from agents.config import AgentConfig
from agents.llm import Gateway, LLMRequest, LLMResult, RoutePlan, ToolCall
from agents.llm.allowance import Allowance
from agents.llm.capacity import Waiting
from agents.services.limits import AgentLimiter, agent_limiter
from agents.tools.base import ToolContext
from agents.tools.registry import ToolRegistry

# Rough but cheap: ~4 characters a token, for estimates where an exact count is not needed.
CHARS_PER_TOKEN = 4


@dataclass(frozen=True)
class TurnEvent:
    kind: str  # "delta" | "tool_call" | "tool_result" | "model_call"
    data: Mapping[str, Any]


@dataclass
class TurnResult:
    text: str
    messages: list[dict[str, Any]]
    calls: list[LLMResult] = field(default_factory=list)
    tool_iterations: int = 0
    stopped_reason: str = ""  # "" or "max_tool_iterations" or "handoff" or "limit"
    # Why a limit cut the last answer short (see agents/llm/allowance.py), "" otherwise.
    stopped: str = ""
    # Calls of tools the caller handles itself (hand-offs): returned, not executed.
    pending_tool_calls: list[ToolCall] = field(default_factory=list)

    @property
    def prompt_tokens(self) -> int:
        return sum(call.usage.prompt_tokens for call in self.calls)

    @property
    def completion_tokens(self) -> int:
        return sum(call.usage.completion_tokens for call in self.calls)

    @property
    def cost(self) -> Decimal:
        return sum((call.cost for call in self.calls), Decimal(0))

    @property
    def cost_estimated(self) -> bool:
        return any(call.cost_estimated for call in self.calls)


def estimate_tokens(message: Mapping[str, Any]) -> int:
    content = message.get("content") or ""
    text = content if isinstance(content, str) else json.dumps(content)
    extra = json.dumps(message.get("tool_calls")) if message.get("tool_calls") else ""
    return max(1, (len(text) + len(extra)) // CHARS_PER_TOKEN)


def count_tokens(message: Mapping[str, Any], *, model: str) -> int:
    """The message's tokens as LiteLLM's token counter counts them for the model.

    LiteLLM is imported here, on first use, and only by processes that enforce a context budget:
    importing it takes seconds and hundreds of megabytes.
    """
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    # Open models would have LiteLLM download their tokenizer from Hugging Face; the bundled
    # tiktoken count is close enough for a budget and needs no network.
    litellm.disable_hf_tokenizer_download = True
    return int(litellm.token_counter(model=model, messages=[dict(message)]))


def context_window(
    messages: Sequence[dict[str, Any]], budget: int | None, *, model: str = ""
) -> list[dict[str, Any]]:
    """Keeps every system message and as many of the most recent others as fit the budget.

    A tool result is never kept without the assistant message that asked for it.
    """
    if budget is None:
        return list(messages)
    system = [m for m in messages if m.get("role") == "system"]
    others = [m for m in messages if m.get("role") != "system"]
    remaining = budget - sum(count_tokens(m, model=model) for m in system)
    kept: list[dict[str, Any]] = []
    for message in reversed(others):
        cost = count_tokens(message, model=model)
        if kept and cost > remaining:
            break
        kept.append(message)
        remaining -= cost
    kept.reverse()
    while kept and kept[0].get("role") == "tool":
        kept.pop(0)
    return system + kept


def _request(
    config: AgentConfig,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None,
    metadata: Mapping[str, Any],
    response_schema: dict[str, Any] | None = None,
    quiet: bool = False,
) -> LLMRequest:
    response_format = None
    schema = response_schema or config.response_schema
    if schema:
        response_format = {
            "type": "json_schema",
            "json_schema": {"name": "reply", "schema": schema},
        }
    return LLMRequest(
        messages=context_window(messages, config.context_window_tokens, model=config.model.model),
        tools=tools,
        temperature=config.temperature,
        top_p=config.top_p,
        max_tokens=config.max_tokens,
        seed=config.seed,
        response_format=response_format,
        metadata=metadata,
        quiet=quiet,
    )


def _assistant_with_calls(text: str, calls: Sequence[ToolCall]) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": text or None,
        "tool_calls": [
            {
                "id": tool_call.id,
                "type": "function",
                "function": {"name": tool_call.name, "arguments": tool_call.arguments},
            }
            for tool_call in calls
        ],
    }


async def agent_turn(
    *,
    gateway: Gateway,
    name: str,
    config: AgentConfig,
    history: Sequence[dict[str, Any]],
    plan: RoutePlan,
    registry: ToolRegistry,
    tool_context: ToolContext,
    metadata: Mapping[str, Any],
    on_event: Callable[[TurnEvent], Awaitable[None] | None] | None = None,
    limiter: AgentLimiter = agent_limiter,
    limit_key: str = "",
    instructions: str = "",
    extra_tools: Sequence[dict[str, Any]] = (),
    response_schema: dict[str, Any] | None = None,
    allowance: Allowance | None = None,
    waiting: Waiting | None = None,
    quiet: bool = False,
) -> TurnResult:
    """`quiet`: nothing consumes the answers' tokens as they come (no `delta` events are
    wanted), so the gateway may make plain calls (see LLMRequest.quiet)."""

    async def emit(kind: str, **data: Any) -> None:
        if on_event is not None:
            outcome = on_event(TurnEvent(kind, data))
            if outcome is not None:
                await outcome

    async def on_delta(text: str) -> None:
        await emit("delta", text=text)

    system = config.system_prompt(name=name)
    if instructions.strip():
        system = f"{system}\n\n{instructions.strip()}"
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}, *history]
    own_tools = registry.specs(config.tools) if config.tools else []
    handled_elsewhere = {spec["function"]["name"] for spec in extra_tools}
    tools = [*own_tools, *extra_tools] or None
    result = TurnResult(text="", messages=messages)
    while True:
        request = _request(config, messages, tools, metadata, response_schema, quiet)
        await limiter.acquire(
            limit_key or name,
            rpm=config.requests_per_minute,
            tpm=config.tokens_per_minute,
            tokens=sum(estimate_tokens(m) for m in request.messages),
            max_wait_s=float(config.timeout_s),
        )
        call = await gateway.complete(
            request,
            plan,
            on_delta=None if quiet else on_delta,
            allowance=allowance,
            waiting=waiting,
        )
        result.calls.append(call)
        await emit(
            "model_call",
            model=call.model,
            deployment=call.deployment_id,
            prompt_tokens=call.usage.prompt_tokens,
            completion_tokens=call.usage.completion_tokens,
            cost=str(call.cost),
            cost_estimated=call.cost_estimated,
            latency_ms=round(call.latency_ms),
            retries=call.retries,
            fallbacks=call.fallbacks,
        )
        if call.stopped:
            # A limit cut the answer: keep what came, run no tools, end the turn.
            result.text = call.text
            result.stopped = call.stopped
            result.stopped_reason = "limit"
            messages.append({"role": "assistant", "content": call.text})
            return result
        if not call.tool_calls:
            result.text = call.text
            messages.append({"role": "assistant", "content": call.text})
            return result
        pending = [tc for tc in call.tool_calls if tc.name in handled_elsewhere]
        if pending:
            result.text = call.text
            result.pending_tool_calls = pending
            result.stopped_reason = "handoff"
            messages.append(_assistant_with_calls(call.text, pending))
            return result
        if result.tool_iterations >= config.max_tool_iterations:
            result.text = call.text
            result.stopped_reason = "max_tool_iterations"
            messages.append({"role": "assistant", "content": call.text})
            return result
        result.tool_iterations += 1
        messages.append(_assistant_with_calls(call.text, call.tool_calls))
        for tool_call in call.tool_calls:
            # When it started and how long it took: a run's trace draws each tool call.
            await emit(
                "tool_call",
                id=tool_call.id,
                name=tool_call.name,
                arguments=tool_call.arguments,
                started_at=datetime.now(UTC).isoformat(),
            )
            began = time.perf_counter()
            outcome = await registry.call(tool_call.name, tool_call.arguments, tool_context)
            await emit(
                "tool_result",
                id=tool_call.id,
                name=tool_call.name,
                content=outcome.content,
                is_error=outcome.is_error,
                latency_ms=round((time.perf_counter() - began) * 1000, 1),
            )
            messages.append(
                {"role": "tool", "tool_call_id": tool_call.id, "content": outcome.content}
            )
