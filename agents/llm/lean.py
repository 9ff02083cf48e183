"""The lean lane: the OpenAI Chat Completions wire protocol over one shared aiohttp session.

Kept deliberately small on the hot path: the body is encoded once, each SSE event is decoded
once, deltas are coalesced before the callback, and nothing is logged per chunk.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

import aiohttp
from aiohttp.abc import AbstractResolver

from .errors import RefusedByPolicy, classify_http_error, make_error
from .timeouts import CallClock, timeout_error
from .types import Deployment, LaneResult, LLMRequest, ToolCall, Usage

DeltaCallback = Callable[[str], Awaitable[None] | None]

MAX_ERROR_BODY: Final = 64 * 1024
CONNECT_TIMEOUT_S: Final = 10.0
DNS_CACHE_S: Final = 300
BEARER_KINDS: Final = frozenset(
    {"openai", "groq", "mistral", "openrouter", "openai_compatible", "ollama", "demo"}
)
# Mistral rejects `stream_options` (litellm drops it too) and sends usage in its last chunk anyway.
NO_STREAM_OPTIONS: Final = frozenset({"mistral"})
_JSON_HEADERS: Final = {"Content-Type": "application/json", "Accept": "application/json"}
_SSE_HEADERS: Final = {"Content-Type": "application/json", "Accept": "text/event-stream"}

_loads = json.loads
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_timeouts: dict[float, aiohttp.ClientTimeout] = {}


# Set by the application (agents.apps) to apply its outbound URL policy to every address the
# session connects to, so a host cannot pass the check at save time and resolve elsewhere later.
resolver_factory: Callable[[], AbstractResolver] | None = None


def new_session() -> aiohttp.ClientSession:
    """The session a gateway shares across its calls (one per event loop)."""
    resolver = resolver_factory() if resolver_factory is not None else None
    connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=DNS_CACHE_S, resolver=resolver)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=None),
        auto_decompress=True,
        trust_env=False,
    )


def _timeout(seconds: float) -> aiohttp.ClientTimeout:
    timeout = _timeouts.get(seconds)
    if timeout is None:
        timeout = _timeouts[seconds] = aiohttp.ClientTimeout(
            total=seconds, sock_connect=min(CONNECT_TIMEOUT_S, seconds)
        )
    return timeout


def endpoint(dep: Deployment) -> tuple[str, dict[str, str]]:
    """The URL to POST to and the auth headers, as the provider (and litellm) expect them."""
    base = dep.base_url.rstrip("/")
    headers: dict[str, str] = {}
    if dep.provider_kind == "azure":
        url = (
            f"{base}/openai/deployments/{dep.model}/chat/completions"
            f"?api-version={dep.api_version or ''}"
        )
        if dep.api_key:
            headers["api-key"] = dep.api_key
    else:
        url = base + "/chat/completions"
        if dep.api_key:
            headers["Authorization"] = "Bearer " + dep.api_key
    if dep.headers:
        headers.update(dep.headers)
    return url, headers


def request_body(dep: Deployment, req: LLMRequest) -> dict[str, Any]:
    """The JSON body, with only the parameters that are set."""
    body: dict[str, Any] = {"model": dep.model, "messages": req.messages}
    if req.tools:
        body["tools"] = req.tools
        if req.tool_choice is not None:
            body["tool_choice"] = req.tool_choice
    if req.temperature is not None:
        body["temperature"] = req.temperature
    if req.top_p is not None:
        body["top_p"] = req.top_p
    if req.max_tokens is not None:
        body["max_tokens"] = req.max_tokens
    if req.seed is not None:
        body["seed"] = req.seed
    if req.response_format is not None:
        body["response_format"] = req.response_format
    if req.stop:
        body["stop"] = req.stop
    if req.stream:
        body["stream"] = True
        if dep.provider_kind not in NO_STREAM_OPTIONS:
            body["stream_options"] = {"include_usage": True}
    return body


def estimate_tokens(text_length: int) -> int:
    return max(1, (text_length + 3) // 4) if text_length else 0


def prompt_chars(messages: list[dict[str, Any]]) -> int:
    total = 0
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            total += len(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict):
                    text = part.get("text")
                    if isinstance(text, str):
                        total += len(text)
        calls = message.get("tool_calls")
        if calls:
            total += len(str(calls))
    return total


def _model(data: Any) -> str | None:
    model = data.get("model") if isinstance(data, dict) else None
    return model if isinstance(model, str) and model else None


def _usage(raw: Any) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    prompt = raw.get("prompt_tokens") or 0
    completion = raw.get("completion_tokens") or 0
    details = raw.get("prompt_tokens_details")
    # OpenAI's way of saying how much of the prompt came from its cache (others say nothing).
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    return Usage(
        prompt,
        completion,
        raw.get("total_tokens") or prompt + completion,
        cached if isinstance(cached, int) and cached > 0 else 0,
    )


async def call_lean(
    session: aiohttp.ClientSession,
    dep: Deployment,
    req: LLMRequest,
    on_delta: DeltaCallback | None,
    coalesce_s: float,
    clock: CallClock | None = None,
) -> LaneResult:
    url, headers = endpoint(dep)
    body = _dumps(request_body(dep, req)).encode()
    headers.update(_SSE_HEADERS if req.stream else _JSON_HEADERS)
    started = time.perf_counter()
    try:
        async with session.post(
            url, data=body, headers=headers, timeout=_timeout(dep.timeout_s), allow_redirects=False
        ) as resp:
            if clock is not None:
                clock.tick()  # the first byte: the status line and headers
            status = resp.status
            if status != 200:
                raw = await resp.content.read(MAX_ERROR_BODY)
                raise classify_http_error(
                    status, raw, resp.headers, deployment_id=dep.id, secret=dep.api_key
                )
            if req.stream:
                return await _read_stream(resp, dep, on_delta, coalesce_s, started, clock)
            return _read_plain(await resp.read(), dep, started)
    except (TimeoutError, aiohttp.ServerTimeoutError):
        raise timeout_error("total", dep.timeout_s, dep.id) from None
    except aiohttp.ClientPayloadError:
        raise make_error(
            "malformed_response", "the answer was cut off", deployment_id=dep.id
        ) from None
    except aiohttp.ServerDisconnectedError:
        raise make_error(
            "malformed_response",
            "the connection closed before the answer ended",
            deployment_id=dep.id,
        ) from None
    except RefusedByPolicy as exc:
        raise make_error("refused", str(exc), deployment_id=dep.id, transient=False) from None
    except (aiohttp.ClientConnectionError, OSError) as exc:
        raise make_error(
            "unreachable", type(exc).__name__, deployment_id=dep.id, secret=dep.api_key
        ) from None
    except aiohttp.ClientError as exc:
        raise make_error(
            "provider_error", type(exc).__name__, deployment_id=dep.id, secret=dep.api_key
        ) from None


def _read_plain(raw: bytes, dep: Deployment, started: float) -> LaneResult:
    try:
        data = _loads(raw)
        choice = data["choices"][0]
        message = choice["message"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise make_error(
            "malformed_response", "the body is not a chat completion", deployment_id=dep.id
        ) from None
    calls = message.get("tool_calls") or ()
    tool_calls = []
    for call in calls:
        fn = call.get("function") or {}
        tool_calls.append(
            ToolCall(call.get("id") or "", fn.get("name") or "", fn.get("arguments") or "")
        )
    return LaneResult(
        text=message.get("content") or "",
        tool_calls=tool_calls,
        finish_reason=choice.get("finish_reason"),
        usage=_usage(data.get("usage")),
        first_token_ms=(time.perf_counter() - started) * 1000,
        model=_model(data),
    )


async def _read_stream(
    resp: aiohttp.ClientResponse,
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
    reported: str | None = None
    finish: str | None = None
    done = False
    first_token: float | None = None
    last_flush = 0.0
    perf = time.perf_counter
    buffer = b""
    content = resp.content
    eof = False
    metered = clock is not None and clock.meter_chars is not None
    if clock is not None:
        clock.parts = parts
    while not done and not eof:
        chunk = await content.readany()
        if clock is not None:
            clock.tick()
        if not chunk:
            if not buffer:
                break
            chunk, buffer, eof = buffer + b"\n", b"", True
        elif buffer:
            chunk = buffer + chunk
        lines = chunk.split(b"\n")
        buffer = lines.pop()
        got_text = False
        grown = 0
        for line in lines:
            if line[:5] != b"data:":
                continue
            payload = line[5:].strip()
            if payload == b"[DONE]":
                done = True
                break
            if not payload:
                continue
            try:
                event = _loads(payload)
                if "error" in event and not event.get("choices"):
                    error = event["error"]
                    detail = error.get("message", "") if isinstance(error, dict) else str(error)
                    raise make_error(
                        "provider_error",
                        f"error in the stream: {detail}",
                        deployment_id=dep.id,
                        secret=dep.api_key,
                    )
                raw_usage = event.get("usage")
                if raw_usage:
                    usage = _usage(raw_usage)
                    reported = _model(event)
                for choice in event.get("choices") or ():
                    if choice.get("index", 0) != 0:
                        continue
                    delta = choice.get("delta")
                    if delta:
                        text = delta.get("content")
                        if text:
                            parts.append(text)
                            pending.append(text)
                            got_text = True
                            grown += len(text)
                        tcs = delta.get("tool_calls")
                        if tcs:
                            if first_token is None:
                                first_token = perf()
                            for tc in tcs:
                                index = tc.get("index", 0)
                                entry = calls.get(index)
                                if entry is None:
                                    entry = calls[index] = ["", "", []]
                                if tc.get("id"):
                                    entry[0] = tc["id"]
                                fn = tc.get("function")
                                if fn:
                                    if fn.get("name"):
                                        entry[1] += fn["name"]
                                    arguments = fn.get("arguments")
                                    if arguments:
                                        entry[2].append(arguments)
                                        grown += len(arguments)
                    reason = choice.get("finish_reason")
                    if reason:
                        finish = reason
            except (ValueError, AttributeError, TypeError):
                raise make_error(
                    "malformed_response", "a stream event is not valid JSON", deployment_id=dep.id
                ) from None
            if metered and grown:
                assert clock is not None
                if clock.grew(grown):
                    # A limit over the call is reached at this event: keep what came, stop.
                    done, finish, calls = True, "stopped", {}
                    break
                grown = 0
        if got_text:
            now = perf()
            if first_token is None:
                first_token = now
            if on_delta is not None and now - last_flush >= coalesce_s:
                last_flush = now
                text = "".join(pending)
                pending.clear()
                result = on_delta(text)
                if result is not None:
                    await result
    lane = await stream_result(
        dep=dep,
        complete=done or finish is not None,
        parts=parts,
        calls=calls,
        finish=finish,
        usage=usage,
        pending=pending,
        on_delta=on_delta,
        first_token=first_token,
        started=started,
    )
    lane.model = reported
    if clock is not None and clock.stopped:
        lane.stopped = clock.stopped
        lane.usage = None  # the provider's count comes at the end: estimated instead
    return lane


async def stream_result(
    *,
    dep: Deployment,
    complete: bool,
    parts: list[str],
    calls: dict[int, list[Any]],
    finish: str | None,
    usage: Usage | None,
    pending: list[str],
    on_delta: Callable[[str], Awaitable[None] | None] | None,
    first_token: float | None,
    started: float,
) -> LaneResult:
    """The end of a stream, either lane: refuse a cut-off one, flush the last deltas, assemble."""
    if not complete:
        raise make_error(
            "malformed_response",
            "the stream ended before the answer was complete",
            deployment_id=dep.id,
        )
    if pending and on_delta is not None:
        result = on_delta("".join(pending))
        if result is not None:
            await result
    return LaneResult(
        text="".join(parts),
        tool_calls=[ToolCall(c[0], c[1], "".join(c[2])) for _, c in sorted(calls.items())],
        finish_reason=finish,
        usage=usage,
        first_token_ms=None if first_token is None else (first_token - started) * 1000,
    )
