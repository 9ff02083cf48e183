"""Writing budgets: validated, whole or not at all."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from a2a_site.accounts.models import User, Workspace
from agents.budgets.models import Budget
from agents.budgets.periods import zone

MAX_LIMIT = Decimal("1000000000")


@dataclass(frozen=True)
class BudgetInput:
    name: str
    scope: str
    target: str
    period: str
    time_zone: str
    soft_limit: Decimal | None
    hard_limit: Decimal | None
    on_exceed: str


def _validate(data: BudgetInput) -> None:
    errors: dict[str, list[str]] = {}

    def add(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    if not data.name.strip():
        add("name", "Give the budget a name.")
    if data.scope not in Budget.Scope.values:
        add("scope", "Choose what the budget covers.")
    elif data.scope != Budget.Scope.WORKSPACE and not data.target:
        add("target", f"Choose the {data.scope} the budget is about.")
    if data.period not in Budget.Period.values:
        add("period", "Choose a period.")
    if data.on_exceed not in Budget.OnExceed.values:
        add("on_exceed", "Choose what happens at the hard limit.")
    if zone(data.time_zone).key != (data.time_zone or "UTC"):
        add("time_zone", f"“{data.time_zone}” is not a time zone name (e.g. Europe/Paris).")
    for field, value in (("soft_limit", data.soft_limit), ("hard_limit", data.hard_limit)):
        if value is not None and not (Decimal(0) <= value <= MAX_LIMIT):
            add(field, "A limit is an amount in USD between 0 and 1,000,000,000.")
    if data.soft_limit is None and data.hard_limit is None:
        add("hard_limit", "Set a soft limit, a hard limit, or both.")
    if (
        data.soft_limit is not None
        and data.hard_limit is not None
        and data.soft_limit > data.hard_limit
    ):
        add("soft_limit", "The soft limit warns before the hard one: make it the lower of the two.")
    if errors:
        raise ValidationError(errors)


def _fields(data: BudgetInput) -> dict[str, Any]:
    return {
        "name": data.name.strip(),
        "scope": data.scope,
        "target": "" if data.scope == Budget.Scope.WORKSPACE else data.target,
        "period": data.period,
        "time_zone": data.time_zone or "UTC",
        "soft_limit": data.soft_limit,
        "hard_limit": data.hard_limit,
        "on_exceed": data.on_exceed,
    }


def budget_create(*, workspace: Workspace, user: User | None, data: BudgetInput) -> Budget:
    _validate(data)
    return Budget.objects.create(workspace=workspace, created_by=user, **_fields(data))


def budget_update(*, budget: Budget, data: BudgetInput) -> Budget:
    """Changes apply to the current period at once: a raised hard limit lets calls through at
    the next reservation, and paused runs resume when a person approves."""
    _validate(data)
    with transaction.atomic():
        for name, value in _fields(data).items():
            setattr(budget, name, value)
        budget.save()
    return budget


def budget_delete(*, budget: Budget) -> None:
    budget.delete()
