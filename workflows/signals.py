"""Celery worker lifecycle: start beating when the worker is ready, say goodbye on shutdown."""

from __future__ import annotations

import os
from typing import Any

from celery.signals import (
    worker_init,
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
    worker_shutdown,
)

from workflows.workers import HeartbeatThread

_heartbeat: HeartbeatThread | None = None


@worker_init.connect
def _run_queues_acknowledged_unless_solo(sender: Any = None, **kwargs: Any) -> None:
    """The run queues are read without acknowledgements (settings' CELERY_TASK_QUEUES) only by
    a solo-pool worker, whose consumer hands each run over itself and stops reading while its
    process is full (`workflows.tasks.run_execute_strategy`). Any other pool takes messages
    into its pool as prefetch allows, and prefetch counts unacknowledged messages only: read
    without acknowledgements, every waiting run would be taken by the first such worker. There
    the run queues keep Celery's late acknowledgements."""
    from celery.concurrency import get_implementation
    from celery.concurrency.solo import TaskPool as SoloPool

    if sender is None or get_implementation(sender.pool_cls) is SoloPool:
        return
    from workflows.services.dispatch import PRIORITY_QUEUES

    queues = sender.app.amqp.queues
    for name in PRIORITY_QUEUES.values():
        if name in queues:
            queues[name].no_ack = False


@worker_ready.connect
def _start_heartbeat(sender: Any = None, **kwargs: Any) -> None:
    global _heartbeat
    # The price list (a few MB of JSON, about a second to read) is read now, before the worker
    # says it is ready, not by the first priced call: that read would hold the event loop, and
    # every run on it, for a second.
    from agents.llm.pricing import price_map

    price_map()
    name = getattr(sender, "hostname", None) or "celery"
    from workflows import memory_guard

    memory_guard.worker_hostname = name
    # With the prefork pool the runs execute in the children, which report themselves
    # (below); this parent executes none.
    executes_runs = not _pool_forks(sender)
    _heartbeat = HeartbeatThread(name=name, kind="celery", executes_runs=executes_runs)
    _heartbeat.start()
    if executes_runs:
        _executor_start()
    from a2a_site.process_gauges import gauges

    gauges.publisher_ensure(kind="celery")


def _pool_forks(consumer: Any) -> bool:
    """True for the prefork pool (the default): tasks execute in child processes."""
    from celery.concurrency.prefork import TaskPool

    pool_cls = getattr(getattr(consumer, "controller", None), "pool_cls", None)
    return isinstance(pool_cls, type) and issubclass(pool_cls, TaskPool)


@worker_shutdown.connect
def _stop_heartbeat(**kwargs: Any) -> None:
    if _heartbeat is not None:
        _heartbeat.stop()
    _stop_executor()


@worker_process_init.connect
def _start_pool_process_heartbeat(**kwargs: Any) -> None:
    """A child of the prefork pool executes the runs: it reports itself, as a process of its
    own (the parent's figures are not its children's)."""
    global _heartbeat
    import socket

    from billiard import current_process

    if current_process().name == "MainProcess":
        return  # the solo pool sends this too, in the worker's own process: it beats already
    _heartbeat = HeartbeatThread(name=f"pool@{socket.gethostname()}:{os.getpid()}", kind="celery")
    _heartbeat.start()
    _executor_start()


def _executor_start() -> None:
    """The executor (its event loop) starts with the process that executes runs rather than
    with its first run: the monitoring page shows the loop's lag from the start."""
    from workflows.executor import process_executor

    process_executor()


@worker_process_shutdown.connect
def _stop_pool_process_executor(**kwargs: Any) -> None:
    if _heartbeat is not None and _heartbeat.pid == os.getpid():
        _heartbeat.stop()
    _stop_executor()


def _stop_executor() -> None:
    """A worker that stops ends the leases of the runs it still executes, so another worker
    resumes them at the reaper's next round rather than after the lease."""
    from workflows import executor

    if executor._executor is not None:
        executor._executor.shutdown()
        executor._executor = None
    from a2a_site.tracing import tracing_flush

    tracing_flush()  # the spans of the runs that just ended, before the process goes
