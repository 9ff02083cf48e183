"""Registering, changing and removing a workspace's MCP servers; listing and testing their tools."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from a2a_site.accounts.models import User, Workspace
from agents.cli_agents import INHERITED_ENV, CliAgentRefused, cli_command_allowed
from agents.crypto import credential_decrypt, credential_encrypt
from agents.mcp.client import (
    McpCallResult,
    McpEndpoint,
    McpFailure,
    McpToolInfo,
    mcp_tool_call,
    mcp_tools_list,
)
from agents.mcp.models import McpServer, McpTransport
from agents.selectors import tool_hosts_for
from agents.stamps import workspace_runtime_changed
from agents.urlpolicy import (
    TOOL_ALLOW_LIST_HINT,
    OutboundHostUnresolved,
    OutboundURLRefused,
    ToolHosts,
    outbound_url_check,
)

HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$")
MAX_HEADERS = 20
DUPLICATE_NAME = "This workspace already has a server by that name."


@dataclass(frozen=True)
class McpServerInput:
    name: str
    transport: str
    url: str = ""
    command: str = ""
    args: Sequence[str] = ()
    timeout_s: int = 30
    # None keeps the stored headers; {} removes them.
    headers: Mapping[str, str] | None = None


def mcp_headers_parse(text: str, *, bearer: str = "") -> dict[str, str]:
    """`Name: value` lines (and a bearer token) as headers; ValidationError names the bad line."""
    headers: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, colon, value = line.partition(":")
        name, value = name.strip(), value.strip()
        if not colon or not HEADER_NAME.match(name) or not value:
            raise ValidationError(
                {"headers": f"Line {number}: write one header per line as “Name: value”."}
            )
        if any(ord(ch) < 32 for ch in value):
            raise ValidationError({"headers": f"Line {number}: the value has control characters."})
        headers[name] = value
    if bearer.strip():
        headers["Authorization"] = f"Bearer {bearer.strip()}"
    if len(headers) > MAX_HEADERS:
        raise ValidationError({"headers": f"At most {MAX_HEADERS} headers."})
    return headers


def mcp_url_check(url: str, hosts: ToolHosts) -> str:
    """The URL normalized, or OutboundURLRefused: MCP servers are tools, so they are under the
    tools' host policy (the administrator's and the workspace's)."""
    refusal = hosts.refusal(url)
    if refusal:
        raise OutboundURLRefused(refusal)
    return outbound_url_check(url, allowed_hosts=hosts.private, hint=TOOL_ALLOW_LIST_HINT)


def mcp_command_check(command: str) -> str:
    """The executable's path if an administrator allow-listed it for stdio MCP servers."""
    try:
        return cli_command_allowed(command, list(settings.MCP_STDIO_COMMANDS))
    except CliAgentRefused:
        raise ValidationError(
            {
                "command": f"“{command}” is not an allowed MCP server command. An administrator "
                "can allow it by adding its name or absolute path to A2A_MCP_STDIO_COMMANDS."
            }
        ) from None


def _clean(workspace: Workspace, data: McpServerInput, *, instance: McpServer | None) -> McpServer:
    server = instance or McpServer(workspace=workspace)
    name = data.name.strip()
    if not name:
        raise ValidationError({"name": "Name the server."})
    if data.transport not in McpTransport.values:
        raise ValidationError({"transport": "Choose streamable HTTP or a command."})
    if not 1 <= data.timeout_s <= 3600:
        raise ValidationError({"timeout_s": "Between 1 and 3600 seconds."})
    server.name = name[:80]
    server.transport = data.transport
    server.timeout_s = data.timeout_s
    if data.transport == McpTransport.HTTP:
        if not data.url.strip():
            raise ValidationError({"url": "Enter the server's MCP endpoint URL."})
        try:
            server.url = mcp_url_check(data.url.strip(), tool_hosts_for(workspace.pk))
        except OutboundHostUnresolved:
            server.url = data.url.strip()  # DNS may be down now; each call checks again
        except OutboundURLRefused as refused:
            raise ValidationError({"url": str(refused)}) from None
        server.command, server.args = "", []
    else:
        command = data.command.strip()
        if not command:
            raise ValidationError({"command": "Enter the command to start."})
        mcp_command_check(command)
        server.command, server.args = command, [str(arg) for arg in data.args]
        server.url = ""
    if data.headers is not None:
        if data.headers and data.transport != McpTransport.HTTP:
            raise ValidationError({"headers": "Headers apply to HTTP servers only."})
        server.headers_ciphertext = (
            credential_encrypt(json.dumps(dict(data.headers))) if data.headers else ""
        )
        server.header_names = sorted(data.headers)
    if instance is None:
        base = slugify(name).replace("-", "_")[:16] or "server"
        key, number = base, 1
        taken = set(McpServer.objects.filter(workspace=workspace).values_list("key", flat=True))
        while key in taken:
            number += 1
            key = f"{base}{number}"
        server.key = key
    return server


def mcp_server_create(*, workspace: Workspace, user: User, data: McpServerInput) -> McpServer:
    server = _clean(workspace, data, instance=None)
    server.created_by = user
    try:
        with transaction.atomic():
            server.save()
    except IntegrityError:
        raise ValidationError(
            {"name": "This workspace already has a server by that name."}
        ) from None
    return server


def mcp_server_update(*, server: McpServer, user: User, data: McpServerInput) -> McpServer:
    _clean(server.workspace, data, instance=server)
    try:
        with transaction.atomic():
            server.save()
    except IntegrityError:
        raise ValidationError(
            {"name": "This workspace already has a server by that name."}
        ) from None
    return server


def mcp_server_delete(*, server: McpServer) -> None:
    server.delete()


def mcp_endpoint_for(server: McpServer, hosts: ToolHosts) -> McpEndpoint:
    """How to reach the server now: the URL checked again (DNS changes), the command still
    allow-listed (the administrator may have removed it), the headers decrypted."""
    if server.transport == McpTransport.STDIO:
        try:
            path = cli_command_allowed(server.command, list(settings.MCP_STDIO_COMMANDS))
        except CliAgentRefused:
            raise McpFailure(
                "refused",
                f"“{server.command}” is no longer an allowed MCP server command "
                "(A2A_MCP_STDIO_COMMANDS).",
            ) from None
        # Its own environment, trimmed like the command-line agents': the studio's secrets stay.
        env = {name: os.environ[name] for name in INHERITED_ENV if name in os.environ}
        return McpEndpoint("stdio", command=path, args=tuple(server.args), env=env)
    try:
        url = mcp_url_check(server.url, hosts)
    except OutboundURLRefused as refused:
        raise McpFailure("refused", str(refused)) from None
    headers: dict[str, str] = {}
    if server.headers_ciphertext:
        headers = json.loads(credential_decrypt(server.headers_ciphertext))
    return McpEndpoint("http", url=url, headers=headers)


def mcp_server_tools_refresh(*, server: McpServer) -> list[McpToolInfo]:
    """Lists the server's tools now and keeps the listing (agents and runs use it). A failure
    is kept as the server's last error and raised."""
    try:
        endpoint = mcp_endpoint_for(server, tool_hosts_for(server.workspace_id))
        tools = async_to_sync(mcp_tools_list)(endpoint, timeout_s=float(server.timeout_s))
    except McpFailure as failure:
        McpServer.objects.filter(pk=server.pk).update(last_error=failure.message[:500])
        server.last_error = failure.message[:500]
        raise
    server.tools = [tool.as_json() for tool in tools]
    server.tools_listed_at = timezone.now()
    server.last_error = ""
    with transaction.atomic():
        McpServer.objects.filter(pk=server.pk).update(
            tools=server.tools, tools_listed_at=server.tools_listed_at, last_error=""
        )
        # Runs resolve the workspace's MCP tools with its agents: a new listing moves the stamp.
        workspace_runtime_changed(server.workspace_id)
    return tools


def mcp_server_tool_test(
    *, server: McpServer, tool: str, arguments: Mapping[str, Any]
) -> McpCallResult:
    """Calls one tool from the server's page, with the arguments a person entered."""
    endpoint = mcp_endpoint_for(server, tool_hosts_for(server.workspace_id))
    return async_to_sync(mcp_tool_call)(
        endpoint, tool, arguments, timeout_s=float(server.timeout_s)
    )
