"""Evaluating rules: exactly once per interval, whatever the number of evaluators.

Idempotency cases (each with its test in tests/monitoring/alerts/test_evaluation.py):
- Two evaluators (beats, workers, web processes) look at the same due rule: each moves the rule's
  `next_evaluation_at` forward with one conditional UPDATE; the one whose UPDATE changed the row
  evaluates, the other skips it (`rule_claim`).
- Two evaluations both find the condition true: the partial unique index on unresolved incidents
  of (rule, subject) lets one insert succeed; the other finds the incident open (or gets the
  IntegrityError) and notifies nobody (`incident_open`).
- The condition clears while two evaluations or a person resolve: the UPDATE from unresolved to
  resolved changes the row once; only that caller notifies (`incident_recover`,
  `incident_resolve`).
- A measure that cannot be computed (too few calls) changes nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from a2a_site.accounts.models import Workspace
from monitoring.alerts.kinds import DEFAULT_RULES, KINDS
from monitoring.alerts.measures import MEASURES
from monitoring.alerts.models import (
    AlertIncident,
    AlertRule,
    IncidentState,
    RuleKind,
    WorkspaceAlerts,
)
from monitoring.alerts.notify import incident_notify

logger = logging.getLogger(__name__)

# Rules looked at per round; the rest are due the next round (a round takes a few seconds).
RULES_PER_ROUND = 500
WORKSPACES_PER_ROUND = 200
PERIODIC_KINDS = tuple(kind for kind, info in KINDS.items() if info.periodic)


def alert_defaults_ensure(*, workspace: Workspace, now: datetime | None = None) -> bool:
    """Gives a workspace its default rules once (True when they were made now)."""
    now = now or timezone.now()
    with transaction.atomic():
        _, created = WorkspaceAlerts.objects.get_or_create(
            workspace=workspace, defaults={"defaults_created_at": now}
        )
        if created:
            AlertRule.objects.bulk_create(
                AlertRule(
                    workspace=workspace,
                    name=default.name,
                    kind=default.kind,
                    threshold=default.threshold,
                    window_minutes=default.window_minutes,
                    is_default=True,
                )
                for default in DEFAULT_RULES
            )
    return created


def alert_defaults_ensure_all(*, now: datetime) -> int:
    missing = Workspace.objects.filter(
        ~Q(pk__in=WorkspaceAlerts.objects.values("workspace_id"))
    ).order_by()[:WORKSPACES_PER_ROUND]
    made = 0
    for workspace in missing:
        try:
            made += alert_defaults_ensure(workspace=workspace, now=now)
        except IntegrityError:  # another evaluator made them at the same moment
            continue
    return made


def rule_claim(*, rule_id: int, now: datetime) -> bool:
    """Moves the rule's next evaluation forward if it is due; True for the one caller that did."""
    interval = timedelta(seconds=settings.ALERTS_EVALUATE_SECONDS)
    claimed = (
        AlertRule.objects.filter(pk=rule_id, enabled=True)
        .filter(Q(next_evaluation_at__isnull=True) | Q(next_evaluation_at__lte=now))
        .update(next_evaluation_at=now + interval)
    )
    return claimed == 1


def alerts_evaluate(*, now: datetime | None = None) -> int:
    """One round: default rules for new workspaces, then every due rule. Returns how many rules
    this caller evaluated."""
    now = now or timezone.now()
    alert_defaults_ensure_all(now=now)
    due = list(
        AlertRule.objects.filter(enabled=True, kind__in=PERIODIC_KINDS)
        .filter(Q(next_evaluation_at__isnull=True) | Q(next_evaluation_at__lte=now))
        .order_by("next_evaluation_at")
        .values_list("pk", flat=True)[:RULES_PER_ROUND]
    )
    try:
        budget_incidents_recover(now=now)
    except Exception:  # the rules below still get their turn
        logger.exception("Budget alerts could not be checked.")
    evaluated = 0
    for rule_id in due:
        if not rule_claim(rule_id=rule_id, now=now):
            continue
        try:
            rule_evaluate(
                rule=AlertRule.objects.select_related("workspace").get(pk=rule_id), now=now
            )
        except Exception:  # one broken rule must not stop the others; it is tried next interval
            logger.exception("Alert rule %s could not be evaluated.", rule_id)
            continue
        evaluated += 1
    return evaluated


def rule_evaluate(*, rule: AlertRule, now: datetime) -> AlertIncident | None:
    """Measures the rule and moves its incident along: opened, or resolved as recovered.
    Returns the incident opened now, if any."""
    measurement = MEASURES[RuleKind(rule.kind)](rule, now)
    AlertRule.objects.filter(pk=rule.pk).update(
        last_evaluated_at=now, last_value=measurement.value, last_note=measurement.note
    )
    if measurement.value is None:
        return None
    if measurement.firing:
        return incident_open(
            rule=rule, subject="", summary=measurement.summary, value=measurement.value, now=now
        )
    incident_recover(rule=rule, subject="", summary=measurement.summary, now=now)
    return None


def _unresolved(rule: AlertRule, subject: str) -> Any:
    return AlertIncident.objects.filter(rule=rule, subject=subject).exclude(
        state=IncidentState.RESOLVED
    )


def incident_open(
    *, rule: AlertRule, subject: str, summary: str, value: Decimal | None, now: datetime
) -> AlertIncident | None:
    """Opens the rule's incident for `subject` unless one is unresolved; notifies once."""
    if _unresolved(rule, subject).exists():
        return None
    try:
        with transaction.atomic():
            incident = AlertIncident.objects.create(
                workspace_id=rule.workspace_id,
                rule=rule,
                subject=subject,
                summary=summary[:500],
                value=value,
                threshold=rule.threshold,
                opened_at=now,
            )
            incident_notify(incident=incident, event="alert.fired", now=now)
    except IntegrityError:  # another evaluator opened it a moment ago: it notified
        return None
    return incident


def incident_recover(*, rule: AlertRule, subject: str, summary: str, now: datetime) -> bool:
    """Resolves the rule's unresolved incident for `subject` as recovered; notifies once."""
    incident = _unresolved(rule, subject).first()
    if incident is None:
        return False
    with transaction.atomic():
        changed = (
            AlertIncident.objects.filter(pk=incident.pk)
            .exclude(state=IncidentState.RESOLVED)
            .update(state=IncidentState.RESOLVED, resolved_at=now, resolved_summary=summary[:500])
        )
        if changed:
            incident.refresh_from_db()
            incident_notify(incident=incident, event="alert.resolved", now=now)
    return bool(changed)


def incident_acknowledge(
    *, incident: AlertIncident, user: Any, now: datetime | None = None
) -> bool:
    """Someone is on it: an open incident becomes acknowledged (no notification)."""
    changed = AlertIncident.objects.filter(pk=incident.pk, state=IncidentState.OPEN).update(
        state=IncidentState.ACKNOWLEDGED,
        acknowledged_at=now or timezone.now(),
        acknowledged_by=user,
    )
    return changed == 1


def incident_resolve(*, incident: AlertIncident, user: Any, now: datetime | None = None) -> bool:
    """A person resolves it; if the condition still holds, the next evaluation opens a new one."""
    now = now or timezone.now()
    with transaction.atomic():
        changed = (
            AlertIncident.objects.filter(pk=incident.pk)
            .exclude(state=IncidentState.RESOLVED)
            .update(
                state=IncidentState.RESOLVED,
                resolved_at=now,
                resolved_by=user,
                resolved_summary=f"Resolved by {user.get_username()}.",
            )
        )
        if changed:
            incident.refresh_from_db()
            incident_notify(incident=incident, event="alert.resolved", now=now)
    return changed == 1


def _budget_subject(budget_id: Any, period_start: datetime | None) -> str:
    start = period_start.isoformat() if period_start is not None else ""
    return f"budget:{budget_id}:{start}"


def budget_threshold_crossed_receive(
    sender: Any,
    *,
    budget: Any,
    threshold_percent: Any,
    spend: Any,
    limit: Any,
    kind: str = "hard",
    period_start: datetime | None = None,
    **kwargs: Any,
) -> None:
    """The budgets' `budget_threshold_crossed` signal (agents.budgets.signals): each enabled
    budget rule of the budget's workspace at or below the crossed percentage opens one incident
    for the budget's period; it resolves when the period ends (`budget_incidents_recover`)."""
    percent = Decimal(str(threshold_percent))
    now = timezone.now()
    rules = AlertRule.objects.filter(
        workspace_id=budget.workspace_id,
        kind=RuleKind.BUDGET,
        enabled=True,
        threshold__lte=percent,
    )
    name = getattr(budget, "name", "") or f"Budget {budget.pk}"
    spent = Decimal(str(spend)).quantize(Decimal("0.0001")).normalize()
    limit_text = f"${Decimal(str(limit)).normalize():f}"
    which = "soft limit" if kind == "soft" else "limit"
    for rule in rules:
        incident_open(
            rule=rule,
            subject=_budget_subject(budget.pk, period_start),
            summary=(
                f"{name} reached {percent.normalize():f} % of its {which} (${spent:f} of "
                f"{limit_text}); threshold {rule.threshold.normalize():f} %."
            ),
            value=percent,
            now=now,
        )


def budget_incidents_recover(*, now: datetime) -> int:
    """Resolves budget incidents whose period is over (spend starts again from zero) or whose
    budget is gone."""
    from agents.budgets.models import Budget
    from agents.budgets.periods import period_bounds

    open_incidents = list(
        AlertIncident.objects.filter(rule__kind=RuleKind.BUDGET)
        .exclude(state=IncidentState.RESOLVED)
        .select_related("rule")
        .order_by("id")[:RULES_PER_ROUND]
    )
    resolved = 0
    for incident in open_incidents:
        _, budget_id, started = (incident.subject.split(":", 2) + ["", "", ""])[:3]
        try:
            budget = Budget.objects.filter(pk=budget_id).first() if budget_id else None
        except (ValueError, ValidationError):  # not a budget's id: nothing will ever resolve it
            budget = None
        if budget is None:
            summary = "The budget was deleted."
        else:
            current, _ = period_bounds(budget.period, budget.time_zone, now)
            if not started or current.isoformat() == started:
                continue
            summary = f"{budget.name}: a new period began; its spend starts again."
        resolved += incident_recover(
            rule=incident.rule, subject=incident.subject, summary=summary, now=now
        )
    return resolved
