"""The reaper: finds runs whose worker died and resumes them; re-sends runs stuck in the queue.

Runs every RUN_REAPER_SECONDS (Celery beat in the distributed mode, the embedded executor's own
loop otherwise). Each decision is a conditional UPDATE, so two reapers at once do no harm.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from agents.llm.pricing import price_call
from agents.llm.types import Deployment, Usage
from agents.models import LedgerEntry, Provider
from workflows.models import Run, RunStatus
from workflows.services.dispatch import dispatch_run


@dataclass
class ReapReport:
    resumed: list[Any] = field(default_factory=list)
    failed: list[Any] = field(default_factory=list)
    redispatched: list[Any] = field(default_factory=list)
    ledger_closed: int = 0


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
        )
        usage = Usage(entry.prompt_tokens_estimate, 0, entry.prompt_tokens_estimate)
        cost, price_source = price_call(deployment, usage)
        closed += LedgerEntry.objects.filter(pk=entry.pk, status=LedgerEntry.Status.PENDING).update(
            status=LedgerEntry.Status.UNKNOWN,
            prompt_tokens=entry.prompt_tokens_estimate,
            cost=cost or Decimal(0),
            cost_estimated=True,
            price_source=price_source,
            error_kind="worker_lost",
            finished_at=timezone.now(),
        )
    return closed


def runs_reap() -> ReapReport:
    report = ReapReport()
    now = timezone.now()
    expired = Run.objects.filter(status=RunStatus.RUNNING, lease_until__lt=now).values_list(
        "pk", "attempts"
    )
    for run_id, attempts in expired:
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
                )
                if done:
                    report.failed.append(run_id)
                continue
            resumed = Run.objects.filter(
                pk=run_id, status=RunStatus.RUNNING, lease_until__lt=now
            ).update(status=RunStatus.QUEUED, lease_owner="", lease_until=None, dispatched_at=now)
            if resumed:
                report.resumed.append(run_id)
                transaction.on_commit(partial(dispatch_run, run_id))
    for run in Run.objects.filter(status=RunStatus.WAITING).only("pk", "waiting_request"):
        if _human_timed_out(run.waiting_request or {}, now) and _resume_timed_out(run, now):
            report.resumed.append(run.pk)
    stale = now - timedelta(seconds=settings.RUN_QUEUED_REDISPATCH_SECONDS)
    for run_id in Run.objects.filter(status=RunStatus.QUEUED, dispatched_at__lt=stale).values_list(
        "pk", flat=True
    ):
        if Run.objects.filter(pk=run_id, status=RunStatus.QUEUED, dispatched_at__lt=stale).update(
            dispatched_at=now
        ) and dispatch_run(run_id):  # one that fails stays due for the next round
            report.redispatched.append(run_id)
    return report


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
