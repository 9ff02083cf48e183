"""The alerts' deliveries (e-mails and webhooks) through the shared delivery queue
(`workflows.webhooks.queue`: claimed attempts, backoff, log, redeliver). After a failed attempt
the next waits ALERTS_DELIVERY_BACKOFF_SECONDS × 2^(attempts − 1), capped at an hour; after
ALERTS_DELIVERY_ATTEMPTS the delivery is failed.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail

from agents.crypto import CredentialDecryptError, CredentialKeyError, credential_decrypt
from monitoring.alerts.models import AlertDelivery, ChannelKind
from workflows.webhooks.queue import DeliveryQueue, RetryPolicy
from workflows.webhooks.signing import PostResult, webhook_post

BACKOFF_CAP_SECONDS = 3600


def _retry_policy() -> RetryPolicy:
    return RetryPolicy(
        base_seconds=settings.ALERTS_DELIVERY_BACKOFF_SECONDS,
        cap_seconds=BACKOFF_CAP_SECONDS,
        max_attempts=settings.ALERTS_DELIVERY_ATTEMPTS,
    )


def delivery_backoff(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failed attempt."""
    return _retry_policy().backoff(attempts)


def _send_email(delivery: AlertDelivery) -> PostResult:
    payload = json.loads(delivery.body)
    data = payload.get("data", {})
    title = {
        "alert.fired": "Alert",
        "alert.resolved": "Resolved",
        "alert.test": "Test",
    }.get(payload.get("type", ""), "Alert")
    rule = data.get("rule", {}).get("name", "A2A Studio")
    subject = f"[A2A Studio] {title}: {rule}"
    lines = [data.get("summary", "")]
    if data.get("resolved_summary"):
        lines.append(data["resolved_summary"])
    if data.get("workspace"):
        lines.append(f"Workspace: {data['workspace'].get('name', '')}")
    if data.get("url"):
        lines.append(f"Alert history: {data['url']}")
    recipients = [a.strip() for a in delivery.channel.email_to.split(",") if a.strip()]
    try:
        send_mail(subject, "\n\n".join(line for line in lines if line), None, recipients)
    except Exception as error:  # noqa: BLE001 - an SMTP failure is retried
        return PostResult(None, f"The mail server refused or failed ({type(error).__name__}).")
    return PostResult(None, "")


def _send_webhook(delivery: AlertDelivery) -> PostResult:
    try:
        secret = credential_decrypt(delivery.channel.secret_encrypted)
    except (CredentialDecryptError, CredentialKeyError) as error:
        return PostResult(None, str(error))
    return webhook_post(
        url=delivery.channel.url, secret=secret, message_id=delivery.message_id, body=delivery.body
    )


def _send(delivery: AlertDelivery) -> PostResult:
    if delivery.channel.kind == ChannelKind.EMAIL:
        return _send_email(delivery)
    return _send_webhook(delivery)


QUEUE = DeliveryQueue(
    model=AlertDelivery,
    send=_send,
    retry=_retry_policy,
    lease_seconds=lambda: settings.ALERTS_WEBHOOK_TIMEOUT_SECONDS + 30,
    related=("channel",),
)


def delivery_attempt(*, delivery_id: int, now: datetime | None = None) -> bool:
    """Makes one attempt if the delivery is due and nobody else is at it; True if it was made."""
    return QUEUE.attempt(delivery_id=delivery_id, now=now) is not None


def deliveries_send_due(*, now: datetime | None = None) -> int:
    return QUEUE.send_due(now=now)


def delivery_redeliver(*, delivery: AlertDelivery, now: datetime | None = None) -> None:
    """Due again at once, with the same `webhook-id` and body; its attempts start over."""
    QUEUE.redeliver(delivery_id=delivery.pk, now=now)
