"""Reads of workflows and runs, scoped to a workspace and looked up through the access seam."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.db.models import Count, Max, QuerySet

from a2a_site.accounts.access import get_for_member
from a2a_site.accounts.models import Membership, Role, User
from agents.models import Agent, AgentVersion
from workflows.graph import NODE_TYPES
from workflows.models import TERMINAL_STATUSES, Run, Step, Workflow


def get_workflow_for_user(
    user: User, pk: Any, *, role: Role = Role.VIEWER
) -> tuple[Workflow, Membership]:
    return get_for_member(Workflow.objects.all(), user, pk, role=role)


def get_run_for_user(user: User, pk: Any, *, role: Role = Role.VIEWER) -> tuple[Run, Membership]:
    return get_for_member(
        Run.objects.select_related("workflow", "version", "created_by"), user, pk, role=role
    )


def workflows_of(workspace_id: UUID) -> QuerySet[Workflow]:
    return (
        Workflow.objects.filter(workspace_id=workspace_id)
        .annotate(run_count=Count("runs"), last_run_at=Max("runs__created_at"))
        .order_by("name")
    )


def runs_of(workspace_id: UUID, *, workflow_id: Any = None, limit: int = 50) -> list[Run]:
    runs = Run.objects.filter(workspace_id=workspace_id, parent__isnull=True)
    if workflow_id is not None:
        runs = runs.filter(workflow_id=workflow_id)
    return list(
        runs.select_related("workflow", "version", "created_by").order_by("-created_at")[:limit]
    )


def agent_summaries(workspace_id: UUID, *, agent_ids: Any = None) -> list[dict[str, str]]:
    """What the builder shows of each agent: id, name, model and role, from its latest version."""
    agents = Agent.objects.filter(workspace_id=workspace_id).order_by("name")
    if agent_ids is not None:
        agents = agents.filter(pk__in=agent_ids)
    latest = {
        (version.agent_id, version.number): version.config
        for version in AgentVersion.objects.filter(agent__in=agents).only(
            "agent_id", "number", "config"
        )
    }
    found = []
    for agent in agents:
        config = latest.get((agent.pk, agent.latest_version)) or {}
        model = config.get("model") if isinstance(config.get("model"), dict) else {}
        found.append(
            {
                "id": str(agent.pk),
                "name": agent.name,
                "model": str((model or {}).get("model") or ""),
                "role": str(config.get("role") or agent.description or ""),
            }
        )
    return found


def builder_catalog(workspace_id: UUID, *, can_edit: bool) -> dict[str, Any]:
    """The builder's palette: every registered node type and the workspace's agents."""
    return {
        "node_types": [
            {
                "type": node_type.type,
                "label": node_type.label,
                "group": node_type.group,
                "description": node_type.description,
                "min_in": node_type.min_in,
                "max_in": node_type.max_in,
                "min_out": node_type.min_out,
                "max_out": node_type.max_out,
                "fan_out": node_type.fan_out,
                "default_config": dict(node_type.default_config),
            }
            for node_type in NODE_TYPES.values()
        ],
        "agents": agent_summaries(workspace_id),
        "can_edit": can_edit,
    }


# Nodes the engine passes through without recording a step (see the engine's _STRUCTURAL).
_PASSED_THROUGH = frozenset({"parallel", "loop"})


def run_node_states(run: Run) -> list[dict[str, Any]]:
    """Each node of the run's graph with its state: waiting, running, done, failed or skipped."""
    graph = run.version.graph
    nodes = graph.get("nodes", [])
    steps: dict[str, str] = {}
    for node_id, step_status in Step.objects.filter(run=run).values_list("node_id", "status"):
        if steps.get(node_id) != Step.Status.RUNNING:
            steps[node_id] = step_status
    finished = run.status in TERMINAL_STATUSES
    successors: dict[str, list[str]] = {}
    for edge in graph.get("edges", []):
        successors.setdefault(edge["source"], []).append(edge["target"])
    # A fan-out or a loop has no step of its own: it was passed when something after it ran.
    reached = set(steps)
    changed = True
    while changed:
        changed = False
        for node in nodes:
            after = successors.get(node["id"], [])
            if (
                node["type"] in _PASSED_THROUGH
                and node["id"] not in reached
                and any(target in reached for target in after)
            ):
                reached.add(node["id"])
                changed = True
    ends = [node for node in nodes if node["type"] == "end"]
    states = []
    for node in nodes:
        status = steps.get(node["id"])
        # Start and end are not steps: start is done once the run began, and a single end is
        # done when the run succeeded.
        started = node["type"] == "start" and run.started_at is not None
        ended = node["type"] == "end" and run.status == "succeeded" and len(ends) == 1
        passed = node["type"] in _PASSED_THROUGH and node["id"] in reached
        if started or ended or passed or status == Step.Status.COMPLETED:
            state = "done"
        elif status == Step.Status.FAILED:
            state = "failed"
        elif status == Step.Status.RUNNING:
            state = "running" if not finished else "failed"
        else:
            state = "skipped" if finished and node["type"] not in ("start", "end") else "waiting"
        states.append(
            {
                "id": node["id"],
                "type": node["type"],
                "label": node.get("label") or node["id"],
                "state": state,
            }
        )
    return states
