"""Reads of workflows and runs, scoped to a workspace and looked up through the access seam."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.db.models import Count, Max, QuerySet

from a2a_site.accounts.access import get_for_member
from a2a_site.accounts.models import Membership, Role, User
from workflows.models import Run, Workflow


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
