"""Counting spend against budgets: reserve before a call, settle after, refuse past a hard limit.

Rules where a choice had to be made:

* A call is admitted by a budget with a hard limit while `spent + reserved < hard_limit` in the
  budget's current period, and reserves its worst-case cost there in the same UPDATE (so two
  workers cannot both take the last headroom). The last admitted call may end above the limit:
  overspend is at most the calls in flight when the limit was crossed.
* When only reservations fill the budget (`spent` is still under the limit), the refusal is not
  final: the ledger waits a little for the calls in flight to settle and asks again.
* A call whose price is not known cannot be bounded, so a budget with a hard limit refuses it,
  saying so; a budget with only a soft limit admits it and counts it as unpriced.
* A free call (a local model) reserves nothing but is still refused once a hard limit is
  reached: a spent budget stops its scope.
* Thresholds (50 %, 80 %, 100 % of the hard limit, and the soft limit; of the soft limit when
  there is no hard one) are announced once per period each, by a compare-and-swap on the
  period row, with the `budget_threshold_crossed` signal after the commit.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from django.db import connection, transaction
from django.db.models import F, Q, Value
from django.utils import timezone

from a2a_site.db import Columns
from agents.budgets.models import Budget, BudgetCharge, BudgetPeriod
from agents.budgets.periods import period_bounds, period_label
from agents.budgets.signals import budget_threshold_crossed
from agents.llm.errors import BudgetExceeded

logger = logging.getLogger(__name__)

PERCENT_BITS: Final = {50: 1, 80: 2, 100: 4}
SOFT_BIT: Final = 8


@dataclass(frozen=True)
class SpendScope:
    """Who a call (or a run) spends for; ids as strings, None where it does not apply."""

    workspace_id: str
    workflow_id: str | None = None
    user_id: str | None = None
    agent_id: str | None = None
    provider_id: str | None = None


def money(amount: Decimal | None) -> str:
    """$1.50, $0.0042: cents for whole amounts, up to six decimals for small ones."""
    if amount is None:
        return "—"
    amount = Decimal(amount)
    if amount == 0:
        return "$0"
    text = f"{amount:,.2f}" if abs(amount) >= 1 else f"{amount:,.6f}".rstrip("0")
    if text.endswith("."):
        text += "00"
    return f"${text}"


_BUDGET = Columns(Budget)


def workspace_has_budgets(workspace_id: Any) -> bool:
    """Whether the workspace has any budget: asked before every call, every run's first step
    and every launch, so hand-written (most workspaces have none, and compiling the ORM's query
    would cost more than the database takes to answer it)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {_BUDGET.table} WHERE {_BUDGET['workspace']} = %s LIMIT 1",
            [_BUDGET.value("workspace", workspace_id)],
        )
        return cursor.fetchone() is not None


def budgets_for(scope: SpendScope, *, agent_ids=(), provider_ids=()) -> list[Budget]:
    """Every budget of the workspace whose scope covers `scope` (and the extra agents and
    providers), in id order: the order reservations lock their rows in."""
    match = Q(scope=Budget.Scope.WORKSPACE)
    pairs = [
        (Budget.Scope.WORKFLOW, [scope.workflow_id]),
        (Budget.Scope.USER, [scope.user_id]),
        (Budget.Scope.AGENT, [scope.agent_id, *agent_ids]),
        (Budget.Scope.PROVIDER, [scope.provider_id, *provider_ids]),
    ]
    for kind, values in pairs:
        targets = {str(value) for value in values if value}
        if targets:
            match |= Q(scope=kind, target__in=targets)
    return list(Budget.objects.filter(workspace_id=scope.workspace_id).filter(match).order_by("pk"))


def period_key(budget: Budget, start: datetime) -> str:
    """Names a budget's period in a run's answers: a person's answer holds for it alone."""
    return f"spend-limit:{budget.pk}:{start:%Y%m%d}"


def _exhausted_reason(budget: Budget, start: datetime, spent: Decimal) -> str:
    label = period_label(budget.period, start, budget.time_zone)
    return (
        f"Budget “{budget.name}” reached its hard limit of {money(budget.hard_limit)} "
        f"({label}): {money(spent)} spent."
    )


def _refusal(budget: Budget, start: datetime, reason: str, *, final: bool) -> BudgetExceeded:
    return BudgetExceeded(
        reason,
        key=period_key(budget, start),
        pause=budget.on_exceed == Budget.OnExceed.PAUSE,
        final=final,
    )


def _admit(budget: Budget, start: datetime, end: datetime | None, worst_case: Decimal) -> bool:
    """One conditional UPDATE: reserve `worst_case` if the budget has headroom left."""
    for _ in range(2):
        rows = BudgetPeriod.objects.filter(budget_id=budget.pk, starts_at=start)
        if budget.hard_limit is not None:
            rows = rows.filter(spent__lt=Value(budget.hard_limit) - F("reserved"))
        if rows.update(reserved=F("reserved") + worst_case, calls=F("calls") + 1):
            return True
        if BudgetPeriod.objects.filter(budget_id=budget.pk, starts_at=start).exists():
            return False
        # The period's first call: its row is made here (a new period is how budgets reset).
        BudgetPeriod.objects.bulk_create(
            [BudgetPeriod(budget_id=budget.pk, starts_at=start, ends_at=end)],
            ignore_conflicts=True,
        )
    return False


def budgets_reserve(
    *,
    call_id: str,
    scope: SpendScope,
    worst_case: Decimal | None,
    model: str = "",
    now: datetime | None = None,
    budgets: list[Budget] | None = None,
) -> bool:
    """Reserves the call's worst case in every budget over it, or raises BudgetExceeded and
    reserves nothing. Returns whether anything was reserved (the call then needs settling).

    Must run inside the caller's transaction, with the ledger row the call writes, so a
    reservation exists exactly when its ledger row does. `budgets`: those over the call, when the
    caller has just read them."""
    if budgets is None:
        budgets = budgets_for(scope)
    if not budgets:
        return False
    now = now or timezone.now()
    charges: list[BudgetCharge] = []
    for budget in budgets:
        start, end = period_bounds(budget.period, budget.time_zone, now)
        if budget.hard_limit is not None and worst_case is None:
            raise _refusal(
                budget,
                start,
                f"Budget “{budget.name}” has a hard limit and the price of {model or 'the model'} "
                "is not known, so the call was not made: set the model's price on its provider.",
                final=True,
            )
        reserve = worst_case or Decimal(0)
        if not _admit(budget, start, end, reserve):
            spent = (
                BudgetPeriod.objects.filter(budget_id=budget.pk, starts_at=start)
                .values_list("spent", flat=True)
                .first()
            ) or Decimal(0)
            assert budget.hard_limit is not None
            final = spent >= budget.hard_limit
            reason = (
                _exhausted_reason(budget, start, spent)
                if final
                else f"Budget “{budget.name}” is taken up by calls in flight."
            )
            raise _refusal(budget, start, reason, final=final)
        if worst_case is None:
            BudgetPeriod.objects.filter(budget_id=budget.pk, starts_at=start).update(
                unpriced_calls=F("unpriced_calls") + 1
            )
        charges.append(
            BudgetCharge(call_id=call_id, budget_id=budget.pk, period_start=start, reserved=reserve)
        )
    BudgetCharge.objects.bulk_create(charges)
    return True


def budget_refusal_count(refusal: BudgetExceeded) -> None:
    """Counts a final refusal on its period (after the refused transaction rolled back)."""
    _, budget_id, _ = (refusal.key.split(":") + ["", ""])[:3]
    budget = Budget.objects.filter(pk=budget_id).first() if budget_id else None
    if budget is None:
        return
    start, _ = period_bounds(budget.period, budget.time_zone, timezone.now())
    BudgetPeriod.objects.filter(budget_id=budget.pk, starts_at=start).update(
        refused_calls=F("refused_calls") + 1
    )


def budgets_settle(call_id: str, cost: Decimal, price_source: str = "") -> int:
    """Replaces the call's reservations by its real cost; idempotent (each charge settles once).
    Returns how many charges it settled."""
    # In budget order, as reservations lock the period rows: no deadlock between the two.
    charges = list(
        BudgetCharge.objects.filter(call_id=call_id, settled_at=None).order_by("budget_id")
    )
    if not charges:
        return 0
    now = timezone.now()
    settled = 0
    priced = price_source != "unknown"
    with transaction.atomic():
        for charge in charges:
            if not BudgetCharge.objects.filter(pk=charge.pk, settled_at=None).update(
                settled_at=now, cost=cost
            ):
                continue  # another process settled it first
            BudgetPeriod.objects.filter(
                budget_id=charge.budget_id, starts_at=charge.period_start
            ).update(
                reserved=F("reserved") - charge.reserved,
                spent=F("spent") + (cost if priced else Decimal(0)),
            )
            settled += 1
        for charge in charges:
            thresholds_announce(charge.budget_id, charge.period_start)
    return settled


def budget_charges_settle_orphans() -> int:
    """Settles the charges of calls whose ledger row was closed without them (their worker died
    mid-call and the reaper closed the row): with the row's cost, so reservations never leak."""
    from agents.models import LedgerEntry

    open_calls = set(
        BudgetCharge.objects.filter(settled_at=None).values_list("call_id", flat=True)[:5000]
    )
    if not open_calls:
        return 0
    closed = LedgerEntry.objects.filter(call_id__in=open_calls).exclude(
        status=LedgerEntry.Status.PENDING
    )
    worst = dict(
        BudgetCharge.objects.filter(call_id__in=open_calls).values_list("call_id", "reserved")
    )
    count = 0
    rows = closed.values_list("call_id", "status", "cost", "price_source")
    for call_id, status, cost, source in rows:
        if status == LedgerEntry.Status.UNKNOWN:
            # Its worker died mid-call: what the provider charged is not known, so the budget
            # keeps the worst case it reserved rather than the reaper's prompt-only estimate.
            cost, source = max(cost, worst.get(call_id, cost)), "estimated"
        count += budgets_settle(str(call_id), cost, source)
    return count


def _due(budget: Budget, spent: Decimal) -> list[tuple[int, int, Decimal, str]]:
    """(bit, percent, limit, kind) of every threshold `spent` has reached."""
    due = []
    reference = budget.hard_limit if budget.hard_limit is not None else budget.soft_limit
    kind = "hard" if budget.hard_limit is not None else "soft"
    if reference is not None and reference > 0:
        for percent, bit in PERCENT_BITS.items():
            if spent >= reference * percent / 100:
                due.append((bit, percent, reference, kind))
    soft = budget.soft_limit
    if budget.hard_limit is not None and soft is not None and spent >= soft:
        due.append((SOFT_BIT, 100, soft, "soft"))
    return due


def thresholds_announce(budget_id: Any, period_start: datetime) -> None:
    """Sends `budget_threshold_crossed` for each threshold newly reached, once per period."""
    for _ in range(5):
        row = (
            BudgetPeriod.objects.select_related("budget")
            .filter(budget_id=budget_id, starts_at=period_start)
            .first()
        )
        if row is None:
            return
        due = [item for item in _due(row.budget, row.spent) if not row.thresholds_sent & item[0]]
        if not due:
            return
        bits = row.thresholds_sent
        for item in due:
            bits |= item[0]
        claimed = BudgetPeriod.objects.filter(pk=row.pk, thresholds_sent=row.thresholds_sent)
        if claimed.update(thresholds_sent=bits):
            crossings = [(percent, limit, kind) for _, percent, limit, kind in due]
            transaction.on_commit(
                functools.partial(_send, row.budget, crossings, row.spent, period_start)
            )
            return


def _send(
    budget: Budget,
    crossings: list[tuple[int, Decimal, str]],
    spent: Decimal,
    start: datetime,
) -> None:
    for percent, limit, kind in crossings:
        try:
            budget_threshold_crossed.send(
                sender=Budget,
                budget=budget,
                threshold_percent=percent,
                spend=spent,
                limit=limit,
                kind=kind,
                period_start=start,
            )
        except Exception:  # a receiver's failure must not undo the call's bookkeeping
            logger.exception("A budget_threshold_crossed receiver failed (budget %s)", budget.pk)


@dataclass(frozen=True)
class Exhausted:
    """A hard budget over a run that has no headroom left."""

    reason: str
    key: str
    pause: bool
    budget_id: str


def hard_budgets_for(scope: SpendScope, *, agent_ids=(), provider_ids=()) -> list[Budget]:
    budgets = budgets_for(scope, agent_ids=agent_ids, provider_ids=provider_ids)
    return [budget for budget in budgets if budget.hard_limit is not None]


def budgets_exhausted(budgets: list[Budget], now: datetime | None = None) -> Exhausted | None:
    """The first of `budgets` whose current period's spend reached its hard limit, if any:
    one query for all of them."""
    if not budgets:
        return None
    now = now or timezone.now()
    starts = {
        budget.pk: period_bounds(budget.period, budget.time_zone, now)[0] for budget in budgets
    }
    match = Q()
    for budget_id, start in starts.items():
        match |= Q(budget_id=budget_id, starts_at=start)
    spent = dict(BudgetPeriod.objects.filter(match).values_list("budget_id", "spent"))
    for budget in budgets:
        assert budget.hard_limit is not None
        used = spent.get(budget.pk, Decimal(0))
        if used >= budget.hard_limit:
            start = starts[budget.pk]
            return Exhausted(
                _exhausted_reason(budget, start, used),
                period_key(budget, start),
                budget.on_exceed == Budget.OnExceed.PAUSE,
                str(budget.pk),
            )
    return None
