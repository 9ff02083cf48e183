"""The full lane: every non-OpenAI protocol through `litellm.acompletion`.

litellm is imported here, lazily, on the first full-lane call: importing it costs seconds and
hundreds of MB, which a worker that only uses the lean lane never pays. Retries, fallbacks and
routing stay the gateway's: litellm gets `num_retries=0` and never its Router.

litellm's HTTP goes through the gateway's own aiohttp session (`litellm_http_client`), so the
outbound URL policy's resolver checks the address of every connection, as in the lean lane: a
host that passed the check when its provider was saved cannot resolve elsewhere later.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
import time
from typing import Any

import aiohttp

from .errors import RefusedByPolicy, classify_litellm_exception, make_error
from .kinds import provider_kind
from .lean import DeltaCallback, new_session, stream_result
from .redaction import RedactSecretsFilter
from .timeouts import CallClock
from .types import Deployment, LaneResult, LLMRequest, ToolCall, Usage

_lock = threading.Lock()
_litellm: Any = None


def load_litellm() -> Any:
    """Imports and configures litellm once per process."""
    global _litellm
    if _litellm is None:
        with _lock:
            if _litellm is None:
                # Otherwise litellm fetches its price map over the network at import time.
                os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
                litellm: Any = importlib.import_module("litellm")
                litellm.suppress_debug_info = True
                litellm.telemetry = False
                litellm.turn_off_message_logging = True
                litellm.drop_params = False
                # Counting tokens for some models would download a tokenizer from Hugging Face:
                # seconds, over the network. Without it LiteLLM counts with its bundled tiktoken.
                litellm.disable_hf_tokenizer_download = True
                litellm.set_verbose = False
                # A proxy from the environment would be connected to instead of the provider,
                # and the policy would check the proxy's address; the lean lane ignores it too.
                litellm.disable_aiohttp_trust_env = True
                for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "litellm"):
                    # litellm logs request bodies (with headers) at DEBUG/INFO.
                    logging.getLogger(name).setLevel(logging.WARNING)
                # httpx logs request URLs at INFO; some providers (Gemini) put the key in them.
                redact = RedactSecretsFilter()
                for name in ("httpx", "httpcore"):
                    logging.getLogger(name).addFilter(redact)
                _litellm = litellm
    return _litellm


def litellm_model(dep: Deployment) -> str:
    return f"{provider_kind(dep.provider_kind).litellm_provider}/{dep.model}"


def completion_kwargs(dep: Deployment, req: LLMRequest) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "model": litellm_model(dep),
        "messages": req.messages,
        "stream": req.stream,
        "timeout": dep.timeout_s,
        "num_retries": 0,
        "max_retries": 0,
    }
    if dep.base_url:
        kwargs["api_base"] = dep.base_url
    if dep.api_key:
        kwargs["api_key"] = dep.api_key
    if dep.api_version:
        kwargs["api_version"] = dep.api_version
    if dep.headers:
        kwargs["extra_headers"] = dict(dep.headers)
    if req.stream:
        kwargs["stream_options"] = {"include_usage": True}
    if req.tools:
        kwargs["tools"] = req.tools
        if req.tool_choice is not None:
            kwargs["tool_choice"] = req.tool_choice
    for name in ("temperature", "top_p", "max_tokens", "seed", "response_format"):
        value = getattr(req, name)
        if value is not None:
            kwargs[name] = value
    if req.stop:
        kwargs["stop"] = req.stop
    return kwargs


def _usage(raw: Any) -> Usage | None:
    if raw is None:
        return None
    prompt = getattr(raw, "prompt_tokens", None) or 0
    completion = getattr(raw, "completion_tokens", None) or 0
    if not prompt and not completion:
        return None
    total = getattr(raw, "total_tokens", None) or prompt + completion
    # LiteLLM reports cache reads in OpenAI's shape for every provider it normalises.
    details = getattr(raw, "prompt_tokens_details", None)
    cached = getattr(details, "cached_tokens", None) or getattr(raw, "cache_read_input_tokens", 0)
    cached = cached if isinstance(cached, int) and cached > 0 else 0
    return Usage(int(prompt), int(completion), int(total), cached)


def litellm_http_client(session: aiohttp.ClientSession) -> Any:
    """litellm's async HTTP client, sending through `session` (the gateway's, one per loop).

    The session's connector carries the policy resolver (`lean.new_session`); a replacement
    session, should litellm need one (the session closed), is made the same way. Redirects are
    not followed: a key must never be sent to another address than the one it was saved with.
    """
    load_litellm()
    from litellm.llms.custom_httpx.aiohttp_transport import LiteLLMAiohttpTransport
    from litellm.llms.custom_httpx.http_handler import AsyncHTTPHandler

    transport = LiteLLMAiohttpTransport(
        client=session, owns_session=False, session_factory=new_session
    )
    return AsyncHTTPHandler(transport=transport, follow_redirects=False)


def _refusal(exc: BaseException) -> RefusedByPolicy | None:
    """The policy's refusal behind an exception litellm wrapped (one or more times), if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, RefusedByPolicy):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


async def call_full(
    dep: Deployment,
    req: LLMRequest,
    on_delta: DeltaCallback | None,
    coalesce_s: float,
    client: Any = None,
    clock: CallClock | None = None,
) -> LaneResult:
    """One call through litellm; `client` is `litellm_http_client(...)` (None only in tests)."""
    litellm = load_litellm()
    started = time.perf_counter()
    kwargs = completion_kwargs(dep, req)
    if client is not None:
        kwargs["client"] = client
    try:
        response = await litellm.acompletion(**kwargs)
        if clock is not None:
            clock.tick()  # the answer began (streaming) or arrived (not streaming)
        if req.stream:
            return await _read_stream(response, dep, on_delta, coalesce_s, started, clock)
    except Exception as exc:
        refused = _refusal(exc)
        if refused is not None:
            raise make_error(
                "refused", str(refused), deployment_id=dep.id, transient=False
            ) from None
        raise classify_litellm_exception(exc, deployment_id=dep.id, secret=dep.api_key) from None
    try:
        choice = response.choices[0]
        message = choice.message
        tool_calls = [
            ToolCall(c.id or "", c.function.name or "", c.function.arguments or "")
            for c in (message.tool_calls or ())
        ]
        return LaneResult(
            text=message.content or "",
            tool_calls=tool_calls,
            finish_reason=choice.finish_reason,
            usage=_usage(getattr(response, "usage", None)),
            first_token_ms=(time.perf_counter() - started) * 1000,
        )
    except (AttributeError, IndexError, TypeError):
        raise make_error(
            "malformed_response", "the answer is not a chat completion", deployment_id=dep.id
        ) from None


async def _read_stream(
    stream: Any,
    dep: Deployment,
    on_delta: DeltaCallback | None,
    coalesce_s: float,
    started: float,
    clock: CallClock | None = None,
) -> LaneResult:
    parts: list[str] = []
    pending: list[str] = []
    calls: dict[int, list[Any]] = {}
    usage: Usage | None = None
    finish: str | None = None
    first_token: float | None = None
    last_flush = 0.0
    perf = time.perf_counter
    metered = clock is not None and clock.meter_chars is not None
    if clock is not None:
        clock.parts = parts
    async for chunk in stream:
        if clock is not None:
            clock.tick()
        grown = 0
        chunk_usage = _usage(getattr(chunk, "usage", None))
        if chunk_usage is not None:
            usage = chunk_usage
        for choice in chunk.choices or ():
            delta = choice.delta
            if delta is not None:
                text = delta.content
                if text:
                    parts.append(text)
                    pending.append(text)
                    grown += len(text)
                    now = perf()
                    if first_token is None:
                        first_token = now
                    if on_delta is not None and now - last_flush >= coalesce_s:
                        last_flush = now
                        joined = "".join(pending)
                        pending.clear()
                        result = on_delta(joined)
                        if result is not None:
                            await result
                for tc in getattr(delta, "tool_calls", None) or ():
                    if first_token is None:
                        first_token = perf()
                    index = getattr(tc, "index", 0) or 0
                    entry = calls.get(index)
                    if entry is None:
                        entry = calls[index] = ["", "", []]
                    if tc.id:
                        entry[0] = tc.id
                    fn = tc.function
                    if fn is not None:
                        if fn.name:
                            entry[1] += fn.name
                        if fn.arguments:
                            entry[2].append(fn.arguments)
                            grown += len(fn.arguments)
            if choice.finish_reason:
                finish = choice.finish_reason
        if metered and grown and clock is not None and clock.grew(grown):
            # A limit over the call is reached: keep what arrived, stop reading.
            finish, calls, usage = "stopped", {}, None
            break
    lane = await stream_result(
        dep=dep,
        complete=finish is not None,
        parts=parts,
        calls=calls,
        finish=finish,
        usage=usage,
        pending=pending,
        on_delta=on_delta,
        first_token=first_token,
        started=started,
    )
    if clock is not None and clock.stopped:
        lane.stopped = clock.stopped
    return lane
