"""Talking to an MCP server with the official `mcp` SDK: list its tools, call one.

Each listing or call opens its own session and closes it: runs execute on any worker process, a
tool call is seconds apart from the next, and a session held open would be one more thing a
dead worker leaves behind. What goes wrong comes back as `McpFailure` with a kind a person (or
a model) can act on: unreachable, refused, timeout, auth, protocol.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import httpx2
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult, Implementation

FailureKind = Literal["unreachable", "refused", "timeout", "auth", "protocol", "not_found"]

CLIENT_INFO: Final = Implementation(name="a2a-studio", version="1")
# A tool's text as the model and the page see it is cut here; a model cannot use megabytes.
MAX_RESULT_CHARS: Final = 100_000


class McpFailure(Exception):
    """The server could not be used for this; `str()` is for people and models alike."""

    def __init__(self, kind: FailureKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class McpEndpoint:
    """How to reach one server. `url` must already have passed the outbound URL policy;
    `command` must already be an allow-listed, resolved executable."""

    transport: Literal["http", "stdio"]
    url: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    command: str = ""
    args: Sequence[str] = ()
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class McpToolInfo:
    name: str
    description: str
    input_schema: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "input_schema": self.input_schema,
        }


@dataclass(frozen=True)
class McpCallResult:
    content: str
    is_error: bool
    structured: Any = None
    latency_ms: float = 0.0


def _leaves(error: BaseException) -> list[BaseException]:
    """The SDK runs its transports in task groups: the cause arrives wrapped in groups."""
    if isinstance(error, BaseExceptionGroup):
        found: list[BaseException] = []
        for inner in error.exceptions:
            found.extend(_leaves(inner))
        return found
    return [error]


def _failure(error: BaseException, where: str) -> McpFailure:
    for leaf in _leaves(error):
        chain: list[BaseException] = [leaf]
        while chain[-1].__cause__ is not None and len(chain) < 5:
            chain.append(chain[-1].__cause__)
        for item in chain:
            if isinstance(item, McpFailure):
                return item
            if isinstance(item, httpx2.HTTPStatusError):
                status = item.response.status_code
                if status in (401, 403):
                    return McpFailure(
                        "auth",
                        f"{where} refused the credentials (HTTP {status}); check the headers "
                        "saved with this server.",
                    )
                if status == 404:
                    return McpFailure(
                        "not_found", f"{where} answered HTTP 404: is this the MCP endpoint's URL?"
                    )
                return McpFailure("protocol", f"{where} answered HTTP {status}.")
            if isinstance(item, httpx2.ConnectTimeout | httpx2.ReadTimeout | TimeoutError):
                return McpFailure("timeout", f"{where} did not answer in time.")
            if isinstance(item, httpx2.ConnectError):
                return McpFailure(
                    "unreachable", f"{where} is unreachable (the connection was refused or failed)."
                )
            if isinstance(item, httpx2.TransportError):
                return McpFailure("unreachable", f"{where} is unreachable ({type(item).__name__}).")
            if isinstance(item, MCPError):
                if "not found" in str(item).lower():
                    return McpFailure(
                        "not_found",
                        f"{where} answered “{item}”: is this the MCP endpoint's URL?",
                    )
                return McpFailure("protocol", f"{where} answered with an error: {item}")
            if isinstance(item, FileNotFoundError | PermissionError):
                return McpFailure("unreachable", f"{where} could not be started ({item}).")
    first = _leaves(error)[0]
    return McpFailure("protocol", f"{where} failed ({type(first).__name__}: {first}).")


@asynccontextmanager
async def _client(endpoint: McpEndpoint, timeout_s: float) -> AsyncIterator[Client]:
    where = "The MCP server"
    timeout = httpx2.Timeout(timeout_s)
    try:
        if endpoint.transport == "stdio":
            parameters = StdioServerParameters(
                command=endpoint.command, args=list(endpoint.args), env=dict(endpoint.env) or None
            )
            async with Client(
                parameters,
                read_timeout_seconds=timeout_s,
                client_info=CLIENT_INFO,
                cache=None,
                mode="legacy",
            ) as client:
                yield client
            return
        async with httpx2.AsyncClient(headers=dict(endpoint.headers), timeout=timeout) as http:
            transport = streamable_http_client(endpoint.url, http_client=http)
            async with Client(
                transport, read_timeout_seconds=timeout_s, client_info=CLIENT_INFO, cache=None
            ) as client:
                yield client
    except McpFailure:
        raise
    except Exception as error:
        raise _failure(error, where) from None
    except BaseExceptionGroup as group:
        # A cancellation (the agent's time limit) must stay a cancellation.
        if group.subgroup(lambda item: not isinstance(item, Exception)) is not None:
            raise
        raise _failure(group, where) from None


async def mcp_tools_list(endpoint: McpEndpoint, *, timeout_s: float = 30.0) -> list[McpToolInfo]:
    """Every tool the server offers (all pages of the listing)."""
    tools: list[McpToolInfo] = []
    async with _client(endpoint, timeout_s) as client:
        cursor: str | None = None
        for _page in range(50):
            try:
                listing = await client.list_tools(cursor=cursor)
            except Exception as error:
                raise _failure(error, "The MCP server") from None
            for tool in listing.tools:
                schema = dict(tool.input_schema or {}) or {"type": "object", "properties": {}}
                tools.append(McpToolInfo(tool.name, tool.description or "", schema))
            cursor = listing.next_cursor
            if not cursor:
                break
    return tools


def result_text(result: CallToolResult) -> str:
    """The result's content parts as text: text as it is, anything else as a short note."""
    parts: list[str] = []
    for block in result.content:
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(str(getattr(block, "text", "")))
        elif kind == "resource":
            resource = getattr(block, "resource", None)
            text = getattr(resource, "text", None)
            parts.append(str(text) if text is not None else f"[resource {resource}]")
        elif kind == "resource_link":
            parts.append(f"[resource link {getattr(block, 'uri', '')}]")
        else:
            mime = getattr(block, "mime_type", "") or kind
            parts.append(f"[{kind} content ({mime}) not shown]")
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False))
    text = "\n".join(parts)
    if len(text) > MAX_RESULT_CHARS:
        text = text[:MAX_RESULT_CHARS] + f"\n[cut at {MAX_RESULT_CHARS} characters]"
    return text


async def mcp_tool_call(
    endpoint: McpEndpoint, tool: str, arguments: Mapping[str, Any], *, timeout_s: float = 30.0
) -> McpCallResult:
    """Calls one tool. An `isError` result is a result (the model should see it), not a failure;
    failures to reach or use the server raise McpFailure."""
    began = time.perf_counter()
    async with _client(endpoint, timeout_s) as client:
        try:
            result = await client.call_tool(tool, dict(arguments), read_timeout_seconds=timeout_s)
        except Exception as error:
            raise _failure(error, "The MCP server") from None
    return McpCallResult(
        content=result_text(result),
        is_error=bool(result.is_error),
        structured=result.structured_content,
        latency_ms=(time.perf_counter() - began) * 1000,
    )
