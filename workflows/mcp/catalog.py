"""What an MCP caller sees and starts: the offered workflows of its token's workspaces, as tools.

Synchronous database work (the endpoint calls it from a thread): the same access rules as the
JSON API — a token acts as its creator, at most with their role and its own scope, limited to its
workspace when it names one — and the same `run_start` / `run_cancel` services.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from a2a_site.accounts.models import Membership, Role
from a2a_site.api.models import ApiToken, Scope
from workflows.graph import graph_load
from workflows.graph.schema import InputField
from workflows.models import LaunchedVia, Run, Workflow
from workflows.services import runs as run_services

_UNSAFE = re.compile(r"[^a-z0-9_]+")


class McpRefused(Exception):
    """The caller may not do this; `str()` says why."""


@dataclass(frozen=True)
class OfferedWorkflow:
    tool_name: str
    workflow: Workflow
    role: str
    input_schema: dict[str, Any]

    @property
    def description(self) -> str:
        text = self.workflow.description or f"Runs the workflow “{self.workflow.name}”."
        return f"{text} (A2A Studio workflow, workspace {self.workflow.workspace.name})"


def _field_schema(field: InputField) -> dict[str, Any]:
    schema: dict[str, Any]
    if field.type in ("string", "text"):
        schema = {"type": "string"}
    elif field.type == "choice":
        schema = {"type": "string", "enum": list(field.choices)}
    elif field.type in ("number", "integer", "boolean"):
        schema = {"type": field.type}
    else:
        schema = {}  # json: any value
    if field.label:
        schema["title"] = field.label
    if field.help:
        schema["description"] = field.help
    if field.default is not None:
        schema["default"] = field.default
    return schema


def workflow_input_schema(graph: dict[str, Any]) -> dict[str, Any]:
    """The JSON schema of a published graph's inputs, as an MCP tool's `inputSchema`."""
    inputs = graph_load(graph).inputs
    return {
        "type": "object",
        "properties": {field.name: _field_schema(field) for field in inputs.fields},
        "required": [
            field.name
            for field in inputs.fields
            if field.required and field.default is None and field.type != "boolean"
        ],
    }


def _slug(name: str) -> str:
    return (_UNSAFE.sub("_", name.lower()).strip("_") or "workflow")[:48]


def offered_workflows(token: ApiToken) -> list[OfferedWorkflow]:
    """The workflows offered over MCP in the workspaces the token reaches, each with a tool
    name unique in the list (the workflow's name; its id's start when two names collide)."""
    memberships = Membership.objects.filter(user=token.user)
    if token.workspace_id is not None:
        memberships = memberships.filter(workspace_id=token.workspace_id)
    roles = {membership.workspace_id: membership.role for membership in memberships}
    workflows = (
        Workflow.objects.filter(workspace_id__in=list(roles), mcp_offered=True)
        .exclude(latest_version=0)
        .select_related("workspace")
        .order_by("name", "id")
    )
    rows = list(workflows)
    versions = {
        version.workflow_id: version.graph
        for workflow in rows
        for version in workflow.versions.filter(number=workflow.latest_version)
    }
    counts: dict[str, int] = {}
    for workflow in rows:
        counts[_slug(workflow.name)] = counts.get(_slug(workflow.name), 0) + 1
    offered = []
    for workflow in rows:
        name = _slug(workflow.name)
        if counts[name] > 1:
            name = f"{name}_{workflow.pk.hex[:8]}"
        graph = versions.get(workflow.pk)
        if graph is None:
            continue
        offered.append(
            OfferedWorkflow(
                name, workflow, roles[workflow.workspace_id], workflow_input_schema(graph)
            )
        )
    return offered


def offered_workflow(token: ApiToken, tool_name: str) -> OfferedWorkflow | None:
    return next((item for item in offered_workflows(token) if item.tool_name == tool_name), None)


def mcp_run_start(token: ApiToken, offered: OfferedWorkflow, arguments: dict[str, Any]) -> Run:
    """Starts the run as the token's creator; ValidationError for inputs that do not fit,
    McpRefused below the `run` scope or the editor role."""
    if not token.scope_enum.allows(Scope.RUN):
        raise McpRefused(
            f"Running a workflow needs a token with the run scope; this one has {token.scope}."
        )
    if not Membership(role=offered.role).allows(Role.EDITOR):
        raise McpRefused(
            f"Running “{offered.workflow.name}” needs the editor role in its workspace."
        )
    return run_services.run_start(
        workflow=offered.workflow,
        user=token.user,
        inputs=arguments,
        launched_via=LaunchedVia.MCP,
    )


def mcp_run_state(run_id: Any) -> Run:
    return Run.objects.only(
        "id", "status", "reason", "output", "waiting_request", "steps_completed", "last_seq"
    ).get(pk=run_id)


def mcp_run_cancel(token: ApiToken, run_id: Any) -> None:
    run = Run.objects.get(pk=run_id)
    run_services.run_cancel(run=run, user=token.user)


def mcp_tool_slug(name: str) -> str:
    """The tool name a workflow is offered under (a suffix is added when two names collide)."""
    return _slug(name)


def workflow_mcp_offer(*, workflow: Workflow, offered: bool) -> Workflow:
    """Offers the workflow on the MCP endpoint, or stops offering it."""
    Workflow.objects.filter(pk=workflow.pk).update(mcp_offered=offered)
    workflow.mcp_offered = offered
    return workflow


def mcp_offer_context(workflow: Workflow, base_url: str) -> dict[str, Any]:
    """What the workflow page shows about the MCP endpoint."""
    endpoint = f"{base_url.rstrip('/')}/mcp/"
    tool = mcp_tool_slug(workflow.name)
    config = {
        "mcpServers": {
            "a2a-studio": {
                "type": "http",
                "url": endpoint,
                "headers": {"Authorization": "Bearer ${A2A_TOKEN}"},
            }
        }
    }
    return {
        "offered": workflow.mcp_offered,
        "endpoint": endpoint,
        "tool": tool,
        "config": json.dumps(config, indent=2),
    }
