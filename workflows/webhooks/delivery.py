"""Sending the subscriptions' deliveries: through the shared queue, signed with the
subscription's secret, retried with exponential backoff for WEBHOOKS_RETRY_HOURS.

Who sends, in each mode:
- distributed: each delivery is handed to a Celery worker when its transaction commits
  (`workflows.tasks.webhook_delivery_send`); a failed attempt schedules the next with a countdown;
  Celery beat's `webhooks-round` sends whatever is due besides (a lost task, a dispatch that
  failed, a worker restarted with scheduled retries in its memory);
- embedded: the same attempt in a thread of the web process, and the executor's housekeeping
  runs the round.

Order per run: a run's event to a subscription is held back while an earlier event of the same
run to it is pending (`_earlier_pending`), so a receiver learns `run.started` before
`run.succeeded` even when it failed the first; once an event is delivered, failed or refused,
the next goes. Each body also carries its `timestamp`.
"""

from __future__ import annotations

import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef, Q

from agents.crypto import CredentialDecryptError, CredentialKeyError, credential_decrypt
from workflows.webhooks.models import WebhookDelivery
from workflows.webhooks.queue import DeliveryQueue, DeliveryStatus, RetryPolicy
from workflows.webhooks.signing import PostResult, webhook_post

logger = logging.getLogger(__name__)

DELIVERIES_PER_ROUND = 200
# Beyond this wait a retry is left to the round rather than held in a worker's memory.
COUNTDOWN_LIMIT = timedelta(minutes=15)


def retry_policy() -> RetryPolicy:
    return RetryPolicy(
        base_seconds=settings.WEBHOOKS_BACKOFF_SECONDS,
        cap_seconds=settings.WEBHOOKS_BACKOFF_CAP_SECONDS,
        give_up_after=timedelta(hours=settings.WEBHOOKS_RETRY_HOURS),
    )


def _send(delivery: WebhookDelivery) -> PostResult:
    subscription = delivery.subscription
    try:
        secret = credential_decrypt(subscription.secret_encrypted)
    except (CredentialDecryptError, CredentialKeyError) as error:
        return PostResult(None, str(error))
    return webhook_post(
        url=subscription.url,
        secret=secret,
        message_id=delivery.event_id,
        body=delivery.body,
        timeout=settings.WEBHOOKS_TIMEOUT_SECONDS,
    )


def _earlier_pending() -> Q:
    earlier = WebhookDelivery.objects.filter(
        subscription_id=OuterRef("subscription_id"),
        run_id=OuterRef("run_id"),
        id__lt=OuterRef("id"),
        status=DeliveryStatus.PENDING,
    )
    return Q(run_id__isnull=False) & Q(Exists(earlier))


QUEUE = DeliveryQueue(
    model=WebhookDelivery,
    send=_send,
    retry=retry_policy,
    lease_seconds=lambda: settings.WEBHOOKS_TIMEOUT_SECONDS + 30,
    held_back=_earlier_pending,
    related=("subscription",),
    retry_since="retry_since",
)

_threads: ThreadPoolExecutor | None = None


def _thread_pool() -> ThreadPoolExecutor:
    global _threads
    if _threads is None:
        _threads = ThreadPoolExecutor(max_workers=2, thread_name_prefix="webhooks")
    return _threads


def _attempt(delivery_id: int, now: datetime | None) -> tuple[bool, int | None]:
    """One attempt if due (see the queue): whether it was made, and the run's next event to
    this subscription if it waited on this one and may go now."""
    attempted = QUEUE.attempt(delivery_id=delivery_id, now=now)
    if attempted is None:
        return False, None
    assert isinstance(attempted, WebhookDelivery)
    delivery = attempted
    if delivery.status == DeliveryStatus.PENDING:
        delivery_schedule(delivery.pk, delivery.next_attempt_at)
        return True, None
    if delivery.run_id is None:
        return True, None
    following = (
        WebhookDelivery.objects.filter(
            subscription_id=delivery.subscription_id,
            run_id=delivery.run_id,
            id__gt=delivery.pk,
            status=DeliveryStatus.PENDING,
        )
        .order_by("id")
        .values_list("pk", flat=True)
        .first()
    )
    return True, following


def webhook_delivery_attempt(*, delivery_id: int, now: datetime | None = None) -> bool:
    """One attempt if due; the run's next event, which waited on it, is handed over after."""
    made, following = _attempt(delivery_id, now)
    if following is not None:
        deliveries_dispatch([following])
    return made


def webhooks_send_due(*, now: datetime | None = None) -> int:
    """The round: every delivery that is due (and not held back), one attempt each, and the
    events of a run that waited on one of them."""
    due = list(
        QUEUE.due(now or _now())
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:DELIVERIES_PER_ROUND]
    )
    made = 0
    for pk in due:
        following: int | None = pk
        while following is not None:
            attempted, following = _attempt(following, now)
            made += attempted
    return made


def _now() -> datetime:
    from django.utils import timezone

    return timezone.now()


def webhook_redeliver(*, delivery: WebhookDelivery) -> None:
    """Due again at once with the same `webhook-id` and body, retried for another
    WEBHOOKS_RETRY_HOURS; handed to a sender now."""
    QUEUE.redeliver(delivery_id=delivery.pk)
    deliveries_dispatch([delivery.pk])


def deliveries_dispatch(delivery_ids: list[int]) -> None:
    """Hands deliveries to a sender now: a Celery worker, or a thread of this process. Never
    raises: what is not handed over is sent by the next round."""
    for delivery_id in delivery_ids:
        delivery_schedule(delivery_id, None)


def delivery_schedule(delivery_id: int, due: datetime | None) -> None:
    if settings.EXECUTION_MODE == "celery":
        countdown = 0.0 if due is None else max((due - _now()).total_seconds(), 0.0)
        if countdown > COUNTDOWN_LIMIT.total_seconds():
            return  # the round sends it when it is due
        from workflows.tasks import webhook_delivery_send

        try:
            webhook_delivery_send.apply_async((delivery_id,), countdown=countdown)
        except Exception as error:  # noqa: BLE001 - the round sends it
            logger.warning("Webhook delivery %s not queued (%s)", delivery_id, type(error).__name__)
        return
    if due is not None or not settings.WEBHOOKS_SEND_AT_ONCE:
        return  # the housekeeping round sends retries (and everything, if told to)
    # RuntimeError: the interpreter is shutting down; the round sends it next time.
    with contextlib.suppress(RuntimeError):
        _thread_pool().submit(_attempt_in_thread, delivery_id)


def _attempt_in_thread(delivery_id: int) -> None:
    from django.db import close_old_connections

    try:
        webhook_delivery_attempt(delivery_id=delivery_id)
    except Exception:  # noqa: BLE001 - logged; the round tries again when its lease expires
        logger.exception("Webhook delivery %s failed to send", delivery_id)
    finally:
        close_old_connections()
