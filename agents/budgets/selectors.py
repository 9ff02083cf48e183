"""Reading budgets, through the permission seam."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from a2a_site.accounts.access import get_for_member
from a2a_site.accounts.models import Membership, Role, User
from agents.budgets.models import Budget


def budgets_of(workspace_id: Any) -> QuerySet[Budget]:
    return Budget.objects.filter(workspace_id=workspace_id).order_by("name", "created_at")


def get_budget_for_user(
    user: User, budget_id: Any, *, role: Role = Role.VIEWER
) -> tuple[Budget, Membership]:
    """404 outside the user's workspaces, 403 below `role`."""
    return get_for_member(Budget.objects.all(), user, budget_id, role=role)
