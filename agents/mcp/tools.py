"""MCP servers' tools as tools of the agents' registry.

A tool is named `mcp_<server key>__<tool>` for the model (OpenAI function names allow letters,
digits, `_` and `-`, up to 64 characters), from the listing the server's page last made: a run
does not list tools again before each model call.

Durability: each finished call is written (`McpToolCall`) under the run, the step and a key made
of the tool, its arguments and how many identical calls came before it in the step. A resumed
run re-executes its unfinished step; when the model asks for the same call again, the recorded
result answers and the server is not called a second time.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from django.db import IntegrityError

from a2a_site.db import in_db_thread
from agents.mcp.models import McpServer, McpToolCall
from agents.tools.base import ToolContext, ToolError, ToolResult, ToolSpec
from agents.tools.registry import ToolRegistry, builtin_registry
from agents.urlpolicy import ToolHosts

PREFIX: Final = "mcp_"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def mcp_tool_name(server_key: str, tool: str) -> str:
    return f"{PREFIX}{server_key}__{_UNSAFE.sub('_', tool)}"[:64]


@dataclass
class McpCallBook:
    """Counts identical calls within one agent turn, so the n-th of them has its own key."""

    seen: Counter[str] = field(default_factory=Counter)

    def key(self, tool: str, arguments: dict[str, Any]) -> str:
        canonical = json.dumps([tool, arguments], sort_keys=True, ensure_ascii=False)
        self.seen[canonical] += 1
        return hashlib.sha256(f"{canonical}#{self.seen[canonical]}".encode()).hexdigest()


@dataclass(frozen=True)
class McpServerTools:
    """What a run needs of one server: its row (for the endpoint) and its listed tools."""

    server: McpServer
    tools: tuple[dict[str, Any], ...]


class McpTool:
    def __init__(self, server: McpServer, info: dict[str, Any], book: McpCallBook) -> None:
        self.server = server
        self.remote_name = str(info["name"])
        schema = info.get("input_schema") or {"type": "object", "properties": {}}
        description = str(info.get("description") or "") or f"{self.remote_name} on {server.name}"
        self._spec = ToolSpec(
            name=mcp_tool_name(server.key, self.remote_name),
            description=f"{description} (MCP server {server.name})"[:1000],
            parameters=schema,
            timeout_s=float(server.timeout_s),
        )
        self.book = book

    @property
    def spec(self) -> ToolSpec:
        return self._spec

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        # The MCP SDK (and its HTTP stack) loads with a run's first MCP call: a worker whose
        # runs call none does not carry it.
        from agents.mcp.client import McpFailure, mcp_tool_call
        from agents.mcp.services import mcp_endpoint_for

        durable = context.run_id is not None and context.step_id is not None
        key = self.book.key(self._spec.name, arguments)
        if durable:
            recorded = await in_db_thread(self._recorded, context, key)
            if recorded is not None:
                return recorded
        hosts = ToolHosts(private=context.allowed_hosts, only=context.only_hosts)
        try:
            # The URL check resolves the host: off the event loop.
            endpoint = await asyncio.to_thread(mcp_endpoint_for, self.server, hosts)
            # One second short of the registry's own limit, so the server's answer (or our
            # timeout) is the one reported, with the kind of failure.
            outcome = await mcp_tool_call(
                endpoint,
                self.remote_name,
                arguments,
                timeout_s=max(1.0, self._spec.timeout_s - 1),
            )
        except McpFailure as failure:
            raise ToolError(f"{self.server.name}: {failure.message}") from None
        result = ToolResult(
            content=outcome.content or ("(error)" if outcome.is_error else "(no content)"),
            is_error=outcome.is_error,
            data=outcome.structured,
        )
        if durable:
            await in_db_thread(self._record, context, key, result, outcome.latency_ms)
        return result

    def _recorded(self, context: ToolContext, key: str) -> ToolResult | None:
        row = McpToolCall.objects.filter(
            run_id=str(context.run_id), step_key=str(context.step_id), call_key=key
        ).first()
        if row is None:
            return None
        return ToolResult(content=row.content, is_error=row.is_error)

    def _record(self, context: ToolContext, key: str, result: ToolResult, latency: float) -> None:
        # Another execution of the step may have recorded it first: its result stands.
        with contextlib.suppress(IntegrityError):
            McpToolCall.objects.create(
                run_id=str(context.run_id),
                step_key=str(context.step_id),
                call_key=key,
                server=self.server,
                tool=self.remote_name,
                content=result.content,
                is_error=result.is_error,
                latency_ms=round(latency),
            )


def mcp_server_tools_of(workspace_id: Any) -> list[McpServerTools]:
    return [
        McpServerTools(server, tuple(server.tools))
        for server in McpServer.objects.filter(workspace_id=workspace_id)
    ]


def mcp_registry(servers: Iterable[McpServerTools]) -> ToolRegistry:
    """The built-in tools and the servers' tools, for one agent turn (a fresh call book)."""
    book = McpCallBook()
    registry = ToolRegistry()
    builtins = builtin_registry()
    for name in builtins.names():
        registry.register(builtins.get(name))
    for entry in servers:
        for info in entry.tools:
            tool = McpTool(entry.server, info, book)
            if tool.spec.name not in registry:
                registry.register(tool)
    return registry


def mcp_tool_choices(workspace_id: Any) -> list[tuple[str, str]]:
    """(tool name, label) for the agent form: every listed tool of the workspace's servers."""
    choices = []
    for server in McpServer.objects.filter(workspace_id=workspace_id):
        for info in server.tools:
            label = f"{info['name']} ({server.name}, MCP)"
            if info.get("description"):
                label = f"{label} — {info['description']}"
            choices.append((mcp_tool_name(server.key, str(info["name"])), label[:300]))
    return choices
