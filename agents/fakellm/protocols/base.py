"""Normalized request and reply types shared by the wire protocols."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any, Final, NamedTuple

from aiohttp import web

# One encoder instance: building a JSONEncoder per call costs more than the encoding itself
# for the small chunk payloads streams are made of.
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON, the way the providers put it on the wire."""
    return _encode(obj).encode()


class RequestError(ValueError):
    """The request body is not something the protocol accepts (answered with a 400)."""


class Message(NamedTuple):
    role: str
    text: str


class Cut:
    """Marks the middle of a stream, where the `cut` and `malformed` faults strike."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "CUT"


CUT: Final = Cut()

Frame = bytes | Cut

_MODEL_FAULT_RE = re.compile(r"[@:,;]?fault=([A-Za-z0-9_]+)")


@lru_cache(maxsize=1024)
def split_model_fault(model: str) -> tuple[str, str | None]:
    """`demo@fault=429x2` -> (`demo`, `429x2`): faults for clients that cannot set headers."""
    match = _MODEL_FAULT_RE.search(model)
    if match is None:
        return model, None
    return model[: match.start()] + model[match.end() :], match.group(1)


@dataclass(eq=False)
class ChatRequest:
    """A chat request, whatever protocol it came in."""

    protocol: str
    model: str
    messages: list[Message]
    system: str = ""
    tools: list[str] = field(default_factory=list)
    stream: bool = False
    include_usage: bool = False
    max_tokens: int | None = None
    # None: plain text. {}: any JSON object. Otherwise the JSON schema the reply must follow.
    json_schema: Mapping[str, Any] | None = None

    @property
    def base_model(self) -> str:
        return split_model_fault(self.model)[0]

    @property
    def model_fault(self) -> str | None:
        return split_model_fault(self.model)[1]

    @property
    def has_tools(self) -> bool:
        return bool(self.tools)

    @property
    def last_role(self) -> str:
        return self.messages[-1].role if self.messages else ""

    @property
    def last_text(self) -> str:
        return self.messages[-1].text if self.messages else ""

    @cached_property
    def system_lower(self) -> str:
        return self.system.lower()

    @cached_property
    def last_text_lower(self) -> str:
        return self.last_text.lower()

    @cached_property
    def digest(self) -> bytes:
        """Stable fingerprint of the conversation; seeds the reply and the ids."""
        h = hashlib.blake2b(digest_size=16)
        h.update(self.system.encode())
        for role, text in self.messages:
            h.update(b"\x1e" + role.encode() + b"\x1f" + text.encode())
        return h.digest()

    @property
    def prompt_text_length(self) -> int:
        return len(self.system) + sum(len(m.text) for m in self.messages)


@dataclass(slots=True)
class ToolCall:
    id: str
    name: str
    arguments: Mapping[str, Any]
    arguments_json: str


@dataclass(slots=True)
class ReplyPlan:
    """What to answer, before any protocol has shaped it."""

    id_suffix: str
    created: int
    started_ns: int
    text: str
    tool_calls: list[ToolCall]
    prompt_tokens: int
    completion_tokens: int
    finish: str  # "stop" | "tool_calls" | "length"
    pieces: list[str]
    chunk_delay: float = 0.0
    # Only the faults that shape a successful answer: "malformed", "cut", "no_usage".
    fault: str | None = None

    @property
    def usage_hidden(self) -> bool:
        return self.fault == "no_usage"


def fragments(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def text_or_parts(content: Any) -> str:
    """Flattens the `str | [{"type": "text", "text": ...}, ...]` content both APIs accept."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        out = []
        for part in content:
            if isinstance(part, Mapping):
                if isinstance(part.get("text"), str):
                    out.append(part["text"])
                elif "content" in part:
                    out.append(text_or_parts(part["content"]))
            elif isinstance(part, str):
                out.append(part)
        return "\n".join(out)
    return str(content)


def require_model(body: Mapping[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestError("'model' is required and must be a non-empty string")
    return model


def require_messages(body: Mapping[str, Any]) -> list[Any]:
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise RequestError("'messages' is required and must be an array")
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise RequestError(f"messages[{i}] must be an object")
    return messages


def optional_int(body: Mapping[str, Any], *keys: str) -> int | None:
    for key in keys:
        value = body.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise RequestError(f"'{key}' must be a positive integer")
        return value
    return None


RATE_LIMIT_HEADERS: Final = {"retry-after": "1", "retry-after-ms": "1000"}


def json_response(
    obj: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=dumps(obj), status=status, content_type="application/json", headers=headers
    )


def error_response(status: int, body: Any) -> web.Response:
    return json_response(body, status, RATE_LIMIT_HEADERS if status == 429 else None)


def truncated(body: bytes) -> bytes:
    """A prefix of a JSON object is never valid JSON: the closing brace is its last byte."""
    return body[: max(1, len(body) // 2)]


@dataclass(frozen=True, slots=True)
class Protocol:
    """What the server needs from one wire protocol."""

    name: str
    parse: Callable[[Mapping[str, Any]], ChatRequest]
    # kind is a fault name ("429", "auth", ...) or "bad_request"; the message overrides the default.
    error: Callable[[str, ChatRequest | None, str | None], web.Response]
    plain_body: Callable[[ChatRequest, ReplyPlan], Any]
    stream_frames: Callable[[ChatRequest, ReplyPlan], Iterator[Frame]]
    broken_frame: Callable[[ChatRequest, ReplyPlan], bytes]
    stream_content_type: str
    api_key: Callable[[Mapping[str, str]], str | None]
