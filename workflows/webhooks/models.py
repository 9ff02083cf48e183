"""A workspace's webhook subscriptions, and their deliveries (the outbox).

A delivery row is written in the same transaction as what it tells of (a run's status change, an
alert firing), so an event is sent exactly when it happened: never lost to a crash between the two,
never sent for a change that was rolled back. `UNIQUE(subscription, event_id)` makes each event
one delivery per subscription, whatever retries; `event_id` is the `webhook-id` its receiver sees
on every attempt and redelivery.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from a2a_site.accounts.models import Workspace
from workflows.webhooks.queue import DeliveryBase


class WebhookEvent(models.TextChoices):
    RUN_STARTED = "run.started", "A run started"
    RUN_WAITING = "run.waiting", "A run waits for a person"
    RUN_SUCCEEDED = "run.succeeded", "A run succeeded"
    RUN_FAILED = "run.failed", "A run failed"
    RUN_CANCELLED = "run.cancelled", "A run was cancelled"
    ALERT_FIRED = "alert.fired", "An alert fired"
    ALERT_RESOLVED = "alert.resolved", "An alert was resolved"


RUN_EVENTS = [event for event in WebhookEvent if event.value.startswith("run.")]
ALERT_EVENTS = [event for event in WebhookEvent if event.value.startswith("alert.")]
TEST_EVENT = "webhook.test"


class WebhookSubscription(models.Model):
    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="webhook_subscriptions"
    )
    # Only this workflow's runs; None: every run of the workspace. Alert events are the
    # workspace's either way.
    workflow = models.ForeignKey(
        "workflows.Workflow",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="webhook_subscriptions",
    )
    name = models.CharField(max_length=120)
    url = models.URLField(max_length=500)
    events = models.JSONField(default=list)  # WebhookEvent values
    enabled = models.BooleanField(default=True)
    # `whsec_…`, encrypted like provider credentials; shown once, when made or rotated.
    secret_encrypted = models.TextField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        indexes = [models.Index(fields=["workspace", "enabled"], name="webhook_sub_ws")]

    def __str__(self) -> str:
        return self.name

    def wants(self, event: str) -> bool:
        return event in self.events


class WebhookDelivery(DeliveryBase):
    subscription = models.ForeignKey(
        WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.CharField(max_length=32)  # a WebhookEvent value, or webhook.test
    event_id = models.CharField(max_length=64)  # the `webhook-id`
    # The run it tells of (kept as an id: the log outlives a deleted run), for ordering: a run's
    # next event to a subscription waits until the one before it is no longer pending.
    run_id = models.UUIDField(null=True, blank=True)
    # Retries stop WEBHOOKS_RETRY_HOURS after this: the creation, or the last redelivery.
    retry_since = models.DateTimeField()

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "event_id"], name="webhook_delivery_once"
            )
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="webhook_delivery_due"),
            models.Index(fields=["subscription", "-id"], name="webhook_delivery_sub"),
            models.Index(fields=["subscription", "run_id", "id"], name="webhook_delivery_run"),
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.subscription_id} ({self.status})"

    @staticmethod
    def new_event_id() -> str:
        return f"evt_{uuid.uuid4().hex}"
