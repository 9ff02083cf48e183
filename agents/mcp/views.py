"""The MCP servers pages: list, add, edit, delete; list a server's tools and test one."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from a2a_site.accounts.decorators import workspace_required
from a2a_site.accounts.models import Role
from a2a_site.forms import form_add_errors
from a2a_site.http import AuthedRequest
from agents.mcp import services
from agents.mcp.arguments import argument_fields, arguments_read
from agents.mcp.client import McpFailure
from agents.mcp.forms import McpServerForm
from agents.mcp.models import McpServer
from agents.mcp.selectors import get_mcp_server_for_user, mcp_servers_of
from agents.mcp.tools import mcp_tool_name


@workspace_required()
@require_GET
def mcp_server_list(request: AuthedRequest) -> HttpResponse:
    assert request.membership is not None
    return render(
        request,
        "agents/mcp_server_list.html",
        {
            "servers": list(mcp_servers_of(request.membership.workspace_id)),
            "can_edit": request.membership.allows(Role.EDITOR),
        },
    )


def _refresh_after_save(request: AuthedRequest, server: McpServer, verb: str) -> None:
    try:
        tools = services.mcp_server_tools_refresh(server=server)
    except McpFailure as failure:
        messages.warning(
            request,
            f"MCP server “{server.name}” {verb}, but its tools could not be listed: "
            f"{failure.message}",
        )
    else:
        messages.success(
            request,
            f"MCP server “{server.name}” {verb}; it offers {len(tools)} "
            f"tool{'s' if len(tools) != 1 else ''}. Give them to agents on the agent's page.",
        )


def _form_page(request: AuthedRequest, form: McpServerForm, server: McpServer | None) -> Any:
    return render(
        request,
        "agents/mcp_server_form.html",
        {
            "form": form,
            "server": server,
            "stdio_commands": list(settings.MCP_STDIO_COMMANDS),
        },
    )


@workspace_required(Role.EDITOR)
@require_http_methods(["GET", "POST"])
def mcp_server_create(request: AuthedRequest) -> HttpResponse:
    assert request.membership is not None
    form = McpServerForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            server = services.mcp_server_create(
                workspace=request.membership.workspace, user=request.user, data=form.to_input()
            )
        except ValidationError as error:
            form_add_errors(form, error)
        else:
            _refresh_after_save(request, server, "saved")
            return redirect("agent_mcp_server_detail", server_id=server.pk)
    return _form_page(request, form, None)


@login_required
@require_http_methods(["GET", "POST"])
def mcp_server_edit(request: AuthedRequest, server_id: UUID) -> HttpResponse:
    server, _ = get_mcp_server_for_user(request.user, server_id, role=Role.EDITOR)
    form = McpServerForm(request.POST or None, server=server)
    if request.method == "POST" and form.is_valid():
        try:
            services.mcp_server_update(server=server, user=request.user, data=form.to_input())
        except ValidationError as error:
            form_add_errors(form, error)
        else:
            _refresh_after_save(request, server, "updated")
            return redirect("agent_mcp_server_detail", server_id=server.pk)
    return _form_page(request, form, server)


def _tools(server: McpServer) -> list[dict[str, Any]]:
    return [
        {
            **info,
            "agent_name": mcp_tool_name(server.key, str(info["name"])),
            "parameters": ", ".join((info.get("input_schema") or {}).get("properties") or {}),
        }
        for info in server.tools
    ]


@login_required
@require_GET
def mcp_server_detail(request: AuthedRequest, server_id: UUID) -> HttpResponse:
    server, membership = get_mcp_server_for_user(request.user, server_id)
    return render(
        request,
        "agents/mcp_server_detail.html",
        {"server": server, "tools": _tools(server), "can_edit": membership.allows(Role.EDITOR)},
    )


@login_required
@require_POST
def mcp_server_tools(request: AuthedRequest, server_id: UUID) -> HttpResponse:
    """Lists the server's tools again (htmx: the tools region only)."""
    server, membership = get_mcp_server_for_user(request.user, server_id, role=Role.EDITOR)
    error = ""
    try:
        services.mcp_server_tools_refresh(server=server)
    except McpFailure as failure:
        error = failure.message
    context = {
        "server": server,
        "tools": _tools(server),
        "can_edit": True,
        "list_error": error,
    }
    if request.htmx:
        return render(request, "agents/_mcp_tools.html", context)
    if error:
        messages.error(request, error)
    return redirect("agent_mcp_server_detail", server_id=server.pk)


@login_required
@require_POST
def mcp_server_delete(request: AuthedRequest, server_id: UUID) -> HttpResponse:
    server, _ = get_mcp_server_for_user(request.user, server_id, role=Role.EDITOR)
    name = server.name
    services.mcp_server_delete(server=server)
    messages.success(
        request, f"MCP server “{name}” deleted; agents that used its tools no longer get them."
    )
    return redirect("agent_mcp_servers")


@login_required
@require_http_methods(["GET", "POST"])
def mcp_tool_test(request: AuthedRequest, server_id: UUID, tool: str) -> HttpResponse:
    """A form for the tool's arguments (from its schema); posting it calls the tool."""
    server, _ = get_mcp_server_for_user(request.user, server_id, role=Role.EDITOR)
    info = next((item for item in server.tools if item.get("name") == tool), None)
    if info is None:
        raise Http404("This server did not list such a tool; list its tools again.")
    schema = info.get("input_schema") or {}
    fields = argument_fields(schema)
    context: dict[str, Any] = {"server": server, "tool": info, "fields": fields}
    if request.method == "POST":
        arguments, ok = arguments_read(fields, request.POST)
        context["arguments"] = json.dumps(arguments, indent=2, ensure_ascii=False)
        if ok:
            try:
                context["result"] = services.mcp_server_tool_test(
                    server=server, tool=tool, arguments=arguments
                )
            except McpFailure as failure:
                context["failure"] = failure
        if request.htmx:
            return render(request, "agents/_mcp_tool_test_body.html", context)
    return render(request, "agents/mcp_tool_test.html", context)
