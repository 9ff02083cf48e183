"""The run lease: one process executes a run at a time, and a dead one's runs are taken over.

Acquiring is one conditional UPDATE, so two workers racing for a run (a duplicate delivery, a
reaper resuming it) cannot both win; every write an executor makes afterwards is fenced by the
owner it holds, so a process that lost its lease changes nothing.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from workflows.models import Run, RunStatus


def lease_seconds() -> int:
    return int(settings.RUN_LEASE_SECONDS)


def run_lease_acquire(run_id: Any, *, owner: str) -> bool:
    """Takes the run if it is queued, or running under an expired lease (a dead worker's)."""
    now = timezone.now()
    taken = Run.objects.filter(
        Q(status=RunStatus.QUEUED) | Q(status=RunStatus.RUNNING, lease_until__lt=now),
        pk=run_id,
        cancel_requested=False,
    ).update(
        status=RunStatus.RUNNING,
        lease_owner=owner,
        lease_until=now + timedelta(seconds=lease_seconds()),
        attempts=F("attempts") + 1,
        # The first start stays: a resume after a wait or a dead worker continues the same run,
        # and its elapsed time counts from when it began.
        started_at=Coalesce("started_at", Value(now)),
    )
    return taken == 1


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


def run_finish(
    run_id: Any, *, owner: str, status: str, reason: str = "", output: Any = None
) -> bool:
    """Ends the run and releases the lease in one write; False if the lease was lost meanwhile."""
    fields: dict[str, Any] = {"status": status, "reason": reason[:5000], "lease_owner": ""}
    fields["lease_until"] = None
    if status == RunStatus.WAITING:
        pass  # the answer re-queues it; output and finish time come later
    else:
        fields["output"] = output
        fields["finished_at"] = timezone.now()
    return (
        Run.objects.filter(pk=run_id, lease_owner=owner, status=RunStatus.RUNNING).update(**fields)
        == 1
    )
