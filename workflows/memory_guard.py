"""The memory guard: a Celery worker grown past `A2A_WORKER_MAX_RSS_MB` replaces itself cleanly.

Checked every run heartbeat on the executor's loop (one `psutil` read). When the worker's
resident memory is above the limit it

1. stops taking runs: it cancels its queue consumer, and a delivery that still arrives is
   sent again for another worker (`workflows.tasks.run_execute`);
2. lets the runs it executes finish, for up to `A2A_WORKER_DRAIN_SECONDS`;
3. hands over the ones still executing: a warm shutdown ends their leases
   (`RunExecutor.shutdown`), so the reaper resumes them on another worker at its next round —
   steps already completed are not run again;
4. restarts itself in place (the same command line, the same pid), as Celery's own SIGHUP
   restart does, so no supervisor is needed for it to come back.

Why not Celery's `worker_max_memory_per_child`: it exists only for the prefork pool and is
checked when a task returns. Our task returns as soon as it hands the run to the event loop, so
the child would be replaced with its runs still in flight — they would wait for their leases to
expire — and a worker whose runs are long and whose queue is quiet would never be checked. The
guard works with the solo and threads pools, where the executor lives in the worker's own process
(the README recommends solo); in a prefork child it only stops consuming and hands over.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import sys
from typing import TYPE_CHECKING

import psutil
from django.conf import settings

if TYPE_CHECKING:
    from workflows.executor import RunExecutor

logger = logging.getLogger(__name__)

# The Celery worker's node name, set when it is ready (workflows.signals): whom to tell to stop
# consuming.
worker_hostname: str | None = None


async def memory_guard(executor: RunExecutor) -> None:
    limit = settings.WORKER_MAX_RSS_MB * 2**20
    process = psutil.Process(os.getpid())
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(settings.RUN_HEARTBEAT_SECONDS)
        rss = process.memory_info().rss
        if rss <= limit:
            continue
        logger.warning(
            "Worker memory %.0f MB is above A2A_WORKER_MAX_RSS_MB=%d: taking no new runs, "
            "letting %d run(s) finish for up to %d s, then handing the rest over and restarting.",
            rss / 2**20,
            settings.WORKER_MAX_RSS_MB,
            executor.active,
            settings.WORKER_DRAIN_SECONDS,
        )
        executor.draining = True
        await asyncio.to_thread(_consumer_stop)
        deadline = loop.time() + settings.WORKER_DRAIN_SECONDS
        while executor.active and loop.time() < deadline:
            await asyncio.sleep(0.1)
        logger.warning(
            "Memory guard: restarting the worker; %d run(s) handed over to other workers.",
            executor.active,
        )
        _restart_request()
        return


def _consumer_stop() -> None:
    if worker_hostname is None:
        return
    from a2a_site.celery import app
    from workflows.services.dispatch import EARLIER_RUN_QUEUE, PRIORITY_QUEUES

    # Every queue of runs, not only the normal one: a run of high or low priority sent
    # meanwhile would be taken, refused and sent again, over and over until the restart. And
    # Celery's default queue, where runs' messages went before they had queues of their own.
    for queue in sorted({*PRIORITY_QUEUES.values(), EARLIER_RUN_QUEUE}):
        try:
            app.control.cancel_consumer(queue, destination=[worker_hostname])
        except Exception as error:  # noqa: BLE001 - the refusal in run_execute still holds
            logger.warning(
                "Memory guard: could not stop consuming %s (%s).", queue, type(error).__name__
            )


def _restart_request() -> None:
    """A warm shutdown (which ends this worker's leases), then the same command line again."""
    from celery.worker import state

    atexit.register(_reexec)
    state.should_stop = 0  # type: ignore[assignment] # EX_OK: the worker's loop shuts down warm


def _reexec() -> None:
    from celery import platforms

    from a2a_site.tracing import tracing_flush

    tracing_flush()  # exec replaces the process before the SDK's own exit hook would run

    # What Celery's own restart does: keep the standard streams, close the rest (sockets).
    platforms.close_open_fds([sys.__stdin__, sys.__stdout__, sys.__stderr__])  # type: ignore[arg-type]
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])
