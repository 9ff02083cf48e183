"""OpenAI Chat Completions: `POST /v1/chat/completions`, plain and SSE (also Ollama's `/v1`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

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

NAME = "openai"
FINGERPRINT = "fp_fakellm"
CONTEXT_WINDOW = 128_000
# Streamed tool arguments arrive in token-sized fragments in the real API.
ARGUMENT_FRAGMENT = 16


def parse(body: Mapping[str, Any]) -> ChatRequest:
    model = require_model(body)
    system: list[str] = []
    messages: list[Message] = []
    for i, raw in enumerate(require_messages(body)):
        role = raw.get("role")
        if not isinstance(role, str):
            raise RequestError(f"messages[{i}].role is required")
        text = text_or_parts(raw.get("content"))
        if role in ("system", "developer"):
            system.append(text)
            continue
        calls = raw.get("tool_calls")
        if role == "assistant" and isinstance(calls, list):
            # Fold the calls into the text so they count for the fingerprint and token estimate.
            for call in calls:
                fn = call.get("function") if isinstance(call, Mapping) else None
                if isinstance(fn, Mapping):
                    text += f"\n{fn.get('name')}({fn.get('arguments')})"
        messages.append(Message(role, text))

    tools: list[str] = []
    for tool in body.get("tools") or ():
        fn = tool.get("function") if isinstance(tool, Mapping) else None
        if isinstance(fn, Mapping) and isinstance(fn.get("name"), str):
            tools.append(fn["name"])
    for fn in body.get("functions") or ():
        if isinstance(fn, Mapping) and isinstance(fn.get("name"), str):
            tools.append(fn["name"])

    stream = body.get("stream") is True
    options = body.get("stream_options")
    include_usage = stream and isinstance(options, Mapping) and options.get("include_usage") is True

    json_schema: Mapping[str, Any] | None = None
    response_format = body.get("response_format")
    if isinstance(response_format, Mapping):
        if response_format.get("type") == "json_object":
            json_schema = {}
        elif response_format.get("type") == "json_schema":
            spec = response_format.get("json_schema")
            schema = spec.get("schema") if isinstance(spec, Mapping) else None
            json_schema = schema if isinstance(schema, Mapping) else {}

    return ChatRequest(
        protocol=NAME,
        model=model,
        messages=messages,
        system="\n".join(system),
        tools=tools,
        stream=stream,
        include_usage=include_usage,
        max_tokens=optional_int(body, "max_completion_tokens", "max_tokens"),
        json_schema=json_schema,
    )


def api_key(headers: Mapping[str, str]) -> str | None:
    auth = headers.get("authorization")
    if auth is not None:
        scheme, _, token = auth.partition(" ")
        return token.strip() if scheme.lower() == "bearer" else None
    return headers.get("api-key")


def _error(message: str, type_: str, code: str | None, param: str | None = None) -> Any:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def error(kind: str, req: ChatRequest | None, message: str | None) -> web.Response:
    if kind == "auth":
        body = _error(
            message or "Incorrect API key provided.", "invalid_request_error", "invalid_api_key"
        )
        return error_response(401, body)
    if kind == "429":
        text = message or "Rate limit reached for requests per min (RPM). Please try again in 1s."
        return error_response(429, _error(text, "requests", "rate_limit_exceeded"))
    if kind == "500":
        text = message or "The server had an error while processing your request. Sorry about that!"
        return error_response(500, _error(text, "server_error", None))
    if kind in ("503", "overloaded"):
        text = message or "The engine is currently overloaded, please try again later."
        return error_response(503, _error(text, "server_error", None))
    if kind == "context_length":
        used = CONTEXT_WINDOW + 1 + (req.prompt_text_length // 4 if req else 0)
        text = message or (
            f"This model's maximum context length is {CONTEXT_WINDOW} tokens. However, your "
            f"messages resulted in {used} tokens. Please reduce the length of the messages."
        )
        return error_response(
            400, _error(text, "invalid_request_error", "context_length_exceeded", "messages")
        )
    return error_response(400, _error(message or "Invalid request.", "invalid_request_error", None))


def plain_body(req: ChatRequest, plan: ReplyPlan) -> Any:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": plan.text if plan.text or not plan.tool_calls else None,
        "refusal": None,
        "annotations": [],
    }
    if plan.tool_calls:
        message["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments_json},
            }
            for call in plan.tool_calls
        ]
    body: dict[str, Any] = {
        "id": "chatcmpl-" + plan.id_suffix,
        "object": "chat.completion",
        "created": plan.created,
        "model": req.model,
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": plan.finish}
        ],
    }
    if not plan.usage_hidden:
        body["usage"] = _usage(plan)
    body["system_fingerprint"] = FINGERPRINT
    return body


def _usage(plan: ReplyPlan) -> dict[str, int]:
    return {
        "prompt_tokens": plan.prompt_tokens,
        "completion_tokens": plan.completion_tokens,
        "total_tokens": plan.prompt_tokens + plan.completion_tokens,
    }


def _chunk_prefix(req: ChatRequest, plan: ReplyPlan) -> bytes:
    # Everything before the delta is identical in every chunk: encode it once per response.
    head = dumps(
        {
            "id": "chatcmpl-" + plan.id_suffix,
            "object": "chat.completion.chunk",
            "created": plan.created,
            "model": req.model,
            "system_fingerprint": FINGERPRINT,
        }
    )
    return b"data: " + head[:-1] + b',"choices":[{"index":0,"delta":'


def stream_frames(req: ChatRequest, plan: ReplyPlan) -> Iterator[Frame]:
    prefix = _chunk_prefix(req, plan)
    usage_null = b',"usage":null' if req.include_usage else b""
    suffix = b',"logprobs":null,"finish_reason":null}]' + usage_null + b"}\n\n"

    calls = plan.tool_calls
    headers = [
        {
            "index": i,
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        for i, call in enumerate(calls)
    ]
    pieces = plan.pieces
    if plan.text or not calls:
        yield prefix + dumps({"role": "assistant", "content": "", "refusal": None}) + suffix
        first_call = 0
    else:
        # With no text, the real API opens with the role and the first call in one delta.
        role = {"role": "assistant", "content": None, "tool_calls": [headers[0]], "refusal": None}
        yield prefix + dumps(role) + suffix
        first_call = 1
    half = len(pieces) // 2
    for i, piece in enumerate(pieces):
        if i == half:
            yield CUT
        yield prefix + dumps({"content": piece}) + suffix
    if not pieces:
        yield CUT
    for i, call in enumerate(calls):
        if i >= first_call:
            yield prefix + dumps({"tool_calls": [headers[i]]}) + suffix
        for fragment in fragments(call.arguments_json, ARGUMENT_FRAGMENT):
            delta = {"tool_calls": [{"index": i, "function": {"arguments": fragment}}]}
            yield prefix + dumps(delta) + suffix

    finish = b',"logprobs":null,"finish_reason":' + dumps(plan.finish) + b"}]"
    yield prefix + b"{}" + finish + usage_null + b"}\n\n"
    if req.include_usage and not plan.usage_hidden:
        usage_chunk = {
            "id": "chatcmpl-" + plan.id_suffix,
            "object": "chat.completion.chunk",
            "created": plan.created,
            "model": req.model,
            "system_fingerprint": FINGERPRINT,
            "choices": [],
            "usage": _usage(plan),
        }
        yield b"data: " + dumps(usage_chunk) + b"\n\n"
    yield b"data: [DONE]\n\n"


def broken_frame(req: ChatRequest, plan: ReplyPlan) -> bytes:
    return _chunk_prefix(req, plan) + b'{"content":"\n\n'


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
