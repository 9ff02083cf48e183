"""Telling people: an in-app notification (stored, then sent live after commit), and one delivery
per enabled e-mail or webhook channel, sent by the delivery queue (`monitoring.alerts.deliveries`).

Called inside the transaction that changed the incident, so a notification exists exactly when
the change does.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from monitoring.alerts.kinds import threshold_text
from monitoring.alerts.models import (
    AlertChannel,
    AlertDelivery,
    AlertIncident,
    Notification,
)
from workflows.webhooks.events import alert_event_record
from workflows.webhooks.models import ALERT_EVENTS

logger = logging.getLogger(__name__)

LIVE_SEND_TIMEOUT_S = 2.0
WEBHOOK_EVENTS = {str(event) for event in ALERT_EVENTS}
EVENT_TITLES = {
    "alert.fired": "Alert: {rule}",
    "alert.resolved": "Resolved: {rule}",
    "alert.test": "Test message from A2A Studio",
}


def notifications_group(workspace_id: Any) -> str:
    return f"notifications.{workspace_id}"


def incident_url(incident: AlertIncident) -> str:
    return f"{reverse('alert_list')}?state=all#incident-{incident.pk}"


def absolute(path: str) -> str:
    return f"{settings.SITE_URL.rstrip('/')}{path}" if settings.SITE_URL else path


def incident_payload(incident: AlertIncident, event: str) -> dict[str, Any]:
    """The body of every channel's message: one JSON shape (Standard Webhooks' type/timestamp/
    data), so a receiver reads e-mail, webhook and the page the same way."""
    rule = incident.rule
    return {
        "type": event,
        "timestamp": timezone.now().isoformat(),
        "data": {
            "incident_id": incident.pk,
            "state": incident.state,
            "workspace": {"id": str(incident.workspace_id), "name": rule.workspace.name},
            "rule": {
                "id": rule.pk,
                "name": rule.name,
                "kind": rule.kind,
                "threshold": threshold_text(rule.kind, incident.threshold),
            },
            "subject": incident.subject,
            "summary": incident.summary,
            "value": None if incident.value is None else f"{incident.value.normalize():f}",
            "opened_at": incident.opened_at.isoformat(),
            "resolved_at": incident.resolved_at.isoformat() if incident.resolved_at else None,
            "resolved_summary": incident.resolved_summary,
            "url": absolute(incident_url(incident)),
        },
    }


def incident_notify(*, incident: AlertIncident, event: str, now: datetime) -> Notification:
    """`now`: the moment of the change, when its deliveries become due."""
    rule = incident.rule
    body = incident.resolved_summary if event == "alert.resolved" else incident.summary
    notification = Notification.objects.create(
        workspace_id=incident.workspace_id,
        incident=incident,
        event=event,
        title=EVENT_TITLES[event].format(rule=rule.name)[:200],
        body=body[:500],
    )
    data = incident_payload(incident, event)
    payload = json.dumps(data, separators=(",", ":"))
    deliveries = deliveries_create(
        workspace_id=incident.workspace_id, event=event, body=payload, incident=incident, now=now
    )
    if event in WEBHOOK_EVENTS:
        # The workspace's webhook subscriptions to alerts get the same body, in this transaction.
        alert_event_record(workspace_id=incident.workspace_id, event=event, payload=data)
    live = notification_message(notification, url=incident_url(incident))
    transaction.on_commit(lambda: notification_publish(incident.workspace_id, live))
    transaction.on_commit(lambda: deliveries_dispatch([d.pk for d in deliveries]))
    return notification


def deliveries_create(
    *,
    workspace_id: Any,
    event: str,
    body: str,
    incident: AlertIncident | None = None,
    channels: list[AlertChannel] | None = None,
    now: datetime | None = None,
) -> list[AlertDelivery]:
    if channels is None:
        channels = list(AlertChannel.objects.filter(workspace_id=workspace_id, enabled=True))
    now = now or timezone.now()
    return AlertDelivery.objects.bulk_create(
        AlertDelivery(
            channel=channel,
            incident=incident,
            event=event,
            message_id=AlertDelivery.new_message_id(),
            body=body,
            next_attempt_at=now,
        )
        for channel in channels
    )


def notification_message(notification: Notification, *, url: str) -> dict[str, Any]:
    return {
        "type": "alerts.notification",
        "id": notification.pk,
        "event": notification.event,
        "title": notification.title,
        "body": notification.body,
        "url": url,
    }


def notification_publish(workspace_id: Any, message: dict[str, Any]) -> None:
    """Sends the notification to the workspace's open pages; bounded, never raises (the pages
    render the stored notifications when they load)."""
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    if layer is None:
        return

    async def send() -> None:
        await asyncio.wait_for(
            layer.group_send(notifications_group(workspace_id), message), LIVE_SEND_TIMEOUT_S
        )

    try:
        async_to_sync(send)()
    except Exception as error:  # noqa: BLE001 - stored; shown when the page next loads
        logger.warning("Notification %s not sent live (%s)", message["id"], type(error).__name__)


def deliveries_dispatch(delivery_ids: list[int]) -> None:
    """With Celery, each delivery is attempted at once by a worker; without it (and whenever a
    dispatch fails) the periodic round sends what is due."""
    if not delivery_ids or settings.EXECUTION_MODE == "embedded":
        return
    from monitoring.tasks import alert_delivery_send

    for delivery_id in delivery_ids:
        try:
            alert_delivery_send.delay(delivery_id)
        except Exception as error:  # noqa: BLE001 - the periodic round sends it
            logger.warning("Delivery %s not queued (%s)", delivery_id, type(error).__name__)
            return
