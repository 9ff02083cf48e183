"""Ollama's native chat: `POST /api/chat`, NDJSON streaming by default."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from agents.ollama_models import Architecture, architecture_of

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
    require_messages,
    require_model,
    text_or_parts,
)

NAME = "ollama"
VERSION = "0.12.0"
# Synthetic but stable timings: clients compute tokens per second from them.
LOAD_NS = 1_000_000
PROMPT_NS_PER_TOKEN = 250_000
EVAL_NS_PER_TOKEN = 10_000_000
_FAMILY_RE = re.compile(r"[a-z]+")


def parse(body: Mapping[str, Any]) -> ChatRequest:
    model = require_model(body)
    system: list[str] = []
    messages: list[Message] = []
    for i, raw in enumerate(require_messages(body)):
        role = raw.get("role")
        if not isinstance(role, str):
            raise RequestError(f"messages[{i}].role is required")
        text = text_or_parts(raw.get("content"))
        if role == "system":
            system.append(text)
            continue
        for call in raw.get("tool_calls") or ():
            fn = call.get("function") if isinstance(call, Mapping) else None
            if isinstance(fn, Mapping):
                text += f"\n{fn.get('name')}({dumps(fn.get('arguments', {})).decode()})"
        messages.append(Message(role, text))
    tools: list[str] = []
    for tool in body.get("tools") or ():
        fn = tool.get("function") if isinstance(tool, Mapping) else None
        if isinstance(fn, Mapping) and isinstance(fn.get("name"), str):
            tools.append(fn["name"])
    options = body.get("options")
    max_tokens = None
    if isinstance(options, Mapping):
        predict = options.get("num_predict")
        # Ollama reads -1 and -2 as "no limit" / "fill the context".
        if isinstance(predict, int) and not isinstance(predict, bool) and predict > 0:
            max_tokens = predict
    fmt = body.get("format")
    json_schema: Mapping[str, Any] | None = None
    if fmt == "json":
        json_schema = {}
    elif isinstance(fmt, Mapping):
        json_schema = fmt
    return ChatRequest(
        protocol=NAME,
        model=model,
        messages=messages,
        system="\n".join(system),
        tools=tools,
        stream=body.get("stream", True) is not False,
        include_usage=True,
        max_tokens=max_tokens,
        json_schema=json_schema,
    )


def api_key(headers: Mapping[str, str]) -> str | None:
    return None


def error(kind: str, req: ChatRequest | None, message: str | None) -> web.Response:
    defaults = {
        "auth": (401, "unauthorized"),
        "429": (429, "too many requests, please try again later"),
        "500": (500, "llama runner process has terminated: exit status 2"),
        "503": (503, "server busy, please try again.  maximum pending requests exceeded"),
        "overloaded": (503, "server busy, please try again.  maximum pending requests exceeded"),
        "context_length": (400, "the input length exceeds the context length"),
    }
    status, text = defaults.get(kind, (400, "invalid request"))
    return error_response(status, {"error": message or text})


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _tool_calls(plan: ReplyPlan) -> list[dict[str, Any]]:
    return [{"function": {"name": c.name, "arguments": c.arguments}} for c in plan.tool_calls]


def _final_fields(plan: ReplyPlan) -> dict[str, Any]:
    prompt_ns = plan.prompt_tokens * PROMPT_NS_PER_TOKEN
    eval_ns = plan.completion_tokens * EVAL_NS_PER_TOKEN
    elapsed = time.monotonic_ns() - plan.started_ns
    fields: dict[str, Any] = {
        "done_reason": "length" if plan.finish == "length" else "stop",
        "done": True,
        "total_duration": max(elapsed, LOAD_NS + prompt_ns + eval_ns),
        "load_duration": LOAD_NS,
    }
    if not plan.usage_hidden:
        fields["prompt_eval_count"] = plan.prompt_tokens
        fields["prompt_eval_duration"] = prompt_ns
        fields["eval_count"] = plan.completion_tokens
        fields["eval_duration"] = eval_ns
    return fields


def plain_body(req: ChatRequest, plan: ReplyPlan) -> Any:
    message: dict[str, Any] = {"role": "assistant", "content": plan.text}
    if plan.tool_calls:
        message["tool_calls"] = _tool_calls(plan)
    return {"model": req.model, "created_at": now_rfc3339(), "message": message} | _final_fields(
        plan
    )


def stream_frames(req: ChatRequest, plan: ReplyPlan) -> Iterator[Frame]:
    head = b'{"model":' + dumps(req.model) + b',"created_at":"'
    half = len(plan.pieces) // 2
    for i, piece in enumerate(plan.pieces):
        if i == half:
            yield CUT
        message = dumps({"role": "assistant", "content": piece})
        yield head + now_rfc3339().encode() + b'","message":' + message + b',"done":false}\n'
    if not plan.pieces:
        yield CUT
    if plan.tool_calls:
        message = dumps({"role": "assistant", "content": "", "tool_calls": _tool_calls(plan)})
        yield head + now_rfc3339().encode() + b'","message":' + message + b',"done":false}\n'
    final = {
        "model": req.model,
        "created_at": now_rfc3339(),
        "message": {"role": "assistant", "content": ""},
    }
    yield dumps(final | _final_fields(plan)) + b"\n"


def broken_frame(req: ChatRequest, plan: ReplyPlan) -> bytes:
    return b'{"model":' + dumps(req.model) + b',"message":{"role":"assistant","content":"\n'


# Bits per weight of the quantizations the fake serves (as llama.cpp's quantize tool states them).
_BITS = {"Q4_K_M": 4.84, "Q4_0": 4.5, "Q8_0": 8.5, "F16": 16.0}
# A model the catalogue does not know is served with llama3.2's shape, so every name answers.
_DEFAULT_SHAPE = "llama3.2:3b"


def shape_of(name: str) -> Architecture:
    found = architecture_of(name)
    if found is not None:
        return found
    default = architecture_of(_DEFAULT_SHAPE)
    assert default is not None
    return default


def model_entry(name: str, modified_at: str) -> dict[str, Any]:
    """A `/api/tags` entry; its figures follow the model's published shape (or llama3.2's), and
    its digest derives from the name, so they stay stable."""
    digest = hashlib.sha256(name.encode()).hexdigest()
    shape = shape_of(name)
    leading = _FAMILY_RE.match(name.rsplit("/", 1)[-1].lower())
    family = shape.family if architecture_of(name) else (leading.group(0) if leading else "llama")
    return {
        "name": name,
        "model": name,
        "modified_at": modified_at,
        "size": int(shape.parameters * _BITS.get(shape.quantization, 4.84) / 8),
        "digest": digest,
        "details": {
            "parent_model": "",
            "format": "gguf",
            "family": family,
            "families": [family],
            "parameter_size": shape.parameter_size,
            "quantization_level": shape.quantization,
        },
    }


def show_body(name: str, modified_at: str) -> dict[str, Any]:
    """`POST /api/show`: the details and the GGUF metadata a planner reads (`model_info`)."""
    shape = shape_of(name)
    entry = model_entry(name, modified_at)
    arch = shape.family
    return {
        "license": "",
        "modelfile": f"FROM {name}\n",
        "parameters": "",
        "template": "{{ .Prompt }}",
        "details": entry["details"],
        "model_info": {
            "general.architecture": arch,
            "general.parameter_count": shape.parameters,
            f"{arch}.block_count": shape.layers,
            f"{arch}.context_length": shape.context,
            f"{arch}.embedding_length": shape.embedding,
            f"{arch}.attention.head_count": shape.heads,
            f"{arch}.attention.head_count_kv": shape.kv_heads,
            f"{arch}.attention.key_length": shape.key_length,
            f"{arch}.attention.value_length": shape.key_length,
        },
        "capabilities": ["completion", "tools"],
        "modified_at": modified_at,
    }


def tagged(name: str) -> str:
    """Ollama names carry a tag; a bare name means `:latest`."""
    return name if ":" in name.rsplit("/", 1)[-1] else name + ":latest"


PROTOCOL = Protocol(
    name=NAME,
    parse=parse,
    error=error,
    plain_body=plain_body,
    stream_frames=stream_frames,
    broken_frame=broken_frame,
    stream_content_type="application/x-ndjson",
    api_key=api_key,
)
