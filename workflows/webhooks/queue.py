"""The delivery queue of outgoing messages (alert e-mails and webhooks, run-event webhooks): each
attempt claimed, retried with backoff, logged, redelivered on request.

A delivery is due while `pending` and `next_attempt_at` has passed. A sender claims one attempt
with a conditional UPDATE (due, not leased), so two senders never send the same attempt; a sender
that dies mid-attempt leaves a lease that expires, and the attempt is made again (at least once:
receivers de-duplicate by `webhook-id`, which the retries share). After a failed attempt the
queue's `RetryPolicy` says when the next is due, or that it gives up (the delivery is failed).
An address the outbound policy refuses is not retried. "Redeliver" makes a delivery due again
with the same id and body.

Each kind of delivery is a concrete model on `DeliveryBase` with its own table; what differs (how
one is sent, how long it is retried, what may hold it back) is given to these functions.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from workflows.webhooks.signing import PostResult

logger = logging.getLogger(__name__)

DELIVERIES_PER_ROUND = 50
LOG_ENTRIES_KEPT = 20


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"
    REFUSED = "refused", "Refused by the outbound policy"


class DeliveryBase(models.Model):
    """One message to one destination: its body is fixed when made, so every retry sends the same
    bytes under the same `webhook-id`. Attempts are claimed with a conditional UPDATE."""

    body = models.TextField()
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    # An attempt in progress: another sender leaves the row alone until then.
    lease_until = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    # [{"at", "status_code", "error", "ms"}], one per attempt, oldest first.
    log = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


D = TypeVar("D", bound=DeliveryBase)


@dataclass(frozen=True)
class RetryPolicy:
    """When the attempt after a failed one is due: `base_seconds` × 2^(attempts − 1), capped at
    `cap_seconds`; none after `max_attempts` attempts, nor later than `give_up_after` from the
    delivery's creation (whichever is set)."""

    base_seconds: float
    cap_seconds: float
    max_attempts: int | None = None
    give_up_after: timedelta | None = None

    def backoff(self, attempts: int) -> timedelta:
        seconds = self.base_seconds * 2 ** max(attempts - 1, 0)
        return timedelta(seconds=min(seconds, self.cap_seconds))

    def next_attempt(self, *, attempts: int, since: datetime, now: datetime) -> datetime | None:
        """The next attempt's time after the `attempts`-th failed one of a delivery retried
        since `since`, or None: give up."""
        if self.max_attempts is not None and attempts >= self.max_attempts:
            return None
        due = now + self.backoff(attempts)
        if self.give_up_after is not None and due > since + self.give_up_after:
            return None
        return due


@dataclass(frozen=True)
class DeliveryQueue:
    model: type[DeliveryBase]
    send: Callable[[Any], PostResult]  # one attempt; never raises
    retry: Callable[[], RetryPolicy]  # read each time: settings may change (tests)
    lease_seconds: Callable[[], float]
    # Deliveries held back while this holds (e.g. an earlier event of the same run still
    # pending): a Q over the model, excluded from what is due.
    held_back: Callable[[], Q] | None = None
    related: tuple[str, ...] = ()  # select_related for `send`
    # The field a time limit of the retries counts from; a redelivery sets it anew, unless it
    # is the creation time.
    retry_since: str = "created_at"

    def due(self, now: datetime) -> Any:
        rows = self.model._default_manager.filter(
            status=DeliveryStatus.PENDING, next_attempt_at__lte=now
        ).filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        if self.held_back is not None:
            rows = rows.exclude(self.held_back())
        return rows

    def claim(self, *, delivery_id: int, now: datetime) -> bool:
        lease = timedelta(seconds=self.lease_seconds())
        claimed = (
            self.due(now)
            .filter(pk=delivery_id)
            .update(lease_until=now + lease, attempts=F("attempts") + 1)
        )
        return claimed == 1

    def attempt(self, *, delivery_id: int, now: datetime | None = None) -> DeliveryBase | None:
        """Makes one attempt if the delivery is due and nobody else is at it; the delivery as
        the attempt left it, or None if none was made."""
        now = now or timezone.now()
        if not self.claim(delivery_id=delivery_id, now=now):
            return None
        manager = self.model._default_manager
        delivery = manager.select_related(*self.related).get(pk=delivery_id)
        started = time.perf_counter()
        result = self.send(delivery)
        entry: dict[str, Any] = {
            "at": now.isoformat(),
            "status_code": result.status_code,
            "error": result.error,
            "ms": round((time.perf_counter() - started) * 1000),
        }
        update: dict[str, Any] = {
            "lease_until": None,
            "last_status_code": result.status_code,
            "last_error": result.error[:500],
            "log": [*delivery.log, entry][-LOG_ENTRIES_KEPT:],
        }
        if not result.error:
            update.update(status=DeliveryStatus.DELIVERED, delivered_at=timezone.now())
        elif result.refused:
            update.update(status=DeliveryStatus.REFUSED)
        else:
            due = self.retry().next_attempt(
                attempts=delivery.attempts, since=getattr(delivery, self.retry_since), now=now
            )
            if due is None:
                update.update(status=DeliveryStatus.FAILED)
            else:
                update.update(next_attempt_at=due)
        # Fenced by the claim: only the holder of this attempt's lease writes its outcome.
        manager.filter(pk=delivery_id, attempts=delivery.attempts).update(**update)
        for name, value in update.items():
            setattr(delivery, name, value)
        if result.error:
            logger.info(
                "%s %s attempt %s: %s",
                self.model.__name__,
                delivery_id,
                delivery.attempts,
                result.error,
            )
        return delivery

    def send_due(self, *, now: datetime | None = None) -> int:
        now = now or timezone.now()
        due = list(
            self.due(now)
            .order_by("next_attempt_at", "pk")
            .values_list("pk", flat=True)[:DELIVERIES_PER_ROUND]
        )
        return sum(self.attempt(delivery_id=pk, now=now) is not None for pk in due)

    def redeliver(self, *, delivery_id: int, now: datetime | None = None) -> None:
        """Due again at once, with the same `webhook-id` and body; its attempts start over (and
        so does a time limit of its retries: counted from now)."""
        now = now or timezone.now()
        update: dict[str, Any] = {
            "status": DeliveryStatus.PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "lease_until": None,
        }
        if self.retry_since != "created_at":
            update[self.retry_since] = now
        self.model._default_manager.filter(pk=delivery_id).update(**update)
