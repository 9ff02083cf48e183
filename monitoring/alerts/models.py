"""Alert rules, their incidents, where they are sent, and the in-app notifications.

An incident is the one open occurrence of a rule's condition: `UNIQUE(rule, subject)` among
incidents not yet resolved makes a second "fired" impossible whatever the number of evaluators, and
each state change is a conditional UPDATE, so "resolved" happens once too.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from a2a_site.accounts.models import Workspace
from workflows.webhooks.queue import DeliveryBase, DeliveryStatus

__all__ = ["DeliveryStatus"]  # the queue's, named here for the alerts' callers


class RuleKind(models.TextChoices):
    ERROR_RATE = "error_rate", "Error rate"
    LATENCY_P95 = "latency_p95", "Slow responses (p95 latency)"
    SPEND_RATE = "spend_rate", "Spend rate"
    SPEND_SPIKE = "spend_spike", "Spend spike"
    BUDGET = "budget", "Budget threshold"
    WORKER_MEMORY = "worker_memory", "Worker memory"
    OLLAMA_DOWN = "ollama_down", "Ollama node down"
    RUN_WAITING = "run_waiting", "Runs waiting for a person"


class AlertRule(models.Model):
    """A condition on a measure over a window, checked every `ALERTS_EVALUATE_SECONDS`."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="alert_rules")
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=16, choices=RuleKind.choices)
    # Its unit depends on the kind (see `monitoring.alerts.kinds`): percent, seconds, dollars,
    # a ratio, megabytes or minutes.
    threshold = models.DecimalField(max_digits=16, decimal_places=4)
    window_minutes = models.PositiveIntegerField(default=15)
    # Error rate and latency: fewer calls than this in the window say nothing either way.
    min_calls = models.PositiveIntegerField(default=5)
    enabled = models.BooleanField(default=True)
    is_default = models.BooleanField(default=False)
    # The claim of the next evaluation: an evaluator moves it forward with a conditional UPDATE,
    # and only the one whose UPDATE changed the row evaluates (see `evaluation.rule_claim`).
    next_evaluation_at = models.DateTimeField(null=True, blank=True)
    last_evaluated_at = models.DateTimeField(null=True, blank=True)
    last_value = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    # Why the last evaluation gave no figure ("no calls in the window"), shown beside the rule.
    last_note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        indexes = [
            models.Index(fields=["enabled", "next_evaluation_at"], name="alerts_rule_due"),
        ]

    def __str__(self) -> str:
        return self.name


class IncidentState(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"


class AlertIncident(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="incidents")
    # What fired within the rule: "" for a workspace-wide measure, "budget:<id>" for a budget.
    subject = models.CharField(max_length=120, blank=True)
    state = models.CharField(
        max_length=12, choices=IncidentState.choices, default=IncidentState.OPEN
    )
    summary = models.CharField(max_length=500)
    value = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    threshold = models.DecimalField(max_digits=16, decimal_places=4)
    opened_at = models.DateTimeField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    # None with a resolved_at: it recovered on its own.
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_summary = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-opened_at", "-id"]
        indexes = [
            models.Index(fields=["workspace", "state", "-id"], name="alerts_incident_ws_state"),
            models.Index(fields=["workspace", "-id"], name="alerts_incident_ws"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "subject"],
                condition=~Q(state="resolved"),
                name="alerts_incident_one_unresolved",
            )
        ]

    def __str__(self) -> str:
        return f"{self.rule} ({self.state})"


class ChannelKind(models.TextChoices):
    EMAIL = "email", "E-mail"
    WEBHOOK = "webhook", "Webhook"


class AlertChannel(models.Model):
    """Where a workspace's alerts go besides the in-app notifications (always on)."""

    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="alert_channels"
    )
    kind = models.CharField(max_length=8, choices=ChannelKind.choices)
    name = models.CharField(max_length=120)
    enabled = models.BooleanField(default=True)
    email_to = models.CharField(max_length=1000, blank=True)
    url = models.URLField(max_length=500, blank=True)
    # `whsec_…`, encrypted like provider credentials; shown once, when made.
    secret_encrypted = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class AlertDelivery(DeliveryBase):
    """One message to one channel, sent by the shared queue (`workflows.webhooks.queue`)."""

    channel = models.ForeignKey(AlertChannel, on_delete=models.CASCADE, related_name="deliveries")
    incident = models.ForeignKey(
        AlertIncident, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    event = models.CharField(max_length=32)  # alert.fired, alert.resolved, alert.test
    message_id = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="alerts_delivery_due"),
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.channel} ({self.status})"

    @staticmethod
    def new_message_id() -> str:
        return f"msg_{uuid.uuid4().hex}"


class Notification(models.Model):
    """An in-app notification of the workspace, shown live and counted as unread in the header."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    incident = models.ForeignKey(
        AlertIncident, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    event = models.CharField(max_length=32)
    title = models.CharField(max_length=200)
    body = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["workspace", "-id"], name="alerts_notification_ws")]

    def __str__(self) -> str:
        return self.title


class NotificationSeen(models.Model):
    """How far a person has read the workspace's notifications (by id)."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    last_seen_id = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "user"], name="alerts_seen_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} read {self.workspace_id} up to {self.last_seen_id}"


class WorkspaceAlerts(models.Model):
    """One per workspace once its default rules were made, so a deleted default stays deleted."""

    workspace = models.OneToOneField(Workspace, on_delete=models.CASCADE, related_name="+")
    defaults_created_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"Alerts of {self.workspace_id}"
