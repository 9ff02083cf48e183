"""The run lease: one process executes a run at a time, and a dead one's runs are taken over.

Acquiring is one conditional UPDATE, so two workers racing for a run (a duplicate delivery, a
reaper resuming it) cannot both win; every write an executor makes afterwards is fenced by the
owner it holds, so a process that lost its lease changes nothing.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import Count, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from a2a_site.db import (
    UNFLUSHED_COMMIT,
    Columns,
    execute_one,
    execute_statements,
    together_possible,
)
from agents.ledger import ledger_finishes_settle
from agents.llm.pricing import price_call
from agents.llm.redaction import redact_secrets
from agents.llm.types import Deployment, Usage
from agents.models import LedgerEntry, Provider
from agents.prices import model_prices_of
from agents.rollups import ledger_close_pending
from workflows.models import Run, RunStatus
from workflows.run_usage import usage_sums_params, usage_sums_sql
from workflows.search import run_search_fields, run_search_refresh, search_text_of
from workflows.webhooks.events import (
    run_event_deliveries_create,
    run_event_record,
    run_event_subscribers,
    run_status_event,
    run_unheard_sql,
)
from workflows.webhooks.models import WebhookEvent, WebhookSubscription

logger = logging.getLogger(__name__)


def lease_seconds() -> int:
    return int(settings.RUN_LEASE_SECONDS)


def run_lease_acquire(run_id: Any, *, owner: str) -> bool:
    """Takes the run if it is queued, or running under an expired lease (a dead worker's). Its
    first start is a `run.started` webhook event, recorded in the same transaction (a plain
    write when no subscription listens).

    Most workspaces have no webhook subscription: the first UPDATE takes the lease only if none
    of the run's could listen, in the same statement (one round trip). It takes nothing when one
    could, or when the run is not to be taken; then the subscriptions are read and the lease is
    taken as before, with the event in its transaction when one wants it."""
    now = timezone.now()
    # Nobody listening (the common case): the take alone, which checks that itself.
    if _lease_take(run_id, owner=owner, now=now, unheard=True):
        return True
    return _lease_take_wants_subscribers(run_id, owner=owner, now=now)


def run_lease_acquire_reading(
    run_id: Any, *, owner: str, read: tuple[str, list[Any]]
) -> tuple[bool, Any]:
    """`run_lease_acquire`, with `read` (a SELECT of one row) in the same round trip when it
    can: (taken, the row read, or None when it was not read with the take).

    On PostgreSQL, in the common case (no webhook may listen), the read goes in the take's
    own text and transaction, after the take, so it sees the run as leased; its row is
    dropped when the lease was not taken, and a read that fails takes no lease either.
    Elsewhere, or when webhooks may listen, the lease is taken as `run_lease_acquire` takes
    it and the caller reads the run itself (None)."""
    if not together_possible():
        return run_lease_acquire(run_id, owner=owner), None
    now = timezone.now()
    with connection.cursor() as cursor:
        execute_statements(
            cursor, [_lease_take_statement(run_id, owner=owner, now=now, unheard=True), read]
        )
        taken = cursor.rowcount == 1
        cursor.nextset()
        row = cursor.fetchone()
    if taken:
        return True, row
    return _lease_take_wants_subscribers(run_id, owner=owner, now=now), None


def _lease_take_wants_subscribers(run_id: Any, *, owner: str, now: datetime) -> bool:
    """After the unheard take took nothing: the take of `run_lease_acquire` when webhooks may
    listen (True if it took the lease)."""
    subscribers = run_event_subscribers(run_id, WebhookEvent.RUN_STARTED)
    if not subscribers:
        return _lease_take(run_id, owner=owner, now=now)
    with transaction.atomic():
        taken = _lease_take(run_id, owner=owner, now=now)
        if taken:
            run_event_deliveries_create(run_id, WebhookEvent.RUN_STARTED, subscribers)
    return taken


_RUN = Columns(Run)
_SUBSCRIPTION = Columns(WebhookSubscription)


def _lease_take(run_id: Any, *, owner: str, now: datetime, unheard: bool = False) -> bool:
    with connection.cursor() as cursor:
        execute_one(cursor, *_lease_take_statement(run_id, owner=owner, now=now, unheard=unheard))
        return cursor.rowcount == 1


def _lease_take_statement(
    run_id: Any, *, owner: str, now: datetime, unheard: bool = False
) -> tuple[str, list[Any]]:
    """The conditional UPDATE; with `unheard`, only if no enabled webhook subscription of the
    run's workspace (or of its workflow) exists, whatever events it wants.

    Written by hand (see `a2a_site.db.Columns`): it is every run's first statement, and the
    ORM took longer to compile it than the database to execute it.

    On PostgreSQL its commit does not wait for the disk (`UNFLUSHED_COMMIT`): a lease is only
    worth keeping once the run did something durable under it, and every such write (a step,
    a ledger row before a model call, the run's end) is a flushed commit that flushes the
    lease before it. A crash of the database in between forgets the lease with nothing done
    under it: the run is queued again, as it was, and the executor's fenced writes fail. That
    wait was the largest part of a run's start (a flush is 3-5 ms on a busy disk)."""
    r, s = _RUN, _SUBSCRIPTION
    sql = (
        f"UPDATE {r.table} SET {r['status']} = %s, {r['lease_owner']} = %s, "
        f"{r['lease_until']} = %s, {r['attempts']} = {r['attempts']} + 1, "
        # The first start stays: a resume after a wait or a dead worker continues the same
        # run, and its elapsed time counts from when it began.
        f"{r['started_at']} = COALESCE({r['started_at']}, %s) "
        f"WHERE {r['id']} = %s AND {r['cancel_requested']} = %s AND ({r['status']} = %s "
        f"OR ({r['status']} = %s AND {r['lease_until']} < %s))"
    )
    params = [
        RunStatus.RUNNING,
        owner,
        r.value("lease_until", now + timedelta(seconds=lease_seconds())),
        r.value("started_at", now),
        r.value("id", run_id),
        r.value("cancel_requested", False),
        RunStatus.QUEUED,
        RunStatus.RUNNING,
        r.value("lease_until", now),
    ]
    if unheard:
        sql += (
            f" AND NOT EXISTS (SELECT 1 FROM {s.table} WHERE {s['workspace']} = "
            f"{r.table}.{r['workspace']} AND {s['enabled']} = %s AND ({s['workflow']} IS NULL "
            f"OR {s['workflow']} = {r.table}.{r['workflow']}))"
        )
        params.append(s.value("enabled", True))
    if connection.vendor == "postgresql":
        sql += f" RETURNING {UNFLUSHED_COMMIT}"
    return sql, params


def run_lease_renew(run_id: Any, *, owner: str) -> bool:
    now = timezone.now()
    return (
        Run.objects.filter(pk=run_id, lease_owner=owner, status=RunStatus.RUNNING).update(
            lease_until=now + timedelta(seconds=lease_seconds())
        )
        == 1
    )


def run_lease_held(run_id: Any, *, owner: str) -> bool:
    return Run.objects.filter(pk=run_id, lease_owner=owner, status=RunStatus.RUNNING).exists()


def run_lease_renew_all(*, owner: str) -> int:
    """Renews every lease one executor holds in one UPDATE; returns how many it still holds.

    The executor calls it every RUN_HEARTBEAT_SECONDS for all its runs at once, so a short
    lease (a dead worker's runs resume within seconds) costs one statement per worker per
    interval, whatever the number of runs or steps.
    """
    now = timezone.now()
    return Run.objects.filter(lease_owner=owner, status=RunStatus.RUNNING).update(
        lease_until=now + timedelta(seconds=lease_seconds())
    )


def run_leases_release(*, owner: str) -> int:
    """Ends the leases of an executor that stops, so its runs are resumed at the next reap."""
    return Run.objects.filter(lease_owner=owner, status=RunStatus.RUNNING).update(
        lease_until=timezone.now()
    )


def ledger_totals() -> dict[str, Any]:
    """UPDATE expressions copying a run's usage and cost from its ledger rows (the truth)."""
    rows = LedgerEntry.objects.filter(run_id=OuterRef("pk")).order_by().values("run_id")

    def total(aggregate: Any, field: models.Field[Any, Any], zero: Any) -> Any:
        summed = Subquery(rows.annotate(total=aggregate).values("total"), output_field=field)
        return Coalesce(summed, Value(zero), output_field=field)

    # Its sub-runs' totals, which include theirs in turn: a run's totals are what it cost,
    # its sub-workflows included, while each ledger row stays the child's (read once).
    kids = Run.objects.filter(parent_id=OuterRef("pk")).order_by().values("parent_id")

    def of_kids(name: str, field: models.Field[Any, Any], zero: Any) -> Any:
        summed = Subquery(kids.annotate(total=Sum(name)).values("total"), output_field=field)
        return Coalesce(summed, Value(zero), output_field=field)

    decimal: models.DecimalField[Any, Any] = models.DecimalField(max_digits=14, decimal_places=8)
    big: models.BigIntegerField[Any, Any] = models.BigIntegerField()
    small: models.IntegerField[Any, Any] = models.IntegerField()
    return {
        "prompt_tokens": total(Sum("prompt_tokens"), big, 0) + of_kids("prompt_tokens", big, 0),
        "completion_tokens": total(Sum("completion_tokens"), big, 0)
        + of_kids("completion_tokens", big, 0),
        "cost": total(Sum("cost"), decimal, Decimal(0)) + of_kids("cost", decimal, Decimal(0)),
        "model_calls": total(Count("pk"), small, 0) + of_kids("model_calls", small, 0),
    }


def run_ancestors_totals_refresh(run_id: Any) -> None:
    """A sub-run's usage changed: its parent's totals (and theirs, up the tree) follow, so a
    parent waiting on its child shows what the child spends while it spends it."""
    parent_id = Run.objects.filter(pk=run_id).values_list("parent_id", flat=True).first()
    seen: set[Any] = set()
    while parent_id is not None and parent_id not in seen:
        seen.add(parent_id)
        Run.objects.filter(pk=parent_id).update(**ledger_totals())
        parent_id = Run.objects.filter(pk=parent_id).values_list("parent_id", flat=True).first()


def ledger_close_orphans(run_id: Any) -> int:
    """Closes calls left pending by a dead worker as `unknown`, with an estimated cost."""
    closed = 0
    for entry in LedgerEntry.objects.filter(run_id=run_id, status=LedgerEntry.Status.PENDING):
        provider = (
            Provider.objects.filter(pk=entry.provider_id).first() if entry.provider_id else None
        )
        deployment = Deployment(
            id=entry.deployment_id,
            provider_kind=entry.provider_kind,
            model=entry.model,
            base_url="",
            input_price_per_1k=provider.input_price_per_1k if provider else None,
            output_price_per_1k=provider.output_price_per_1k if provider else None,
            model_prices=model_prices_of(provider, entry.model),
        )
        usage = Usage(entry.prompt_tokens_estimate, 0, entry.prompt_tokens_estimate)
        cost, price_source = price_call(deployment, usage)
        # Through the rollups' seam, so the hour's sums count the closed call too.
        closed += ledger_close_pending(
            entry.pk,
            {
                "status": LedgerEntry.Status.UNKNOWN,
                "prompt_tokens": entry.prompt_tokens_estimate,
                "cost": cost or Decimal(0),
                "cost_estimated": True,
                "price_source": price_source,
                "error_kind": "worker_lost",
                "finished_at": timezone.now(),
            },
        )
    return closed


def unattended(now: datetime) -> Q:
    """Runs no live worker executes: queued, waiting, or running under an expired lease."""
    return Q(status__in=[RunStatus.QUEUED, RunStatus.WAITING]) | Q(
        status=RunStatus.RUNNING, lease_until__lt=now
    )


def run_cancel_unattended(
    run_id: Any, *, reason: str, now: datetime | None = None, requested_only: bool = False
) -> bool:
    """Ends a run as cancelled if no live worker holds it, with its cost settled.

    One conditional UPDATE decides, so a worker acquiring or renewing the run at the same moment
    either wins (and then sees the cancel flag) or finds the run finished. Calls its dead worker
    left pending are closed as `unknown` with an estimated cost, and the run's totals are copied
    from the ledger. With `requested_only`, only a run whose cancel was already asked for.
    """
    now = now or timezone.now()
    conditions = unattended(now)
    if requested_only:
        conditions &= Q(cancel_requested=True)
    with transaction.atomic():
        ended = Run.objects.filter(conditions, pk=run_id).update(
            status=RunStatus.CANCELLED,
            reason=reason[:5000],
            cancel_requested=True,
            waiting_request=None,
            lease_owner="",
            lease_until=None,
            finished_at=now,
        )
        if ended:
            ledger_close_orphans(run_id)
            run_search_refresh(run_id)
            Run.objects.filter(pk=run_id).update(**ledger_totals())
            run_event_record(run_id, WebhookEvent.RUN_CANCELLED)
    return ended == 1


@dataclass(frozen=True)
class RunKnown:
    """What an executor read of a run as it loaded it: its inputs, and whether it is a sub-run
    (whose parents' totals follow its own). When the executor saw all the run said and called
    (it executed it from its start), also its messages and the facets of its calls, which
    spares reading them back for the history's search fields."""

    inputs: Any
    nested: bool
    messages: tuple[str, ...] | None = None
    facets: dict[str, list[str]] | None = None


def run_finish(
    run_id: Any,
    *,
    owner: str,
    status: str,
    reason: str = "",
    output: Any = None,
    known: RunKnown | None = None,
) -> bool:
    """Ends the run and releases the lease in one write; False if the lease was lost meanwhile.
    The run's totals are copied from its ledger in the same write, so a step interrupted by a
    cancel or a failure is counted too. `known`: what the executor read of the run when it
    loaded it, which spares reading it again."""
    # Calls that finished since the run's last write are completed first: its totals sum them.
    try:
        ledger_finishes_settle(run_id)
    except Exception:  # noqa: BLE001 - the reaper closes them, their cost estimated
        logger.warning("Run %s: finished calls not completed.", run_id)
    reason = redact_secrets(reason)[:5000]
    fields: dict[str, Any] = {
        "status": status,
        "reason": reason,
        "lease_owner": "",
        "lease_until": None,
    }
    if status == RunStatus.WAITING:
        pass  # the answer re-queues it; output and finish time come later
    else:
        fields["output"] = output
        fields["finished_at"] = timezone.now()
    searched = known is not None and status != RunStatus.WAITING
    if known is not None and searched:
        # What the run said becomes searchable in the history once it stops: in the same
        # write, from what the executor saw it say, or else from its stored events (this
        # executor holds the lease: nobody adds any).
        if known.messages is not None and known.facets is not None:
            fields["search_text"] = search_text_of(
                inputs=known.inputs, output=output, messages=known.messages
            )
            fields["facets"] = known.facets
        else:
            fields.update(run_search_fields(run_id, inputs=known.inputs, output=output))
    # Its webhook event (waiting, succeeded, failed, cancelled) commits with the status: the
    # write alone when no subscription of the workspace could want it (the write checks that
    # itself), else in one transaction with its deliveries.
    event = run_status_event(status)
    ended = bool(event) and _run_end(run_id, owner, fields, unheard=True)
    if not ended:
        subscribers = run_event_subscribers(run_id, event)
        with transaction.atomic() if subscribers else nullcontext():
            ended = _run_end(run_id, owner, fields)
            if ended and event and subscribers:
                run_event_deliveries_create(run_id, event, subscribers)
    if ended:
        if not searched:
            run_search_refresh(run_id)
        if known is None or known.nested:
            run_ancestors_totals_refresh(run_id)
    return ended


def _run_end(run_id: Any, owner: str, fields: dict[str, Any], *, unheard: bool = False) -> bool:
    """The one write that ends (or pauses) the run under this owner's lease, its totals summed
    from the ledger; written by hand (the ORM's compiling of the sums cost more than the
    database took to run them). With `unheard`, only if no webhook subscription listens."""
    r = _RUN
    totals = f"({r['prompt_tokens']}, {r['completion_tokens']}, {r['cost']}, {r['model_calls']})"
    sql = (
        f"UPDATE {r.table} SET "
        + ", ".join(f"{r[name]} = %s" for name in fields)
        + f", {totals} = ({usage_sums_sql()}) "
        f"WHERE {r['id']} = %s AND {r['lease_owner']} = %s AND {r['status']} = %s"
    )
    if unheard:
        sql += f" AND {run_unheard_sql(r.table, r['workspace'])}"
    run_pk = r.value("id", run_id)
    params = [*r.values(fields), *usage_sums_params(run_id), run_pk, owner, RunStatus.RUNNING]
    with connection.cursor() as cursor:
        execute_one(cursor, sql, params)
        return bool(cursor.rowcount == 1)
