from __future__ import annotations

from uuid import UUID

from django.db.models import Count, QuerySet
from django.http import HttpRequest

from a2a_site.accounts.access import membership_for
from a2a_site.accounts.models import Membership, User

SESSION_WORKSPACE_KEY = "a2a_workspace_id"


def current_membership(request: HttpRequest) -> Membership | None:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    chosen = request.session.get(SESSION_WORKSPACE_KEY)
    membership = membership_for(user, chosen) if chosen else None
    if membership is None:
        membership = (
            Membership.objects.select_related("workspace")
            .filter(user=user)
            .order_by("created_at")
            .first()
        )
        if membership is not None:
            request.session[SESSION_WORKSPACE_KEY] = str(membership.workspace_id)
        elif chosen:
            del request.session[SESSION_WORKSPACE_KEY]
    return membership


def memberships_of(user: User) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(user=user)
        .select_related("workspace")
        .annotate(member_count=Count("workspace__memberships"))
        .order_by("workspace__name")
    )


def members_of(workspace_id: UUID) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(workspace_id=workspace_id)
        .select_related("user", "invited_by")
        .order_by("created_at")
    )
