"""The permission seam: every view, consumer, task and API endpoint looks objects up through here.

Objects in a workspace the user does not belong to answer 404 (their existence is not revealed);
a member whose role is too low gets 403. Later object types add one helper each, built on
`get_for_member`, e.g. `get_workflow_for_user(user, pk, write=True)`.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, ValidationError
from django.db import models
from django.http import Http404

from a2a_site.accounts.models import Membership, Role, User, Workspace

M = TypeVar("M", bound=models.Model)


def membership_for(user: Any, workspace_id: Any) -> Membership | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return (
        Membership.objects.select_related("workspace")
        .filter(user=user, workspace_id=workspace_id)
        .first()
    )


def require_role(membership: Membership, needed: Role) -> None:
    if not membership.allows(needed):
        raise PermissionDenied(
            f"This needs the {needed.label.lower()} role in “{membership.workspace.name}”; "
            f"you are {membership.role_enum.label.lower()}."
        )


def get_membership_for_user(
    user: User, workspace_id: Any, *, role: Role = Role.VIEWER
) -> Membership:
    """The user's membership of a workspace: 404 for non-members, 403 below `role`."""
    membership = membership_for(user, workspace_id)
    if membership is None:
        raise Http404("No such workspace.")
    require_role(membership, role)
    return membership


def get_workspace_for_user(user: User, workspace_id: Any, *, role: Role = Role.VIEWER) -> Workspace:
    return get_membership_for_user(user, workspace_id, role=role).workspace


def get_for_member(
    queryset: models.QuerySet[M], user: User, pk: Any, *, role: Role = Role.VIEWER
) -> tuple[M, Membership]:
    """Look up an object of a workspace-owned model for a user: 404 unless they are a member."""
    try:
        obj = queryset.get(pk=pk, workspace__memberships__user=user)
    except (ObjectDoesNotExist, ValidationError, ValueError, TypeError):
        raise Http404("Not found.") from None
    membership = get_membership_for_user(user, obj.workspace_id, role=role)  # type: ignore[attr-defined]
    return obj, membership
