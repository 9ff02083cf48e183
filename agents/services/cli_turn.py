"""A command-line agent's turn: the provider's allow-listed program answers the conversation.

It emits the same events as a model turn (deltas, tool calls and results, a model call with its
usage and cost) and is recorded in the ledger like any provider call.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.utils import timezone

from agents.cli_agents import CliAgentError, CliCommand, CliEvent, cli_agent_run
from agents.config import AgentConfig
from agents.llm.errors import LLMError, make_error
from agents.llm.ledger import LedgerOutcome, LedgerSink, LedgerStart
from agents.llm.types import LLMResult, Usage
from agents.models import Provider
from agents.services.turn import TurnEvent, TurnResult, estimate_tokens


def cli_command_for(provider: Provider) -> CliCommand:
    config = provider.cli_config or {}
    return CliCommand(
        argv_template=tuple(config.get("argv") or ()),
        timeout_s=float(config.get("timeout_s") or provider.timeout_s),
        workdir_mode=config.get("workdir_mode") or "tempdir",
        repository=config.get("repository", ""),
    )


def cli_prompt(history: Sequence[Mapping[str, Any]]) -> str:
    """The conversation as one prompt: earlier turns as a transcript, then the request."""
    *earlier, last = history
    if not earlier:
        return str(last["content"])
    transcript = "\n\n".join(
        f"{'User' if m['role'] == 'user' else 'You'}: {m['content']}" for m in earlier
    )
    return f"Conversation so far:\n\n{transcript}\n\nNow answer this:\n\n{last['content']}"


async def cli_turn(
    *,
    provider: Provider,
    name: str,
    config: AgentConfig,
    history: Sequence[Mapping[str, Any]],
    ledger: LedgerSink,
    metadata: Mapping[str, Any],
    on_event: Callable[[TurnEvent], Awaitable[None] | None] | None = None,
) -> TurnResult:
    async def emit(kind: str, **data: Any) -> None:
        if on_event is not None:
            outcome = on_event(TurnEvent(kind, data))
            if outcome is not None:
                await outcome

    async def relay(event: CliEvent) -> None:
        if event.kind == "text":
            await emit("delta", text=event.text)
        elif event.kind == "tool_use":
            await emit(
                "tool_call",
                id=event.tool_use_id,
                name=event.tool_name,
                arguments=str(event.tool_input),
            )
        elif event.kind == "tool_result":
            await emit(
                "tool_result",
                id=event.tool_use_id,
                name=event.tool_name,
                content=event.text[:2000],
                is_error=event.is_error,
            )

    prompt = cli_prompt(history)
    deployment_id = f"{provider.pk}:cli"
    call_id = str(uuid.uuid4())
    await ledger.call_started(
        LedgerStart(
            call_id=call_id,
            deployment_id=deployment_id,
            provider_kind="cli",
            model=config.model.model,
            attempt=1,
            prompt_tokens_estimate=estimate_tokens({"content": prompt}),
            metadata={**metadata, "provider_id": provider.pk},
            started_at=timezone.now(),
        )
    )
    started = time.perf_counter()
    try:
        run = await cli_agent_run(
            cli_command_for(provider),
            prompt=prompt,
            max_turns=max(1, config.max_tool_iterations),
            model=config.model.model,
            system=config.system_prompt(name=name),
            on_event=relay,
            allowed=list(settings.CLI_AGENT_COMMANDS),
        )
    except CliAgentError as error:
        latency = (time.perf_counter() - started) * 1000
        await ledger.call_finished(
            call_id,
            LedgerOutcome("failed", None, Decimal(0), False, latency, error.kind, None),
        )
        raise make_error(
            "timeout" if error.kind == "timeout" else "provider_error",
            str(error),
            deployment_id=deployment_id,
            transient=False,
        ) from None
    latency = (time.perf_counter() - started) * 1000
    usage = Usage(run.input_tokens, run.output_tokens, run.input_tokens + run.output_tokens)
    await ledger.call_finished(
        call_id,
        LedgerOutcome(
            "failed" if run.is_error else "completed",
            usage,
            run.cost_usd,
            False,
            latency,
            run.subtype if run.is_error else None,
            None,
        ),
    )
    if run.is_error:
        raise LLMError(
            "provider_error",
            f"The command-line agent stopped: {run.subtype} after {run.num_turns} turn(s).",
            transient=False,
            deployment_id=deployment_id,
        )
    call = LLMResult(
        text=run.text,
        tool_calls=[],
        finish_reason="stop",
        usage=usage,
        cost=run.cost_usd,
        cost_estimated=False,
        latency_ms=latency,
        first_token_ms=None,
        deployment_id=deployment_id,
        model=run.model or config.model.model,
        provider_kind="cli",
        attempts=[],
        retries=0,
        fallbacks=0,
        call_id=call_id,
    )
    await emit(
        "model_call",
        model=call.model,
        deployment=deployment_id,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        cost=str(call.cost),
        cost_estimated=False,
        latency_ms=round(latency),
        retries=0,
        fallbacks=0,
    )
    messages = [dict(message) for message in history]
    messages.append({"role": "assistant", "content": run.text})
    return TurnResult(text=run.text, messages=messages, calls=[call])
