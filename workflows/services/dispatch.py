"""Handing a run to whatever executes runs here: Celery workers, or this very process.

Dispatch never raises. The run is committed before it is dispatched, so a broker that is down
(Redis restarting) must not turn a launch, an answer or a retry into an error: the failure is
logged, the run is marked as due for dispatch, and the reaper's next round sends it again.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

logger = logging.getLogger(__name__)


# One Celery queue per run priority; a worker consumes them all (high first, see the
# settings' CELERY_TASK_QUEUES and queue_order_strategy). They hold runs' messages only, and a
# solo-pool worker takes them without acknowledgements (no_ack; other pools keep late acks,
# see workflows/signals.py): a run's message is a wake-up for a run the database already holds
# as queued, handed to the executor the moment it is read, so the broker's bookkeeping of
# unacknowledged messages (a Redis round trip as each is read, another as it is acknowledged)
# would only protect the instant between the two. A worker that dies in
# that instant leaves the run queued, and the reaper sends it again after
# RUN_QUEUED_REDISPATCH_SECONDS, as it would once a message was lost any other way; Redis's own
# recovery of unacknowledged messages takes the visibility timeout (an hour). Every other task
# keeps Celery's "celery" queue and its late acknowledgements.
PRIORITY_QUEUES = {0: "a2a-runs-low", 1: "a2a-runs", 2: "a2a-runs-high"}
# Where run messages went before normal runs had a queue of their own: a worker still takes
# them from there (with acknowledgements), and the memory guard stops consuming it too.
EARLIER_RUN_QUEUE = "celery"


def run_queue(priority: int | None) -> str:
    return PRIORITY_QUEUES.get(1 if priority is None else int(priority), PRIORITY_QUEUES[1])


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
            if priority is None:
                priority = _priority_of(run_id)
            run_message_send(str(run_id), run_queue(priority))
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


_origin: tuple[int, str] | None = None


def _origin_name() -> str:
    """Who sent the message, as Celery names a process that is not a worker."""
    global _origin
    pid = os.getpid()
    if _origin is None or _origin[0] != pid:
        _origin = (pid, f"gen{pid}@{socket.gethostname()}")
    return _origin[1]


@functools.cache
def _publishing() -> tuple[bool, bool, dict[str, Any]]:
    """(eager, retry, retry policy) from the Celery configuration, read once per process: each
    lookup in Celery's settings costs some 25 µs."""
    from a2a_site.celery import app

    conf = app.conf
    return (
        bool(conf.task_always_eager),
        bool(conf.task_publish_retry),
        dict(conf.task_publish_retry_policy or {}),
    )


_declared: set[tuple[int, str]] = set()


def run_message_send(run_id: str, queue: str) -> None:
    """Sends the message `run_execute.apply_async((run_id,), queue=queue)` would send: the same
    Celery task message (protocol 2, JSON, the same headers), through the same producer pool,
    to the same queue, with the same publish retry policy, for half the CPU. What a launch paid
    apply_async for and a run's message never uses is left out: merging the task's options,
    routing, the arguments' safe repr, the publish signals (nothing here listens to them), and
    the queue's declaration at every send (once per process is enough: a direct queue is
    reached by its name through the default exchange). Workers take it as any other message
    of the task: their own strategy, late acknowledgement, then the lease."""
    from a2a_site.celery import app
    from workflows.tasks import run_execute

    eager, retry, policy = _publishing()
    if eager:
        run_execute.apply_async((run_id,), queue=queue)
        return
    task_id = str(uuid.uuid4())
    headers: dict[str, Any] = {
        "lang": "py",
        "task": run_execute.name,
        "id": task_id,
        "shadow": None,
        "eta": None,
        "expires": None,
        "group": None,
        "group_index": None,
        "retries": 0,
        "timelimit": [None, None],
        "root_id": task_id,
        "parent_id": None,
        "argsrepr": repr((run_id,)),
        "kwargsrepr": "{}",
        "origin": _origin_name(),
        "ignore_result": True,
        "replaced_task_nesting": 0,
        "stamped_headers": None,
        "stamps": {},
    }
    body: tuple[Any, ...] = (
        (run_id,),
        {},
        {"callbacks": None, "errbacks": None, "chain": None, "chord": None},
    )
    key = (os.getpid(), queue)
    declare = None if key in _declared else [app.amqp.queues[queue]]
    with app.producer_or_acquire() as producer:
        producer.publish(
            body,
            exchange="",
            routing_key=queue,
            declare=declare,
            serializer="json",
            headers=headers,
            correlation_id=task_id,
            delivery_mode=2,
            priority=0,
            retry=retry,
            retry_policy=policy,
        )
    if declare:
        _declared.add(key)


def dispatch_overdue(run_id: Any) -> None:
    """Backdates the run's dispatch so the reaper's next round finds it stale and resends it."""
    from workflows.models import Run, RunStatus

    due = timezone.now() - timedelta(seconds=settings.RUN_QUEUED_REDISPATCH_SECONDS + 1)
    try:
        Run.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(dispatched_at=due)
    except Exception:  # noqa: BLE001 - then the reaper resends it after the usual wait
        logger.exception("Run %s: could not mark it for re-dispatch", run_id)
