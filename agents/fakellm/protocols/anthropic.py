"""Anthropic Messages: `POST /v1/messages`, plain and the SSE event stream."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from aiohttp import web

from .base import (
    CUT,
    ChatRequest,
    Frame,
    Message,
    Protocol,
    ReplyPlan,
    RequestError,
    dumps,
    error_response,
    fragments,
    optional_int,
    require_messages,
    require_model,
    text_or_parts,
)

NAME = "anthropic"
CONTEXT_WINDOW = 200_000
ARGUMENT_FRAGMENT = 16
STOP_REASONS = {"stop": "end_turn", "tool_calls": "tool_use", "length": "max_tokens"}


def _message_text(i: int, content: Any) -> tuple[str, bool]:
    """The text of one message, and whether it only carries tool results."""
    if isinstance(content, str):
        return content, False
    if not isinstance(content, list):
        raise RequestError(f"messages[{i}].content must be a string or an array of blocks")
    out: list[str] = []
    tool_results = 0
    for block in content:
        if not isinstance(block, Mapping):
            continue
        kind = block.get("type")
        if kind == "text":
            out.append(str(block.get("text", "")))
        elif kind == "tool_result":
            tool_results += 1
            out.append(text_or_parts(block.get("content")))
        elif kind == "tool_use":
            out.append(f"{block.get('name')}({dumps(block.get('input', {})).decode()})")
    return "\n".join(out), bool(content) and tool_results == len(content)


def parse(body: Mapping[str, Any]) -> ChatRequest:
    model = require_model(body)
    messages: list[Message] = []
    for i, raw in enumerate(require_messages(body)):
        role = raw.get("role")
        if role not in ("user", "assistant"):
            raise RequestError(f"messages[{i}].role must be 'user' or 'assistant'")
        text, only_tool_results = _message_text(i, raw.get("content"))
        # Tool results travel as user messages here; calling them "tool" lets one rule
        # (`last_role: "tool"`) work across protocols.
        messages.append(Message("tool" if only_tool_results else role, text))
    system = body.get("system")
    if system is not None and not isinstance(system, str | list):
        raise RequestError("'system' must be a string or an array of text blocks")
    tools = [
        tool["name"]
        for tool in body.get("tools") or ()
        if isinstance(tool, Mapping) and isinstance(tool.get("name"), str)
    ]
    return ChatRequest(
        protocol=NAME,
        model=model,
        messages=messages,
        system=text_or_parts(system),
        tools=tools,
        stream=body.get("stream") is True,
        # Usage is always part of an Anthropic stream.
        include_usage=True,
        max_tokens=optional_int(body, "max_tokens"),
    )


def api_key(headers: Mapping[str, str]) -> str | None:
    key = headers.get("x-api-key")
    if key is not None:
        return key
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def _error(status: int, type_: str, message: str) -> web.Response:
    return error_response(status, {"type": "error", "error": {"type": type_, "message": message}})


def error(kind: str, req: ChatRequest | None, message: str | None) -> web.Response:
    if kind == "auth":
        return _error(401, "authentication_error", message or "invalid x-api-key")
    if kind == "429":
        text = message or "Number of requests has exceeded your rate limit. Please try again later."
        return _error(429, "rate_limit_error", text)
    if kind == "500":
        return _error(500, "api_error", message or "Internal server error")
    if kind == "503":
        return _error(503, "overloaded_error", message or "Overloaded")
    if kind == "overloaded":
        return _error(529, "overloaded_error", message or "Overloaded")
    if kind == "context_length":
        used = CONTEXT_WINDOW + 1 + (req.prompt_text_length // 4 if req else 0)
        text = message or f"prompt is too long: {used} tokens > {CONTEXT_WINDOW} maximum"
        return _error(400, "invalid_request_error", text)
    return _error(400, "invalid_request_error", message or "Invalid request.")


def _usage(plan: ReplyPlan, output_tokens: int) -> dict[str, int]:
    return {
        "input_tokens": plan.prompt_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
    }


def plain_body(req: ChatRequest, plan: ReplyPlan) -> Any:
    content: list[dict[str, Any]] = []
    if plan.text:
        content.append({"type": "text", "text": plan.text})
    for call in plan.tool_calls:
        content.append(
            {"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}
        )
    body: dict[str, Any] = {
        "id": "msg_" + plan.id_suffix,
        "type": "message",
        "role": "assistant",
        "model": req.model,
        "content": content,
        "stop_reason": STOP_REASONS[plan.finish],
        "stop_sequence": None,
    }
    if not plan.usage_hidden:
        body["usage"] = _usage(plan, plan.completion_tokens)
    return body


def _event(name: bytes, data: Any) -> bytes:
    return b"event: " + name + b"\ndata: " + dumps(data) + b"\n\n"


_PING = _event(b"ping", {"type": "ping"})
_MESSAGE_STOP = _event(b"message_stop", {"type": "message_stop"})
_EMPTY_TEXT: Final = {"type": "text", "text": ""}


def stream_frames(req: ChatRequest, plan: ReplyPlan) -> Iterator[Frame]:
    message: dict[str, Any] = {
        "id": "msg_" + plan.id_suffix,
        "type": "message",
        "role": "assistant",
        "model": req.model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": _usage(plan, 1),
    }
    yield _event(b"message_start", {"type": "message_start", "message": message})
    pinged = False
    index = 0
    if plan.text:
        yield _event(
            b"content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": _EMPTY_TEXT},
        )
        yield _PING
        pinged = True
        half = len(plan.pieces) // 2
        delta_head = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
        for i, piece in enumerate(plan.pieces):
            if i == half:
                yield CUT
            text_delta = dumps({"type": "text_delta", "text": piece})
            yield delta_head + b'"delta":' + text_delta + b"}\n\n"
        yield _event(b"content_block_stop", {"type": "content_block_stop", "index": 0})
        index = 1
    for call in plan.tool_calls:
        block: dict[str, Any] = {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}
        yield _event(
            b"content_block_start",
            {"type": "content_block_start", "index": index, "content_block": block},
        )
        if not pinged:
            yield _PING
            pinged = True
            yield CUT
        for fragment in ["", *fragments(call.arguments_json, ARGUMENT_FRAGMENT)]:
            delta = {"type": "input_json_delta", "partial_json": fragment}
            yield _event(
                b"content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": delta},
            )
        yield _event(b"content_block_stop", {"type": "content_block_stop", "index": index})
        index += 1
    if not pinged:
        yield _PING
        yield CUT
    message_delta: dict[str, Any] = {
        "type": "message_delta",
        "delta": {"stop_reason": STOP_REASONS[plan.finish], "stop_sequence": None},
    }
    if not plan.usage_hidden:
        message_delta["usage"] = {"output_tokens": plan.completion_tokens}
    yield _event(b"message_delta", message_delta)
    yield _MESSAGE_STOP


def broken_frame(req: ChatRequest, plan: ReplyPlan) -> bytes:
    return (
        b"event: content_block_delta\n"
        b'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"\n\n'
    )


PROTOCOL = Protocol(
    name=NAME,
    parse=parse,
    error=error,
    plain_body=plain_body,
    stream_frames=stream_frames,
    broken_frame=broken_frame,
    stream_content_type="text/event-stream; charset=utf-8",
    api_key=api_key,
)
