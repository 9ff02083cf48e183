"""The workflow page's switch: offer the workflow as a tool on the MCP endpoint (editors)."""

from __future__ import annotations

from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from a2a_site.accounts.models import Role
from a2a_site.http import AuthedRequest
from workflows.mcp.catalog import mcp_tool_slug, workflow_mcp_offer
from workflows.selectors import get_workflow_for_user


@login_required
@require_POST
def workflow_mcp_offer_view(request: AuthedRequest, workflow_id: UUID) -> HttpResponse:
    workflow, _ = get_workflow_for_user(request.user, workflow_id, role=Role.EDITOR)
    offered = request.POST.get("offered") == "on"
    if offered and not workflow.latest_version:
        messages.error(request, "Publish the workflow first: MCP clients run its latest version.")
        return redirect("workflow_detail", workflow_id=workflow.pk)
    workflow_mcp_offer(workflow=workflow, offered=offered)
    if offered:
        messages.success(
            request,
            f"“{workflow.name}” is offered to MCP clients as the tool "
            f"“{mcp_tool_slug(workflow.name)}”.",
        )
    else:
        messages.success(request, f"“{workflow.name}” is no longer offered to MCP clients.")
    return redirect("workflow_detail", workflow_id=workflow.pk)
