"""Reads for the webhooks page and API, and the permission seams of their objects: another
workspace's subscription or delivery is not found (404)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404

from a2a_site.accounts.access import get_for_member, get_membership_for_user
from a2a_site.accounts.models import Membership, Role, Workspace
from workflows.webhooks.models import WebhookDelivery, WebhookSubscription

DELIVERIES_SHOWN = 50


def get_subscription_for_user(
    user: Any, pk: Any, *, role: Role = Role.VIEWER
) -> tuple[WebhookSubscription, Membership]:
    return get_for_member(
        WebhookSubscription.objects.select_related("workflow", "workspace"), user, pk, role=role
    )


def get_delivery_for_user(
    user: Any, pk: Any, *, role: Role = Role.VIEWER
) -> tuple[WebhookDelivery, Membership]:
    try:
        delivery = (
            WebhookDelivery.objects.select_related("subscription")
            .filter(pk=pk, subscription__workspace__memberships__user=user)
            .first()
        )
    except (ValueError, TypeError):
        delivery = None
    if delivery is None:
        raise Http404("Not found.")
    membership = get_membership_for_user(user, delivery.subscription.workspace_id, role=role)
    return delivery, membership


def subscriptions_of(*, workspace: Workspace | Any) -> QuerySet[WebhookSubscription]:
    return WebhookSubscription.objects.filter(workspace=workspace).select_related("workflow")


def deliveries_of(*, subscription: WebhookSubscription) -> QuerySet[WebhookDelivery]:
    return WebhookDelivery.objects.filter(subscription=subscription).order_by("-id")


def webhooks_settings_context(membership: Membership) -> dict[str, Any]:
    """The workspace settings page's webhooks section."""
    return {
        "webhook_count": WebhookSubscription.objects.filter(
            workspace_id=membership.workspace_id
        ).count(),
        "webhook_can_edit": membership.allows(Role.EDITOR),
    }
