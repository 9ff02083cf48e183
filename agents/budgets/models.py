"""A budget (scope, period, limits) and its spend per period."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.conf import settings
from django.db import models

from a2a_site.accounts.models import Workspace


class Budget(models.Model):
    class Scope(models.TextChoices):
        WORKSPACE = "workspace", "The whole workspace"
        WORKFLOW = "workflow", "One workflow"
        AGENT = "agent", "One agent"
        USER = "user", "One person"
        PROVIDER = "provider", "One provider"

    class Period(models.TextChoices):
        DAY = "day", "Per day"
        WEEK = "week", "Per week (from Monday)"
        MONTH = "month", "Per month"
        NONE = "none", "No reset (lifetime)"

    class OnExceed(models.TextChoices):
        STOP = "stop", "Stop the run"
        PAUSE = "pause", "Pause the run for a person"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="budgets")
    name = models.CharField(max_length=80)
    scope = models.CharField(max_length=12, choices=Scope.choices, default=Scope.WORKSPACE)
    # The id of the workflow, agent, person or provider the budget is about ("" for the
    # workspace). No foreign key: workflows live in an app that depends on this one.
    target = models.CharField(max_length=64, blank=True)
    period = models.CharField(max_length=8, choices=Period.choices, default=Period.MONTH)
    # Periods start at midnight in this zone (the workspace has none of its own).
    time_zone = models.CharField(max_length=64, default="UTC")
    soft_limit = models.DecimalField(max_digits=14, decimal_places=6, null=True, blank=True)
    hard_limit = models.DecimalField(max_digits=14, decimal_places=6, null=True, blank=True)
    on_exceed = models.CharField(max_length=8, choices=OnExceed.choices, default=OnExceed.STOP)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "created_at"]
        indexes = [models.Index(fields=["workspace", "scope", "target"])]

    def __str__(self) -> str:
        return self.name


class BudgetPeriod(models.Model):
    """What a budget's scope spent in one period: the one row every worker counts against."""

    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="periods")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField(null=True, blank=True)  # None: the period never ends
    spent = models.DecimalField(max_digits=14, decimal_places=8, default=Decimal(0))
    # Worst-case costs of the calls admitted and not yet finished.
    reserved = models.DecimalField(max_digits=14, decimal_places=8, default=Decimal(0))
    calls = models.PositiveIntegerField(default=0)
    refused_calls = models.PositiveIntegerField(default=0)
    # Calls admitted under a soft limit only, whose price is not known: not in `spent`.
    unpriced_calls = models.PositiveIntegerField(default=0)
    # Thresholds already announced this period (bits of `THRESHOLD_BITS`).
    thresholds_sent = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-starts_at"]
        constraints = [
            models.UniqueConstraint(fields=["budget", "starts_at"], name="budget_period_once")
        ]

    def __str__(self) -> str:
        return f"{self.budget_id} from {self.starts_at:%Y-%m-%d}"


class BudgetCharge(models.Model):
    """One call's reservation in one budget period, settled with its real cost after the call."""

    call_id = models.UUIDField()  # the ledger row's
    # The period by its budget and start (as the reservation's UPDATE finds it: no extra read).
    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="charges")
    period_start = models.DateTimeField()
    reserved = models.DecimalField(max_digits=14, decimal_places=8)
    cost = models.DecimalField(max_digits=14, decimal_places=8, null=True, blank=True)
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["call_id", "budget"], name="budget_charge_once")
        ]
        indexes = [models.Index(fields=["call_id"]), models.Index(fields=["settled_at"])]

    def __str__(self) -> str:
        return f"{self.call_id} in {self.budget_id}"
