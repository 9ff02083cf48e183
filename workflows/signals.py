"""Celery worker lifecycle: start beating when the worker is ready, say goodbye on shutdown."""

from __future__ import annotations

from typing import Any

from celery.signals import worker_process_shutdown, worker_ready, worker_shutdown

from workflows.workers import HeartbeatThread

_heartbeat: HeartbeatThread | None = None


@worker_ready.connect
def _start_heartbeat(sender: Any = None, **kwargs: Any) -> None:
    global _heartbeat
    name = getattr(sender, "hostname", None) or "celery"
    _heartbeat = HeartbeatThread(name=name, kind="celery")
    _heartbeat.start()
    from a2a_site.process_gauges import gauges

    gauges.publisher_ensure(kind="celery")


@worker_shutdown.connect
def _stop_heartbeat(**kwargs: Any) -> None:
    if _heartbeat is not None:
        _heartbeat.stop()
    _stop_executor()


@worker_process_shutdown.connect
def _stop_pool_process_executor(**kwargs: Any) -> None:
    _stop_executor()


def _stop_executor() -> None:
    """A worker that stops ends the leases of the runs it still executes, so another worker
    resumes them at the reaper's next round rather than after the lease."""
    from workflows import executor

    if executor._executor is not None:
        executor._executor.shutdown()
        executor._executor = None
