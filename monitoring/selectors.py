"""Reads for the monitoring pages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from workflows.models import Worker
from workflows.workers import is_alive

# A worker silent for longer than this is no longer a live concern but history: restarts leave a
# row per process behind, and a list of yesterday's processes hides the one that needs attention.
LIVE_WINDOW = timedelta(minutes=10)
EARLIER_SHOWN = 20


@dataclass(frozen=True)
class WorkerRow:
    worker: Worker
    status: str  # "alive", "silent" (stopped beating without saying so) or "stopped"


@dataclass(frozen=True)
class WorkersOverview:
    current: list[WorkerRow]  # alive, or silent for less than LIVE_WINDOW
    earlier: list[WorkerRow]  # stopped, or silent for longer; most recent first
    earlier_count: int


def _row(worker: Worker, now: datetime) -> WorkerRow:
    if is_alive(worker, now=now):
        return WorkerRow(worker, "alive")
    return WorkerRow(worker, "stopped" if worker.stopped_at else "silent")


def workers_overview(*, now: datetime | None = None) -> WorkersOverview:
    now = now or timezone.now()
    recent = Q(stopped_at__isnull=True, last_seen_at__gte=now - LIVE_WINDOW)
    current = [_row(worker, now) for worker in Worker.objects.filter(recent)]
    earlier_qs = Worker.objects.exclude(recent)
    earlier = [_row(worker, now) for worker in earlier_qs[:EARLIER_SHOWN]]
    return WorkersOverview(current=current, earlier=earlier, earlier_count=earlier_qs.count())
