"""What the budget pages show: spend per period against the limits, a forecast, the history."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Q
from django.utils import timezone

from a2a_site.accounts.models import User
from agents.budgets.models import Budget, BudgetPeriod
from agents.budgets.periods import period_bounds, period_label
from agents.models import Agent, Provider
from workflows.models import Workflow

# Before this share of a period has passed, a straight-line forecast says more about the
# first calls than about the period.
FORECAST_MIN_ELAPSED = 0.02
HISTORY_PERIODS = 24


@dataclass(frozen=True)
class PeriodFigures:
    label: str
    starts_at: datetime
    ends_at: datetime | None
    spent: Decimal
    reserved: Decimal
    calls: int
    refused_calls: int
    unpriced_calls: int
    hard_limit: Decimal | None
    soft_limit: Decimal | None

    @property
    def limit(self) -> Decimal | None:
        return self.hard_limit if self.hard_limit is not None else self.soft_limit

    @property
    def percent(self) -> int | None:
        limit = self.limit
        if limit is None or limit <= 0:
            return None
        return int(self.spent * 100 / limit)

    @property
    def state(self) -> str:
        if self.hard_limit is not None and self.spent >= self.hard_limit:
            return "hard"
        if self.soft_limit is not None and self.spent >= self.soft_limit:
            return "soft"
        return "ok"

    @property
    def meter_low(self) -> Decimal | None:
        # <meter> colours: green under half the limit, amber to 80 %, red past it.
        limit = self.limit
        return None if limit is None else limit / 2

    @property
    def meter_high(self) -> Decimal | None:
        limit = self.limit
        return None if limit is None else limit * 8 / 10

    @property
    def meter_value(self) -> Decimal:
        limit = self.limit
        return min(self.spent, limit) if limit is not None else self.spent


@dataclass(frozen=True)
class BudgetRow:
    budget: Budget
    target_label: str
    current: PeriodFigures
    forecast: Decimal | None
    forecast_note: str

    @property
    def forecast_over(self) -> bool:
        hard = self.budget.hard_limit
        return self.forecast is not None and hard is not None and self.forecast > hard


def _figures(budget: Budget, row: BudgetPeriod | None, start: datetime, end: datetime | None):
    return PeriodFigures(
        label=period_label(budget.period, start, budget.time_zone),
        starts_at=start,
        ends_at=end,
        spent=row.spent if row else Decimal(0),
        reserved=row.reserved if row else Decimal(0),
        calls=row.calls if row else 0,
        refused_calls=row.refused_calls if row else 0,
        unpriced_calls=row.unpriced_calls if row else 0,
        hard_limit=budget.hard_limit,
        soft_limit=budget.soft_limit,
    )


def forecast(figures: PeriodFigures, now: datetime) -> tuple[Decimal | None, str]:
    """Spend at the period's end if it goes on at the pace so far, or why there is none."""
    if figures.ends_at is None:
        return None, "No period end: the budget never resets."
    total = (figures.ends_at - figures.starts_at).total_seconds()
    elapsed = max((now - figures.starts_at).total_seconds(), 0.0)
    if total <= 0 or elapsed / total < FORECAST_MIN_ELAPSED:
        return None, "Too early in the period to forecast."
    pace = figures.spent * Decimal(total) / Decimal(elapsed)
    return pace.quantize(Decimal("0.000001")), "At the pace so far."


def target_labels(budgets: Iterable[Budget]) -> dict[tuple[str, str], str]:
    """Names of the budgets' targets: a few queries for any number of budgets."""
    wanted: dict[str, set[str]] = {}
    for budget in budgets:
        if budget.target:
            wanted.setdefault(budget.scope, set()).add(budget.target)
    labels: dict[tuple[str, str], str] = {}
    sources: dict[str, Any] = {
        Budget.Scope.WORKFLOW: (Workflow.objects, "name"),
        Budget.Scope.AGENT: (Agent.objects, "name"),
        Budget.Scope.PROVIDER: (Provider.objects, "name"),
        Budget.Scope.USER: (User.objects, "username"),
    }
    for scope, ids in wanted.items():
        manager, field = sources[scope]
        valid = [value for value in ids if _looks_like_pk(scope, value)]
        for pk, name in manager.filter(pk__in=valid).values_list("pk", field):
            labels[(scope, str(pk))] = name
    return labels


def _looks_like_pk(scope: str, value: str) -> bool:
    if scope == Budget.Scope.USER:
        return value.isdigit()
    import uuid

    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def target_label(budget: Budget, labels: dict[tuple[str, str], str]) -> str:
    if budget.scope == Budget.Scope.WORKSPACE:
        return "The whole workspace"
    name = labels.get((budget.scope, budget.target))
    noun = {"workflow": "Workflow", "agent": "Agent", "provider": "Provider", "user": "Person"}[
        budget.scope
    ]
    return f"{noun} “{name}”" if name else f"{noun} (deleted)"


def budget_rows(budgets: list[Budget], now: datetime | None = None) -> list[BudgetRow]:
    """Each budget with its current period's figures: one query for the periods."""
    now = now or timezone.now()
    bounds = {budget.pk: period_bounds(budget.period, budget.time_zone, now) for budget in budgets}
    match = Q(pk__in=[])
    for budget_id, (start, _) in bounds.items():
        match |= Q(budget_id=budget_id, starts_at=start)
    periods = {row.budget_id: row for row in BudgetPeriod.objects.filter(match)}
    labels = target_labels(budgets)
    rows = []
    for budget in budgets:
        start, end = bounds[budget.pk]
        figures = _figures(budget, periods.get(budget.pk), start, end)
        projected, note = forecast(figures, now)
        rows.append(BudgetRow(budget, target_label(budget, labels), figures, projected, note))
    return rows


def budget_history(budget: Budget, now: datetime | None = None) -> list[PeriodFigures]:
    """The budget's past periods, newest first (limits as they are now)."""
    now = now or timezone.now()
    start, _ = period_bounds(budget.period, budget.time_zone, now)
    rows = BudgetPeriod.objects.filter(budget=budget, starts_at__lt=start).order_by("-starts_at")
    return [_figures(budget, row, row.starts_at, row.ends_at) for row in rows[:HISTORY_PERIODS]]


def resets_in(figures: PeriodFigures, now: datetime | None = None) -> timedelta | None:
    if figures.ends_at is None:
        return None
    return figures.ends_at - (now or timezone.now())
