"""Budgets counted where every call is reserved: admit, settle, refuse, reset, announce."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from agents.budgets.enforcement import (
    SpendScope,
    budget_charges_settle_orphans,
    budgets_reserve,
    budgets_settle,
)
from agents.budgets.models import Budget, BudgetCharge, BudgetPeriod
from agents.budgets.periods import period_bounds
from agents.budgets.signals import budget_threshold_crossed
from agents.llm.errors import BudgetExceeded
from tests.conftest import Personas

NOON = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def _budget(personas: Personas, **fields: Any) -> Budget:
    defaults: dict[str, Any] = {"name": "Lab spend", "period": "day", "hard_limit": Decimal("1")}
    return Budget.objects.create(workspace=personas.workspace, **{**defaults, **fields})


def _call(personas: Personas, worst: Decimal | None, *, now: datetime = NOON, **scope: Any) -> str:
    call_id = str(uuid.uuid4())
    budgets_reserve(
        call_id=call_id,
        scope=SpendScope(workspace_id=str(personas.workspace.pk), **scope),
        worst_case=worst,
        model="gpt-4o-mini",
        now=now,
    )
    return call_id


def _period(budget: Budget) -> BudgetPeriod:
    return BudgetPeriod.objects.get(budget=budget)


@pytest.mark.django_db
def test_a_call_reserves_its_worst_case_and_settles_at_its_real_cost(personas: Personas) -> None:
    budget = _budget(personas)

    call = _call(personas, Decimal("0.30"))
    assert (_period(budget).reserved, _period(budget).spent) == (Decimal("0.3"), Decimal(0))

    assert budgets_settle(call, Decimal("0.05"), "price_list") == 1
    assert budgets_settle(call, Decimal("0.05"), "price_list") == 0  # once only
    period = _period(budget)
    assert (period.reserved, period.spent, period.calls) == (Decimal(0), Decimal("0.05"), 1)
    assert BudgetCharge.objects.get(call_id=call).settled_at is not None


@pytest.mark.django_db
def test_a_spent_hard_limit_refuses_the_next_call_and_reserves_nothing(
    personas: Personas,
) -> None:
    budget = _budget(personas, on_exceed="pause")
    budgets_settle(_call(personas, Decimal("0.5")), Decimal("1.2"), "price_list")

    with pytest.raises(BudgetExceeded) as refused:
        _call(personas, Decimal("0.01"))

    assert refused.value.final and refused.value.pause
    assert "Lab spend" in str(refused.value) and "$1.00" in str(refused.value)
    assert refused.value.key.startswith(f"spend-limit:{budget.pk}:")
    assert _period(budget).reserved == 0
    assert BudgetCharge.objects.count() == 1


@pytest.mark.django_db
def test_reservations_in_flight_refuse_for_now_but_not_for_good(personas: Personas) -> None:
    _budget(personas)
    first = _call(personas, Decimal("1.5"))  # headroom left: admitted, fills the budget

    with pytest.raises(BudgetExceeded) as refused:
        _call(personas, Decimal("0.01"))
    assert not refused.value.final

    budgets_settle(first, Decimal("0.10"), "price_list")
    _call(personas, Decimal("0.01"))  # the real cost left room


@pytest.mark.django_db
def test_an_unknown_price_is_refused_by_a_hard_limit_and_counted_under_a_soft_one(
    personas: Personas,
) -> None:
    hard = _budget(personas)
    with pytest.raises(BudgetExceeded, match="price of gpt-4o-mini is not known"):
        _call(personas, None)
    hard.delete()

    soft = _budget(personas, hard_limit=None, soft_limit=Decimal("1"))
    call = _call(personas, None)
    budgets_settle(call, Decimal(0), "unknown")
    assert (_period(soft).unpriced_calls, _period(soft).spent) == (1, Decimal(0))


@pytest.mark.django_db
def test_only_budgets_over_the_call_count_it(personas: Personas) -> None:
    agent_id, provider_id = str(uuid.uuid4()), str(uuid.uuid4())
    mine = _budget(personas, scope="agent", target=agent_id, name="Mine")
    theirs = _budget(personas, scope="provider", target=str(uuid.uuid4()), name="Theirs")
    whole = _budget(personas, name="Whole")

    _call(personas, Decimal("0.1"), agent_id=agent_id, provider_id=provider_id)

    assert _period(mine).calls == _period(whole).calls == 1
    assert not BudgetPeriod.objects.filter(budget=theirs).exists()


@pytest.mark.django_db
def test_a_new_period_starts_from_zero(personas: Personas) -> None:
    budget = _budget(personas)
    budgets_settle(_call(personas, Decimal("0.1")), Decimal("1.5"), "price_list")
    with pytest.raises(BudgetExceeded):
        _call(personas, Decimal("0.1"))

    _call(personas, Decimal("0.1"), now=NOON + timedelta(days=1))

    spent = list(budget.periods.order_by("starts_at").values_list("spent", "calls"))
    assert spent == [(Decimal("1.5"), 1), (Decimal(0), 1)]


def test_periods_start_at_midnight_in_the_budget_time_zone() -> None:
    assert period_bounds("day", "UTC", NOON) == (
        datetime(2026, 12, 6, tzinfo=UTC),
        datetime(2026, 12, 7, tzinfo=UTC),
    )
    # 12:00 UTC is 01:00 on the 7th in Auckland (UTC+13 in December).
    start, _ = period_bounds("day", "Pacific/Auckland", NOON)
    assert start == datetime(2026, 12, 6, 11, 0, tzinfo=UTC)
    assert period_bounds("week", "UTC", NOON)[0] == datetime(2026, 11, 30, tzinfo=UTC)
    assert period_bounds("month", "UTC", NOON) == (
        datetime(2026, 12, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )
    assert period_bounds("none", "UTC", NOON)[1] is None


@pytest.mark.django_db(transaction=True)
def test_each_threshold_is_announced_once_per_period(personas: Personas) -> None:
    budget = _budget(personas, soft_limit=Decimal("0.7"))
    heard: list[tuple[int, str, Decimal]] = []

    def receiver(sender: Any, budget: Budget, threshold_percent: int, **kw: Any) -> None:
        heard.append((threshold_percent, kw["kind"], kw["limit"]))

    budget_threshold_crossed.connect(receiver)
    try:
        for cost in ("0.55", "0.20", "0.10", "0.30"):
            budgets_settle(_call(personas, Decimal("0.01")), Decimal(cost), "price_list")
    finally:
        budget_threshold_crossed.disconnect(receiver)

    # Spend goes 0.55, 0.75, 0.85, 1.15: each threshold once, in the order it was reached.
    assert heard == [
        (50, "hard", Decimal("1")),
        (100, "soft", Decimal("0.7")),
        (80, "hard", Decimal("1")),
        (100, "hard", Decimal("1")),
    ]
    assert _period(budget).thresholds_sent == 15


@pytest.mark.django_db
def test_a_dead_workers_call_keeps_its_worst_case(personas: Personas) -> None:
    from agents.models import LedgerEntry

    budget = _budget(personas)
    call = _call(personas, Decimal("0.40"))
    LedgerEntry.objects.create(
        call_id=call,
        workspace=personas.workspace,
        deployment_id="x:gpt-4o-mini",
        provider_kind="openai",
        model="gpt-4o-mini",
        status=LedgerEntry.Status.UNKNOWN,
        cost=Decimal("0.01"),
        started_at=NOON,
    )

    assert budget_charges_settle_orphans() == 1
    assert (_period(budget).spent, _period(budget).reserved) == (Decimal("0.4"), Decimal(0))
