"""A worker's heartbeat: its figures, its bounded history, and how its end is told."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import timedelta

import psutil
from django.utils import timezone

from workflows.models import Worker
from workflows.workers import (
    DAY_POINTS,
    HOUR_POINTS,
    FigureRings,
    ProcessFigures,
    is_gone,
    process_figures,
    worker_heartbeat,
    workers_prune,
)


def figures(cpu: float = 1.0, rss_mb: float = 100, runs: int | None = 0, lag: float | None = None):
    return ProcessFigures(int(rss_mb * 2**20), cpu, 10, 4, runs, 300, lag)


def test_a_ring_point_summarises_its_minute_and_the_ring_stays_bounded() -> None:
    rings = FigureRings()
    start = 1_800_000_000 - 1_800_000_000 % 900  # a quarter-hour boundary
    rings.add(figures(cpu=10, rss_mb=100, runs=1, lag=2.0), at=start)
    rings.add(figures(cpu=30, rss_mb=150, runs=3, lag=None), at=start + 30)
    hour = rings.as_json()["hour"]
    # One point for the minute: mean CPU, highest memory, runs and lag; an unmeasured lag is
    # left out, not counted as zero.
    assert hour == [[start, 20.0, 150.0, 3, 2.0]]
    for minute in range(1, 24 * 60):
        rings.add(figures(), at=start + minute * 60)
    stored = rings.as_json()
    assert len(stored["hour"]) == HOUR_POINTS
    assert len(stored["day"]) == DAY_POINTS
    assert stored["hour"][-1][0] == start + (24 * 60 - 1) * 60
    assert stored["day"][0][0] == start


def test_the_heartbeat_records_the_process_figures_and_its_history(db) -> None:
    rings = FigureRings()
    process = psutil.Process(os.getpid())
    worker = worker_heartbeat(
        name="celery@here", kind="celery", started_at=timezone.now(), process=process, rings=rings
    )
    worker.refresh_from_db()
    assert worker.pid == os.getpid() and worker.hostname == socket.gethostname()
    assert worker.rss_bytes > 10 * 2**20
    assert worker.open_files and worker.open_files > 0
    assert worker.threads and worker.threads >= 1
    # No executor started in this process yet: none in flight, against the configured cap.
    assert (worker.runs_in_flight, worker.runs_capacity) == (0, 300)
    assert len(worker.history["hour"]) == 1 and len(worker.history["day"]) == 1


def test_a_web_process_of_the_distributed_mode_runs_nothing() -> None:
    measured = process_figures(psutil.Process(os.getpid()), kind="web")
    assert measured.runs_in_flight is None and measured.runs_capacity is None


def test_a_process_that_ended_on_this_host_is_known_gone(db) -> None:
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    now = timezone.now()
    gone = Worker(hostname=socket.gethostname(), pid=ended.pid, started_at=now, last_seen_at=now)
    assert is_gone(gone)
    me = Worker(hostname=socket.gethostname(), pid=os.getpid(), started_at=now, last_seen_at=now)
    assert not is_gone(me)
    # A pid now held by a process started after the worker's heartbeat began: another process.
    reused = Worker(
        hostname=socket.gethostname(),
        pid=os.getpid(),
        started_at=now - timedelta(days=400),
        last_seen_at=now,
    )
    assert is_gone(reused)
    elsewhere = Worker(hostname="another-host", pid=ended.pid, started_at=now, last_seen_at=now)
    assert not is_gone(elsewhere)


def test_rows_of_processes_silent_for_the_kept_days_are_deleted(db, settings) -> None:
    settings.WORKER_KEEP_DAYS = 7
    now = timezone.now()
    for name, age in (("old", 8), ("recent", 6)):
        Worker.objects.create(
            name=name,
            kind="celery",
            hostname="h",
            pid=1,
            started_at=now - timedelta(days=age),
            last_seen_at=now - timedelta(days=age),
        )
    assert workers_prune(now=now) == 1
    # Only these two: an executor started by an earlier test in this process may have
    # registered itself meanwhile, and its fresh row is not to be pruned either.
    names = Worker.objects.filter(name__in=["old", "recent"]).values_list("name", flat=True)
    assert list(names) == ["recent"]


def test_loop_lag_is_the_wait_of_a_callback_on_a_busy_loop() -> None:
    import asyncio
    import threading
    import time

    from workflows.workers import loop_lag_ms

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    assert loop_lag_ms(loop) is None  # not running: nothing to measure
    thread.start()
    try:
        from tests.support.waiting import wait_for

        wait_for(loop.is_running, timeout=5, what="the loop to run")
        idle = loop_lag_ms(loop)
        assert idle is not None and idle < 200
        # A coroutine that blocks the loop (the fault the figure is there to show).
        blocked = threading.Event()

        def block() -> None:
            blocked.set()
            time.sleep(1.0)

        loop.call_soon_threadsafe(block)
        blocked.wait(5)
        busy = loop_lag_ms(loop)
        assert busy is not None and busy >= 300
        # A loop that does not get to it in time reports the timeout, not nothing.
        loop.call_soon_threadsafe(time.sleep, 0.5)
        assert loop_lag_ms(loop, timeout=0.05) == 50.0
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
