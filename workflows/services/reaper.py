"""The reaper: finds runs whose worker died and resumes them; re-sends runs stuck in the queue.

Runs every RUN_REAPER_SECONDS (Celery beat in the distributed mode, the embedded executor's own
loop otherwise). Each decision is a conditional UPDATE, so two reapers at once do no harm.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from agents.budgets.enforcement import budget_charges_settle_orphans
from workflows.models import Run, RunStatus
from workflows.search import run_search_refresh
from workflows.services.dispatch import dispatch_run
from workflows.services.lease import (
    ledger_close_orphans,
    ledger_totals,
    run_cancel_unattended,
)
from workflows.services.subruns import subrun_settle
from workflows.webhooks.events import run_event_record
from workflows.webhooks.models import WebhookEvent

logger = logging.getLogger(__name__)


@dataclass
class ReapReport:
    resumed: list[Any] = field(default_factory=list)
    failed: list[Any] = field(default_factory=list)
    redispatched: list[Any] = field(default_factory=list)
    cancelled: list[Any] = field(default_factory=list)
    ledger_closed: int = 0


def runs_reap() -> ReapReport:
    report = ReapReport()
    now = timezone.now()
    expired = Run.objects.filter(status=RunStatus.RUNNING, lease_until__lt=now).values_list(
        "pk", "attempts", "cancel_requested"
    )
    for run_id, attempts, cancel_requested in expired:
        if cancel_requested:
            # Its worker died after the cancel was asked for: nobody is left to honour it, and
            # resuming the run would only queue it for ever (a worker never takes a run whose
            # cancel was requested).
            if run_cancel_unattended(
                run_id, reason=CANCELLED_UNATTENDED, now=now, requested_only=True
            ):
                report.cancelled.append(run_id)
            continue
        with transaction.atomic():
            report.ledger_closed += ledger_close_orphans(run_id)
            if attempts > settings.RUN_MAX_RESUMES:
                done = Run.objects.filter(
                    pk=run_id, status=RunStatus.RUNNING, lease_until__lt=now
                ).update(
                    status=RunStatus.FAILED,
                    reason=(
                        f"The worker executing this run stopped {attempts} times; giving up. "
                        "Check the workers on the Monitoring page."
                    ),
                    lease_owner="",
                    lease_until=None,
                    finished_at=now,
                    **ledger_totals(),
                )
                if done:
                    report.failed.append(run_id)
                    run_search_refresh(run_id)
                    run_event_record(run_id, WebhookEvent.RUN_FAILED)
                continue
            resumed = Run.objects.filter(
                pk=run_id, status=RunStatus.RUNNING, lease_until__lt=now
            ).update(
                status=RunStatus.QUEUED,
                lease_owner="",
                lease_until=None,
                dispatched_at=now,
                **ledger_totals(),
            )
            if resumed:
                report.resumed.append(run_id)
                transaction.on_commit(partial(dispatch_run, run_id))
    for run in Run.objects.filter(status=RunStatus.WAITING).only("pk", "waiting_request"):
        request = run.waiting_request or {}
        if request.get("child_run_id"):
            # Waiting on its sub-run: a wake-up lost to a crash is made up for here.
            if subrun_settle(run.pk):
                report.resumed.append(run.pk)
        elif _human_timed_out(request, now) and _resume_timed_out(run, now):
            report.resumed.append(run.pk)
    stale = now - timedelta(seconds=settings.RUN_QUEUED_REDISPATCH_SECONDS)
    for run_id, cancel_requested in Run.objects.filter(
        status=RunStatus.QUEUED, dispatched_at__lt=stale
    ).values_list("pk", "cancel_requested"):
        if cancel_requested:
            if run_cancel_unattended(
                run_id, reason=CANCELLED_UNATTENDED, now=now, requested_only=True
            ):
                report.cancelled.append(run_id)
            continue
        if Run.objects.filter(pk=run_id, status=RunStatus.QUEUED, dispatched_at__lt=stale).update(
            dispatched_at=now
        ) and dispatch_run(run_id):  # one that fails stays due for the next round
            report.redispatched.append(run_id)
    for run_id in report.cancelled:
        _announce_cancelled(run_id)
    # Calls closed above (or by a cancel) release their budget reservations.
    budget_charges_settle_orphans()
    return report


CANCELLED_UNATTENDED = "Cancelled (the worker executing it had stopped)."


def _announce_cancelled(run_id: Any) -> None:
    from workflows.live import announce_status

    # Bounded and never raising: viewers resync from the stored state anyway.
    announce_status(run_id, RunStatus.CANCELLED, CANCELLED_UNATTENDED)


def _human_timed_out(request: dict[str, Any], now: Any) -> bool:
    timeout = request.get("timeout_s")
    since = request.get("since")
    if not timeout or not since:
        return False
    from datetime import datetime

    return datetime.fromisoformat(since) + timedelta(seconds=float(timeout)) < now


def _resume_timed_out(run: Run, now: Any) -> bool:
    """Nobody answered in time: the run resumes and the node's timeout policy decides."""
    with transaction.atomic():
        locked = Run.objects.select_for_update().get(pk=run.pk)
        request = locked.waiting_request or {}
        if locked.status != RunStatus.WAITING or not _human_timed_out(request, now):
            return False
        key = request.get("step_key", "")
        locked.answers = {**locked.answers, key: {"timed_out": True}}
        locked.waiting_request = None
        locked.status = RunStatus.QUEUED
        locked.dispatched_at = now
        locked.save(update_fields=["answers", "waiting_request", "status", "dispatched_at"])
        transaction.on_commit(partial(dispatch_run, locked.pk))
    return True
