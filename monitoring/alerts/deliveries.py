"""The delivery queue of e-mails and webhooks: each attempt claimed, retried with backoff, logged.

A delivery is due while `pending` and `next_attempt_at` has passed. A sender claims one attempt
with a conditional UPDATE (due, not leased), so two senders never send the same attempt; a sender
that dies mid-attempt leaves a lease that expires, and the attempt is made again (at least once:
receivers de-duplicate by `webhook-id`, which the retries share). After a failed attempt the next
waits ALERTS_DELIVERY_BACKOFF_SECONDS × 2^(attempts − 1), capped at an hour; after
ALERTS_DELIVERY_ATTEMPTS the delivery is failed. An address the outbound policy refuses is not
retried. "Redeliver" makes a delivery due again with the same id and body.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db.models import F, Q
from django.utils import timezone

from agents.crypto import CredentialDecryptError, CredentialKeyError, credential_decrypt
from monitoring.alerts.models import AlertDelivery, ChannelKind, DeliveryStatus
from monitoring.alerts.webhooks import PostResult, webhook_post

logger = logging.getLogger(__name__)

DELIVERIES_PER_ROUND = 50
BACKOFF_CAP_SECONDS = 3600


def delivery_backoff(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failed attempt."""
    seconds = settings.ALERTS_DELIVERY_BACKOFF_SECONDS * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, BACKOFF_CAP_SECONDS))


def delivery_claim(*, delivery_id: int, now: datetime) -> bool:
    lease = timedelta(seconds=settings.ALERTS_WEBHOOK_TIMEOUT_SECONDS + 30)
    claimed = (
        AlertDelivery.objects.filter(
            pk=delivery_id, status=DeliveryStatus.PENDING, next_attempt_at__lte=now
        )
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(lease_until=now + lease, attempts=F("attempts") + 1)
    )
    return claimed == 1


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


def delivery_attempt(*, delivery_id: int, now: datetime | None = None) -> bool:
    """Makes one attempt if the delivery is due and nobody else is at it; True if it was made."""
    now = now or timezone.now()
    if not delivery_claim(delivery_id=delivery_id, now=now):
        return False
    delivery = AlertDelivery.objects.select_related("channel").get(pk=delivery_id)
    started = time.perf_counter()
    if delivery.channel.kind == ChannelKind.EMAIL:
        result = _send_email(delivery)
    else:
        result = _send_webhook(delivery)
    elapsed_ms = round((time.perf_counter() - started) * 1000)
    entry: dict[str, Any] = {
        "at": now.isoformat(),
        "status_code": result.status_code,
        "error": result.error,
        "ms": elapsed_ms,
    }
    update: dict[str, Any] = {
        "lease_until": None,
        "last_status_code": result.status_code,
        "last_error": result.error[:500],
        "log": [*delivery.log, entry][-20:],
    }
    if not result.error:
        update.update(status=DeliveryStatus.DELIVERED, delivered_at=timezone.now())
    elif result.refused:
        update.update(status=DeliveryStatus.REFUSED)
    elif delivery.attempts >= settings.ALERTS_DELIVERY_ATTEMPTS:
        update.update(status=DeliveryStatus.FAILED)
    else:
        update.update(next_attempt_at=now + delivery_backoff(delivery.attempts))
    # Fenced by the claim: only the holder of this attempt's lease writes its outcome.
    AlertDelivery.objects.filter(pk=delivery_id, attempts=delivery.attempts).update(**update)
    if result.error:
        logger.info("Delivery %s attempt %s: %s", delivery_id, delivery.attempts, result.error)
    return True


def deliveries_send_due(*, now: datetime | None = None) -> int:
    now = now or timezone.now()
    due = list(
        AlertDelivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:DELIVERIES_PER_ROUND]
    )
    return sum(delivery_attempt(delivery_id=pk, now=now) for pk in due)


def delivery_redeliver(*, delivery: AlertDelivery, now: datetime | None = None) -> None:
    """Due again at once, with the same `webhook-id` and body; its attempts start over."""
    now = now or timezone.now()
    AlertDelivery.objects.filter(pk=delivery.pk).update(
        status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=now, lease_until=None
    )
