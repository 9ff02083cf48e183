"""Writes to rules, channels and notifications (incidents move in `evaluation`)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from a2a_site.accounts.models import Workspace
from agents.crypto import credential_encrypt, credential_rotate_token
from monitoring.alerts.evaluation import incident_recover
from monitoring.alerts.models import (
    AlertChannel,
    AlertDelivery,
    AlertIncident,
    AlertRule,
    ChannelKind,
    DeliveryStatus,
    IncidentState,
    Notification,
    NotificationSeen,
)
from monitoring.alerts.notify import absolute, deliveries_create, deliveries_dispatch
from workflows.webhooks.signing import webhook_secret_new

RULE_FIELDS = ("name", "kind", "threshold", "window_minutes", "min_calls", "enabled")


def alert_rule_create(*, workspace: Workspace, data: dict[str, Any]) -> AlertRule:
    return AlertRule.objects.create(
        workspace=workspace, **{name: data[name] for name in RULE_FIELDS}
    )


def alert_rule_update(*, rule: AlertRule, data: dict[str, Any]) -> AlertRule:
    """Saves the rule and has it evaluated at the next round. A disabled rule's incidents are
    resolved: nothing would ever resolve them otherwise."""
    with transaction.atomic():
        for name in RULE_FIELDS:
            setattr(rule, name, data[name])
        rule.next_evaluation_at = None
        rule.save()
        if not rule.enabled:
            subjects = (
                AlertIncident.objects.filter(rule=rule)
                .exclude(state=IncidentState.RESOLVED)
                .values_list("subject", flat=True)
            )
            for subject in list(subjects):
                incident_recover(
                    rule=rule, subject=subject, summary="The rule was disabled.", now=timezone.now()
                )
    return rule


def alert_rule_delete(*, rule: AlertRule) -> None:
    rule.delete()


def alert_channel_create(
    *, workspace: Workspace, kind: str, data: dict[str, Any]
) -> tuple[AlertChannel, str]:
    """Makes the channel; for a webhook, also its signing secret, returned this once only."""
    secret = webhook_secret_new() if kind == ChannelKind.WEBHOOK else ""
    channel = AlertChannel.objects.create(
        workspace=workspace,
        kind=kind,
        name=data["name"],
        enabled=data["enabled"],
        email_to=data.get("email_to", "") if kind == ChannelKind.EMAIL else "",
        url=data.get("url", "") if kind == ChannelKind.WEBHOOK else "",
        secret_encrypted=credential_encrypt(secret) if secret else "",
    )
    return channel, secret


def alert_channel_update(*, channel: AlertChannel, data: dict[str, Any]) -> AlertChannel:
    channel.name = data["name"]
    channel.enabled = data["enabled"]
    if channel.kind == ChannelKind.EMAIL:
        channel.email_to = data["email_to"]
    else:
        channel.url = data["url"]
    channel.save()
    return channel


def alert_channel_secret_rotate(*, channel: AlertChannel) -> str:
    """A new signing secret, returned this once; the old one stops signing now."""
    secret = webhook_secret_new()
    channel.secret_encrypted = credential_encrypt(secret)
    channel.save(update_fields=["secret_encrypted", "updated_at"])
    return secret


def alert_channel_secrets_rotate() -> int:
    """Re-encrypts every webhook's signing secret with the first credential key (called by
    `rotate_credential_keys`, inside its transaction)."""
    rotated = 0
    for channel in AlertChannel.objects.select_for_update().exclude(secret_encrypted=""):
        channel.secret_encrypted = credential_rotate_token(channel.secret_encrypted)
        channel.save(update_fields=["secret_encrypted"])
        rotated += 1
    return rotated


def alert_channel_delete(*, channel: AlertChannel) -> None:
    channel.delete()


def alert_channel_test(*, channel: AlertChannel, user: Any) -> AlertDelivery:
    body = json.dumps(
        {
            "type": "alert.test",
            "timestamp": timezone.now().isoformat(),
            "data": {
                "summary": f"A test message sent by {user.get_username()}.",
                "workspace": {"id": str(channel.workspace_id), "name": channel.workspace.name},
                "rule": {"name": "Test"},
                "url": absolute("/alerts/"),
            },
        },
        separators=(",", ":"),
    )
    with transaction.atomic():
        (delivery,) = deliveries_create(
            workspace_id=channel.workspace_id, event="alert.test", body=body, channels=[channel]
        )
        transaction.on_commit(lambda: deliveries_dispatch([delivery.pk]))
    return delivery


def notifications_mark_seen(*, user: Any, workspace: Workspace) -> None:
    latest = Notification.objects.filter(workspace=workspace).aggregate(last=Max("id"))["last"]
    if latest is None:
        return
    seen, created = NotificationSeen.objects.get_or_create(
        workspace=workspace, user=user, defaults={"last_seen_id": latest}
    )
    if not created and seen.last_seen_id < latest:
        NotificationSeen.objects.filter(pk=seen.pk, last_seen_id__lt=latest).update(
            last_seen_id=latest
        )


FORGET_BATCH = 1000


def alerts_forget_old(*, now: datetime) -> int:
    """Deletes one batch of notifications and finished deliveries older than ALERTS_KEEP_DAYS
    (a batch per round keeps each delete short); incidents, the history, are kept."""
    cutoff = now - timedelta(days=settings.ALERTS_KEEP_DAYS)
    old_notifications = Notification.objects.filter(created_at__lt=cutoff).order_by("id")
    notifications = list(old_notifications.values_list("id", flat=True)[:FORGET_BATCH])
    old_deliveries = AlertDelivery.objects.filter(created_at__lt=cutoff).exclude(
        status=DeliveryStatus.PENDING
    )
    deliveries = list(old_deliveries.order_by("id").values_list("id", flat=True)[:FORGET_BATCH])
    deleted = Notification.objects.filter(id__in=notifications).delete()[0]
    return deleted + AlertDelivery.objects.filter(id__in=deliveries).delete()[0]
