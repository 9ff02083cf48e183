"""Workflows: drafts the builder autosaves, and immutable published versions that runs pin."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from a2a_site.accounts.models import User, Workspace
from agents.models import Agent
from agents.tools.registry import builtin_registry
from workflows.graph import ValidationReport, graph_dump, graph_load, graph_validate
from workflows.models import Workflow, WorkflowVersion

EMPTY_GRAPH: dict[str, Any] = {
    "schema_version": 1,
    "nodes": [
        {"id": "start", "type": "start", "label": "Start", "position": {"x": 0, "y": 0}},
        {"id": "end", "type": "end", "label": "End", "position": {"x": 0, "y": 200}},
    ],
    "edges": [{"id": "start-end", "source": "start", "target": "end"}],
}

# What the builder's “New workflow” starts from: a task to run on, a start and an end, not yet
# connected, so the checklist's first words tell a newcomer what to do.
BLANK_GRAPH: dict[str, Any] = {
    "schema_version": 1,
    "nodes": [
        {
            "id": "start",
            "type": "start",
            "label": "Start",
            "position": {"x": 0, "y": 0},
            "config": {"input_mapping": {"task": "task"}},
        },
        {"id": "end", "type": "end", "label": "End", "position": {"x": 0, "y": 400}},
    ],
    "edges": [],
    "variables": [
        {"name": "task", "type": "string", "description": "What the run is asked to do."}
    ],
    "inputs": {"fields": [{"name": "task", "type": "text", "label": "Task"}]},
}


def workflow_validate(*, workspace_id: Any, graph: Any) -> ValidationReport:
    """Validates a graph against what exists in the workspace: agents, tools, workflows."""
    return graph_validate(
        graph,
        known_agents={
            str(pk)
            for pk in Agent.objects.filter(workspace_id=workspace_id).values_list("pk", flat=True)
        },
        known_tools=set(builtin_registry().names()),
        known_workflows={
            str(pk)
            for pk in Workflow.objects.filter(workspace_id=workspace_id).values_list(
                "pk", flat=True
            )
        },
    )


def workflow_create(
    *,
    workspace: Workspace,
    user: User | None,
    name: str,
    description: str = "",
    graph: dict[str, Any] | None = None,
) -> Workflow:
    if not name.strip():
        raise ValidationError({"name": "Give the workflow a name."})
    try:
        with transaction.atomic():
            return Workflow.objects.create(
                workspace=workspace,
                name=name.strip(),
                description=description.strip(),
                draft=graph if graph is not None else EMPTY_GRAPH,
                created_by=user,
            )
    except IntegrityError:
        raise ValidationError(
            {"name": "Another workflow in this workspace has this name."}
        ) from None


def workflow_update(
    *, workflow: Workflow, name: str | None = None, description: str | None = None
) -> Workflow:
    """Renames the workflow or changes its description (its graph changes through the draft)."""
    if name is not None:
        if not name.strip():
            raise ValidationError({"name": "Give the workflow a name."})
        workflow.name = name.strip()
    if description is not None:
        workflow.description = description.strip()
    try:
        with transaction.atomic():
            workflow.save(update_fields=["name", "description"])
    except IntegrityError:
        raise ValidationError(
            {"name": "Another workflow in this workspace has this name."}
        ) from None
    return workflow


def workflow_delete(*, workflow: Workflow) -> None:
    """Deletes a workflow that never ran, with its versions and webhook subscriptions. One with
    runs is refused: their history and what they cost would go with it."""
    from workflows.models import Run

    runs = Run.objects.filter(workflow=workflow).count()
    if runs:
        raise ValidationError(
            f"“{workflow.name}” has {runs} run{'s' if runs != 1 else ''}; deleting it would "
            "delete their history and costs. Delete the runs first (or let the workspace's "
            "retention do it), or keep the workflow."
        )
    workflow.delete()


class DraftConflict(Exception):
    """The draft changed since the editor loaded it: in another tab, or by someone else."""

    def __init__(self, current: datetime) -> None:
        self.current = current
        super().__init__("The draft was changed elsewhere since it was loaded.")


def workflow_save_draft(
    *, workflow: Workflow, graph: Any, expected: datetime | None = None
) -> ValidationReport:
    """Saves the draft as it is, valid or not (work is never lost), and says what is wrong.

    With `expected` (the `draft_updated_at` the editor last saw) the save is a compare-and-swap:
    if someone saved in between, `DraftConflict` is raised and nothing is overwritten.
    """
    report = workflow_validate(workspace_id=workflow.workspace_id, graph=graph)
    now = timezone.now()
    rows = Workflow.objects.filter(pk=workflow.pk)
    if expected is not None:
        rows = rows.filter(draft_updated_at=expected)
    if not rows.update(draft=graph, draft_updated_at=now):
        stored, current = (
            Workflow.objects.filter(pk=workflow.pk).values_list("draft", "draft_updated_at").get()
        )
        # The same graph saved twice (a request sent on leaving the page, then the tab's own
        # copy after the reload) is not a conflict: nothing would be overwritten.
        if stored != graph:
            raise DraftConflict(current)
        now = current
    workflow.draft = graph
    workflow.draft_updated_at = now
    return report


def _agent_versions(graph: dict[str, Any], workspace_id: Any) -> dict[str, int]:
    parsed = graph_load(graph)
    from workflows.graph import NODE_TYPES

    agent_ids: set[str] = set()
    for node in parsed.nodes:
        node_type = NODE_TYPES.get(node.type)
        if node_type is None:
            continue
        config = node_type.config_model.model_validate(node.config)
        agent_ids |= {ref.id for ref in config.references() if ref.kind == "agent"}
    return {
        str(pk): number
        for pk, number in Agent.objects.filter(
            workspace_id=workspace_id, pk__in=agent_ids
        ).values_list("pk", "latest_version")
    }


def workflow_publish(*, workflow: Workflow, user: User | None, note: str = "") -> WorkflowVersion:
    """Publishes the draft as the next version. An invalid graph is never published."""
    report = workflow_validate(workspace_id=workflow.workspace_id, graph=workflow.draft)
    if not report.ok or report.graph is None:
        raise ValidationError(
            [
                f"{issue.node_id + ': ' if issue.node_id else ''}{issue.message}"
                for issue in report.errors
            ]
        )
    graph = graph_dump(report.graph)
    with transaction.atomic():
        locked = Workflow.objects.select_for_update().get(pk=workflow.pk)
        number = locked.latest_version + 1
        version = WorkflowVersion.objects.create(
            workflow=locked,
            number=number,
            graph=graph,
            agent_versions=_agent_versions(graph, workflow.workspace_id),
            note=note.strip()[:200],
            created_by=user,
        )
        Workflow.objects.filter(pk=workflow.pk).update(latest_version=number)
    workflow.latest_version = number
    return version


def workflow_restore(*, workflow: Workflow, version: WorkflowVersion) -> Workflow:
    """Copies an old version into the draft; publishing it makes it current again."""
    Workflow.objects.filter(pk=workflow.pk).update(
        draft=version.graph, draft_updated_at=timezone.now()
    )
    workflow.refresh_from_db()
    return workflow
