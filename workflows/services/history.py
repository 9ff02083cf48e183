"""Changes made from the run history: pins, bulk cancel and delete, and retention.

Deleting a run deletes its steps, events and child runs, and what their calls sent and received
(the call payloads the trace shows: prompts and answers); its ledger rows stay, because they are
the record of what was spent (dashboards and budgets read them) and hold no inputs or outputs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from a2a_site.accounts.models import User, Workspace
from agents.payloads import payloads_delete_for_runs
from workflows.models import TERMINAL_STATUSES, RetentionPolicy, Run, RunStatus
from workflows.services.runs import run_cancel

logger = logging.getLogger(__name__)

BULK_MAX_RUNS = 200
RETENTION_MAX_DAYS = 3650


@dataclass
class BulkOutcome:
    done: list[str] = field(default_factory=list)
    # (short run id, why it was left as it was)
    refused: list[tuple[str, str]] = field(default_factory=list)


def _short(run_id: Any) -> str:
    return str(run_id)[:8]


def _runs_delete(run_ids: list[Any], **still: Any) -> None:
    """Deletes the runs (those still matching `still`) with their child runs and the payloads of
    all their calls, in the caller's transaction."""
    family, generation = list(run_ids), list(run_ids)
    while generation:  # sub-workflow runs, depth-limited by the engine
        generation = list(Run.objects.filter(parent__in=generation).values_list("pk", flat=True))
        family += generation
    Run.objects.filter(pk__in=run_ids, **still).delete()
    gone = set(family) - set(Run.objects.filter(pk__in=family).values_list("pk", flat=True))
    payloads_delete_for_runs(gone)


def run_pin(*, run: Run, pinned: bool) -> Run:
    Run.objects.filter(pk=run.pk).update(pinned=pinned)
    run.pinned = pinned
    return run


def _runs_asked(workspace: Workspace, run_ids: Iterable[Any]) -> tuple[list[Run], BulkOutcome]:
    wanted = list(dict.fromkeys(str(pk) for pk in run_ids))[:BULK_MAX_RUNS]
    found = {
        str(run.pk): run
        for run in Run.objects.filter(workspace=workspace, pk__in=wanted).only(
            "id", "status", "pinned", "workspace_id"
        )
    }
    outcome = BulkOutcome()
    runs = []
    for pk in wanted:
        if pk in found:
            runs.append(found[pk])
        else:
            outcome.refused.append(
                (_short(pk), "not found: deleted already, or not in this workspace")
            )
    return runs, outcome


def runs_cancel_many(*, workspace: Workspace, run_ids: Iterable[Any], user: User) -> BulkOutcome:
    runs, outcome = _runs_asked(workspace, run_ids)
    for run in runs:
        if run.status in TERMINAL_STATUSES:
            outcome.refused.append((_short(run.pk), f"already {run.get_status_display().lower()}"))
            continue
        cancelled = run_cancel(run=run, user=user)
        if cancelled.status == RunStatus.CANCELLED or cancelled.cancel_requested:
            outcome.done.append(_short(run.pk))
        else:
            outcome.refused.append(
                (_short(run.pk), f"it ended as {cancelled.get_status_display().lower()} first")
            )
    return outcome


def runs_delete_many(*, workspace: Workspace, run_ids: Iterable[Any]) -> BulkOutcome:
    runs, outcome = _runs_asked(workspace, run_ids)
    deletable = []
    for run in runs:
        if run.status not in TERMINAL_STATUSES:
            outcome.refused.append((_short(run.pk), "still in progress: cancel it first"))
        elif run.pinned:
            outcome.refused.append((_short(run.pk), "pinned: unpin it first"))
        else:
            deletable.append(run.pk)
    with transaction.atomic():
        # Re-checked in the statement: a run that was pinned or restarted meanwhile stays.
        _runs_delete(deletable, pinned=False, status__in=TERMINAL_STATUSES)
    left = set(Run.objects.filter(pk__in=deletable).values_list("pk", flat=True))
    for pk in deletable:
        if pk in left:
            outcome.refused.append((_short(pk), "it changed meanwhile; look at it again"))
        else:
            outcome.done.append(_short(pk))
    return outcome


def retention_policy_of(workspace_id: Any) -> RetentionPolicy | None:
    return RetentionPolicy.objects.filter(workspace_id=workspace_id).first()


def retention_policy_set(
    *, workspace: Workspace, keep_days: int | None, user: User | None
) -> RetentionPolicy:
    policy, _ = RetentionPolicy.objects.update_or_create(
        workspace=workspace, defaults={"keep_days": keep_days, "updated_by": user}
    )
    return policy


def runs_retention_enforce(
    *,
    now: datetime | None = None,
    batch_size: int | None = None,
    max_batches: int | None = None,
) -> int:
    """Deletes finished, unpinned runs older than their workspace keeps them, in small batches.

    Each batch is its own short transaction (a few hundred runs with their steps and events),
    so no lock is held for long and a busy database interleaves other writes between batches.
    At most `max_batches` per call: the periodic task comes back for the rest.
    """
    now = now or timezone.now()
    batch_size = batch_size or settings.RUN_RETENTION_BATCH
    max_batches = max_batches or settings.RUN_RETENTION_MAX_BATCHES
    deleted = 0
    batches = 0
    policies = RetentionPolicy.objects.filter(keep_days__isnull=False).order_by("workspace_id")
    for policy in policies:
        assert policy.keep_days is not None
        cutoff = now - timedelta(days=policy.keep_days)
        while batches < max_batches:
            ids = list(
                Run.objects.filter(
                    workspace_id=policy.workspace_id,
                    parent__isnull=True,
                    created_at__lt=cutoff,
                    pinned=False,
                    status__in=TERMINAL_STATUSES,
                )
                .order_by("created_at")
                .values_list("pk", flat=True)[:batch_size]
            )
            if not ids:
                break
            with transaction.atomic():
                _runs_delete(ids, pinned=False)
            deleted += len(ids)
            batches += 1
    if deleted:
        logger.info("Retention deleted %d runs.", deleted)
    return deleted
