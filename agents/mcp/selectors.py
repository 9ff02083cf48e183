"""Reads of a workspace's MCP servers, through the one access seam."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from a2a_site.accounts.access import get_for_member
from a2a_site.accounts.models import Membership, Role, User
from agents.mcp.models import McpServer


def get_mcp_server_for_user(
    user: User, pk: Any, *, role: Role = Role.VIEWER
) -> tuple[McpServer, Membership]:
    return get_for_member(McpServer.objects.all(), user, pk, role=role)


def mcp_servers_of(workspace_id: Any) -> QuerySet[McpServer]:
    return McpServer.objects.filter(workspace_id=workspace_id)
