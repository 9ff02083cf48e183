"""Handing a run to whatever executes runs here: Celery workers, or this very process.

Dispatch never raises. The run is committed before it is dispatched, so a broker that is down
(Redis restarting) must not turn a launch, an answer or a retry into an error: the failure is
logged, the run is marked as due for dispatch, and the reaper's next round sends it again.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

logger = logging.getLogger(__name__)


# One Celery queue per run priority; a worker consumes them all (high first, see the
# settings' CELERY_TASK_QUEUES and queue_order_strategy). "celery" is Celery's default queue,
# so normal runs go where they always went.
PRIORITY_QUEUES = {0: "a2a-runs-low", 1: "celery", 2: "a2a-runs-high"}


def run_queue(priority: int | None) -> str:
    return PRIORITY_QUEUES.get(1 if priority is None else int(priority), "celery")


def _priority_of(run_id: Any) -> int:
    from workflows.models import Run

    found = Run.objects.filter(pk=run_id).values_list("priority", flat=True).first()
    return 1 if found is None else int(found)


def dispatch_run(run_id: Any, *, priority: int | None = None) -> bool:
    """Only the id travels: the worker reads everything else from the database. False if the
    run could not be handed over now (the reaper will). `priority` picks the Celery queue
    (read from the run when not given)."""
    try:
        if settings.EXECUTION_MODE == "celery":
            from workflows.tasks import run_execute

            if priority is None:
                priority = _priority_of(run_id)
            run_execute.apply_async((str(run_id),), queue=run_queue(priority))
        else:
            from workflows.executor import process_executor

            process_executor().submit(str(run_id), block=False)
    except Exception as error:  # noqa: BLE001 - the run is stored; the reaper sends it again
        logger.warning(
            "Run %s could not be dispatched (%s); the reaper will send it again.",
            run_id,
            type(error).__name__,
        )
        dispatch_overdue(run_id)
        return False
    return True


def dispatch_overdue(run_id: Any) -> None:
    """Backdates the run's dispatch so the reaper's next round finds it stale and resends it."""
    from workflows.models import Run, RunStatus

    due = timezone.now() - timedelta(seconds=settings.RUN_QUEUED_REDISPATCH_SECONDS + 1)
    try:
        Run.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(dispatched_at=due)
    except Exception:  # noqa: BLE001 - then the reaper resends it after the usual wait
        logger.exception("Run %s: could not mark it for re-dispatch", run_id)
