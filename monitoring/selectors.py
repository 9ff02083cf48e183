"""Reads for the monitoring pages: the worker processes, live and earlier, with their history."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone

from workflows.models import Worker
from workflows.workers import DAY_BUCKET_SECONDS, DAY_POINTS, HOUR_POINTS, is_alive, is_gone

# A worker silent for longer than this is no longer a live concern but history: restarts leave a
# row per process behind, and a list of yesterday's processes hides the one that needs attention.
# A worker known to be gone (its pid ended on this host) goes to history at once.
LIVE_WINDOW = timedelta(minutes=10)
EARLIER_SHOWN = 20

# The figures of a history point (workflows.workers.FigureRings), by position.
FIGURES = {"cpu": 1, "rss": 2, "runs": 3, "lag": 4}
SPANS = {"hour": (60, HOUR_POINTS), "day": (DAY_BUCKET_SECONDS, DAY_POINTS)}


@dataclass(frozen=True)
class WorkerRow:
    worker: Worker
    # "alive"; "silent" (stopped beating, may come back); "lost" (ended without a goodbye);
    # "stopped" (said goodbye).
    status: str
    series: dict[str, list[float | None]] = field(default_factory=dict)  # of the span shown

    @property
    def runs_percent(self) -> int | None:
        w = self.worker
        if w.runs_in_flight is None or not w.runs_capacity:
            return None
        return round(100 * w.runs_in_flight / w.runs_capacity)


@dataclass(frozen=True)
class WorkersOverview:
    current: list[WorkerRow]  # alive, or silent (not known gone) for less than LIVE_WINDOW
    earlier: list[WorkerRow]  # stopped, lost, or silent for longer; most recent first
    earlier_count: int


def history_series(
    history: dict[str, Any], *, span: str, figure: str, now: datetime
) -> list[float | None]:
    """One figure of a worker's ring on a fixed time grid ending now (oldest first); a slot
    without a point (the process was not running, or not yet) is None."""
    seconds, count = SPANS[span]
    index = FIGURES[figure]
    last = int(now.timestamp() // seconds * seconds)
    first = last - (count - 1) * seconds
    slots: list[float | None] = [None] * count
    for point in history.get(span) or ():
        try:
            start = int(point[0])
            value = point[index]
        except (IndexError, TypeError, ValueError):
            continue
        if first <= start <= last and start % seconds == 0 and value is not None:
            slots[(start - first) // seconds] = float(value)
    return slots


def _series(worker: Worker, now: datetime, span: str) -> dict[str, list[float | None]]:
    return {
        figure: history_series(worker.history or {}, span=span, figure=figure, now=now)
        for figure in FIGURES
    }


def _status(worker: Worker, now: datetime) -> str:
    if is_alive(worker, now=now):
        return "alive"
    if worker.stopped_at:
        return "stopped"
    return "lost" if is_gone(worker) else "silent"


def workers_overview(*, span: str = "hour", now: datetime | None = None) -> WorkersOverview:
    """The workers now, with the sparklines of `span` ("hour" or "day") for the live ones."""
    now = now or timezone.now()
    recent = Q(stopped_at__isnull=True, last_seen_at__gte=now - LIVE_WINDOW)
    current: list[WorkerRow] = []
    lost: list[WorkerRow] = []
    for worker in Worker.objects.filter(recent):
        status = _status(worker, now)
        row = WorkerRow(worker, status, _series(worker, now, span))
        (lost if status == "lost" else current).append(row)
    earlier_qs = Worker.objects.exclude(recent)
    earlier = lost + [
        WorkerRow(worker, "stopped" if worker.stopped_at else "lost")
        for worker in earlier_qs[: max(EARLIER_SHOWN - len(lost), 0)]
    ]
    return WorkersOverview(
        current=current, earlier=earlier, earlier_count=earlier_qs.count() + len(lost)
    )
