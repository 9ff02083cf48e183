"""Worker heartbeats: each executing process says it is alive, and how it is doing.

Every process that executes runs (a Celery worker, the web process in the embedded mode) or
serves pages (a daphne process in the distributed mode) upserts its own `Worker` row every
WORKER_HEARTBEAT_SECONDS with the figures of `process_figures()`. The row also carries short
history kept cheaply: two bounded rings (60 one-minute points, 96 quarter-hour points) that
the process keeps in memory and writes with its beat, so no table grows with time. Rows of
processes silent for WORKER_KEEP_DAYS are deleted by the beats of the living.

`process_figures()` is the one place these figures are read; an exporter reads it too.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import psutil
from django.conf import settings
from django.db import close_old_connections, connections
from django.utils import timezone

from workflows.models import Worker

logger = logging.getLogger(__name__)

HOUR_POINTS = 60  # one a minute
DAY_POINTS = 96  # one a quarter-hour
DAY_BUCKET_SECONDS = 900
LAG_TIMEOUT_S = 2.0
PRUNE_EVERY_S = 3600.0

# Event loops of this process whose lag is measured: the run executor's, and daphne's.
_watched_loops: list[asyncio.AbstractEventLoop] = []
_watched_lock = threading.Lock()


def loop_watch(loop: asyncio.AbstractEventLoop) -> None:
    """Measure this loop's lag in this process's heartbeats (idempotent)."""
    with _watched_lock:
        if loop not in _watched_loops:
            _watched_loops.append(loop)


def loop_lag_ms(loop: asyncio.AbstractEventLoop, timeout: float = LAG_TIMEOUT_S) -> float | None:
    """How long a callback waits before the loop runs it: the delay every coroutine on it sees.
    None when the loop is not running; `timeout` (in ms) when it does not get to it in time."""
    if loop.is_closed() or not loop.is_running():
        return None
    ran = threading.Event()
    started = time.perf_counter()
    try:
        loop.call_soon_threadsafe(ran.set)
    except RuntimeError:  # closed meanwhile
        return None
    if not ran.wait(timeout):
        return timeout * 1000
    return (time.perf_counter() - started) * 1000


def _watched_lag_ms() -> float | None:
    with _watched_lock:
        loops = [loop for loop in _watched_loops if not loop.is_closed()]
        _watched_loops[:] = loops
    lags = [lag for lag in (loop_lag_ms(loop) for loop in loops) if lag is not None]
    return max(lags) if lags else None


@dataclass(frozen=True)
class ProcessFigures:
    rss_bytes: int
    cpu_percent: float
    open_files: int | None
    threads: int | None
    runs_in_flight: int | None  # None: this process does not execute runs
    runs_capacity: int | None
    loop_lag_ms: float | None


def _runs_in_flight(kind: str, executes_runs: bool = True) -> tuple[int | None, int | None]:
    if kind == Worker.Kind.WEB or not executes_runs:
        # A web process of the distributed mode hands runs to Celery; the parent of a prefork
        # pool hands them to its children (each reports itself).
        return None, None
    from workflows import executor

    current = executor._executor
    if current is None:
        return 0, settings.RUNS_PER_PROCESS
    return current.active, current.capacity


def process_figures(
    process: psutil.Process, *, kind: str, executes_runs: bool = True
) -> ProcessFigures:
    """This process's figures now. `process` is kept by the caller: CPU percent is measured
    between two calls on the same object."""
    with process.oneshot():
        rss = process.memory_info().rss
        cpu = process.cpu_percent(interval=None)
        try:
            open_files: int | None = process.num_fds()
        except (AttributeError, psutil.Error):  # not on Windows
            open_files = None
        try:
            threads: int | None = process.num_threads()
        except psutil.Error:
            threads = None
    in_flight, capacity = _runs_in_flight(kind, executes_runs)
    return ProcessFigures(rss, cpu, open_files, threads, in_flight, capacity, _watched_lag_ms())


Sample = tuple[float, float, "int | None", "float | None"]  # cpu %, rss MB, in flight, lag ms


class FigureRings:
    """The last hour (a point a minute) and the last day (a point a quarter-hour) of a
    process's figures. A point is [start epoch s, CPU % (mean), RSS MB (max), runs in flight
    (max), loop lag ms (max)]; a figure not measured is null. The point of the current minute
    (quarter-hour) is rewritten with each beat until the next one begins."""

    SPANS = {"hour": (60, HOUR_POINTS), "day": (DAY_BUCKET_SECONDS, DAY_POINTS)}

    def __init__(self) -> None:
        self.rings: dict[str, deque[list[Any]]] = {
            span: deque(maxlen=points) for span, (_, points) in self.SPANS.items()
        }
        self._open: dict[str, list[Sample]] = {span: [] for span in self.SPANS}

    @staticmethod
    def _point(start: int, samples: list[Sample]) -> list[Any]:
        flights = [sample[2] for sample in samples if sample[2] is not None]
        lags = [sample[3] for sample in samples if sample[3] is not None]
        return [
            start,
            round(sum(sample[0] for sample in samples) / len(samples), 1),
            round(max(sample[1] for sample in samples), 1),
            max(flights) if flights else None,
            round(max(lags), 2) if lags else None,
        ]

    def add(self, figures: ProcessFigures, *, at: float) -> None:
        sample: Sample = (
            figures.cpu_percent,
            figures.rss_bytes / 2**20,
            figures.runs_in_flight,
            figures.loop_lag_ms,
        )
        for span, (seconds, _) in self.SPANS.items():
            ring = self.rings[span]
            start = int(at // seconds * seconds)
            if ring and ring[-1][0] == start:
                self._open[span].append(sample)
                ring[-1] = self._point(start, self._open[span])
            else:
                self._open[span] = [sample]
                ring.append(self._point(start, [sample]))

    def as_json(self) -> dict[str, list[list[Any]]]:
        return {span: list(ring) for span, ring in self.rings.items()}


def worker_heartbeat(
    *,
    name: str,
    kind: str,
    started_at: datetime,
    process: psutil.Process | None = None,
    rings: FigureRings | None = None,
    executes_runs: bool = True,
) -> Worker:
    process = process or psutil.Process(os.getpid())
    figures = process_figures(process, kind=kind, executes_runs=executes_runs)
    now = timezone.now()
    defaults: dict[str, Any] = {
        "kind": kind,
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "started_at": started_at,
        "last_seen_at": now,
        "stopped_at": None,
        **asdict(figures),
    }
    if rings is not None:
        rings.add(figures, at=now.timestamp())
        defaults["history"] = rings.as_json()
    worker, _ = Worker.objects.update_or_create(name=name, defaults=defaults)
    return worker


def worker_stopped(*, name: str) -> None:
    Worker.objects.filter(name=name).update(stopped_at=timezone.now(), runs_in_flight=None)


def workers_prune(*, now: datetime | None = None) -> int:
    """Deletes the rows of processes silent for WORKER_KEEP_DAYS: the history stays bounded."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.WORKER_KEEP_DAYS)
    deleted, _ = Worker.objects.filter(last_seen_at__lt=cutoff).delete()
    return deleted


def is_alive(worker: Worker, *, now: datetime | None = None) -> bool:
    now = now or timezone.now()
    grace = timedelta(seconds=settings.WORKER_HEARTBEAT_SECONDS * 3)
    return worker.stopped_at is None and worker.last_seen_at >= now - grace


def is_gone(worker: Worker) -> bool:
    """True when the worker's process is known to have ended without saying so: it ran on
    this host and its pid is gone, or now belongs to a process started after it. A worker on
    another host cannot be checked from here (False: only its silence says something)."""
    if worker.hostname != socket.gethostname():
        return False
    try:
        created = psutil.Process(worker.pid).create_time()
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:
        return False
    # The heartbeat starts after its process: a process created later is another one.
    return created > worker.started_at.timestamp() + 1


class HeartbeatThread(threading.Thread):
    """Beats in the background of a worker process until `stop()`; survives database hiccups."""

    def __init__(self, *, name: str, kind: str, executes_runs: bool = True) -> None:
        super().__init__(name=f"heartbeat:{name}", daemon=True)
        self.worker_name = name
        self.kind = kind
        self.executes_runs = executes_runs
        self.pid = os.getpid()
        self.started_at = timezone.now()
        self.process = psutil.Process(os.getpid())
        self.rings = FigureRings()
        self._stop_event = threading.Event()

    def run(self) -> None:
        last_prune = float("-inf")
        while True:
            close_old_connections()
            try:
                worker_heartbeat(
                    name=self.worker_name,
                    kind=self.kind,
                    started_at=self.started_at,
                    process=self.process,
                    rings=self.rings,
                    executes_runs=self.executes_runs,
                )
                if time.monotonic() - last_prune >= PRUNE_EVERY_S:
                    last_prune = time.monotonic()
                    workers_prune()
            except Exception as error:  # noqa: BLE001 - a missed beat is retried next interval
                logger.warning("Worker heartbeat missed (%s); retrying.", type(error).__name__)
            if self._stop_event.wait(settings.WORKER_HEARTBEAT_SECONDS):
                break
        close_old_connections()
        try:
            worker_stopped(name=self.worker_name)
        finally:
            connections.close_all()  # the thread ends: its connections go with it

    def stop(self, timeout: float = 5.0) -> None:
        self._stop_event.set()
        self.join(timeout)
