"""Reads for the alerts pages, and the permission seams of alert objects."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Count, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import Http404

from a2a_site.accounts.access import get_for_member, get_membership_for_user
from a2a_site.accounts.models import Membership, Role, Workspace
from monitoring.alerts.models import (
    AlertChannel,
    AlertDelivery,
    AlertIncident,
    AlertRule,
    IncidentState,
    Notification,
    NotificationSeen,
)

PAGE_SIZE = 50
UNREAD_CAP = 99  # shown as "99+": counting further says nothing more
STATE_FILTERS = ("open", "acknowledged", "resolved", "all")


def get_rule_for_user(user: Any, pk: Any, *, role: Role = Role.VIEWER) -> AlertRule:
    return get_for_member(AlertRule.objects.all(), user, pk, role=role)[0]


def get_incident_for_user(user: Any, pk: Any, *, role: Role = Role.VIEWER) -> AlertIncident:
    return get_for_member(AlertIncident.objects.select_related("rule"), user, pk, role=role)[0]


def get_channel_for_user(user: Any, pk: Any, *, role: Role = Role.VIEWER) -> AlertChannel:
    return get_for_member(AlertChannel.objects.all(), user, pk, role=role)[0]


def get_delivery_for_user(
    user: Any, pk: Any, *, role: Role = Role.VIEWER
) -> tuple[AlertDelivery, Membership]:
    delivery = (
        AlertDelivery.objects.select_related("channel")
        .filter(pk=pk, channel__workspace__memberships__user=user)
        .first()
    )
    if delivery is None:
        raise Http404("Not found.")
    return delivery, get_membership_for_user(user, delivery.channel.workspace_id, role=role)


@dataclass(frozen=True)
class IncidentPage:
    incidents: list[AlertIncident]
    next_before: int | None  # the keyset of the next (older) page


def incidents_page(*, workspace: Workspace, state: str, before: int | None) -> IncidentPage:
    """Newest first, keyset-paginated on id (index `(workspace, state, -id)`)."""
    rows: QuerySet[AlertIncident] = AlertIncident.objects.filter(workspace=workspace)
    if state == "open":
        rows = rows.filter(state__in=(IncidentState.OPEN, IncidentState.ACKNOWLEDGED))
    elif state in (IncidentState.ACKNOWLEDGED, IncidentState.RESOLVED):
        rows = rows.filter(state=state)
    if before is not None:
        rows = rows.filter(id__lt=before)
    found = list(
        rows.select_related("rule", "acknowledged_by", "resolved_by").order_by("-id")[
            : PAGE_SIZE + 1
        ]
    )
    more = len(found) > PAGE_SIZE
    found = found[:PAGE_SIZE]
    return IncidentPage(found, found[-1].pk if more else None)


def incident_counts(*, workspace: Workspace) -> dict[str, int]:
    counts = dict.fromkeys(IncidentState.values, 0)
    for row in (
        AlertIncident.objects.filter(workspace=workspace)
        .exclude(state=IncidentState.RESOLVED)
        .values("state")
        .annotate(n=Count("id"))
        .order_by()
    ):
        counts[row["state"]] = row["n"]
    return counts


def notifications_unread(*, user: Any, workspace: Workspace) -> int:
    """Notifications after the last one this person saw here, capped: one query (every page's
    header asks)."""
    seen = Coalesce(
        Subquery(
            NotificationSeen.objects.filter(workspace=workspace, user=user).values("last_seen_id")[
                :1
            ]
        ),
        Value(0),
    )
    return (
        Notification.objects.filter(workspace=workspace, id__gt=seen)
        .order_by()
        .values("id")[: UNREAD_CAP + 1]
        .count()
    )


def notifications_latest(*, workspace: Workspace, limit: int = 5) -> list[Notification]:
    return list(Notification.objects.filter(workspace=workspace).order_by("-id")[:limit])


def rules_of(*, workspace: Workspace) -> list[AlertRule]:
    return list(AlertRule.objects.filter(workspace=workspace).order_by("name", "id"))


def channels_of(*, workspace: Workspace) -> list[AlertChannel]:
    return list(AlertChannel.objects.filter(workspace=workspace).order_by("name", "id"))


def deliveries_of(*, channel: AlertChannel, limit: int = 30) -> list[AlertDelivery]:
    return list(channel.deliveries.select_related("incident").order_by("-id")[:limit])
