"""Worker heartbeats: each executing process says it is alive, and how it is doing."""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import datetime, timedelta

import psutil
from django.conf import settings
from django.db import close_old_connections, connections
from django.utils import timezone

from workflows.models import Worker

logger = logging.getLogger(__name__)


def worker_heartbeat(*, name: str, kind: str, started_at: datetime) -> Worker:
    process = psutil.Process(os.getpid())
    now = timezone.now()
    worker, _ = Worker.objects.update_or_create(
        name=name,
        defaults={
            "kind": kind,
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "started_at": started_at,
            "last_seen_at": now,
            "stopped_at": None,
            "rss_bytes": process.memory_info().rss,
            "cpu_percent": process.cpu_percent(interval=None),
        },
    )
    return worker


def worker_stopped(*, name: str) -> None:
    Worker.objects.filter(name=name).update(stopped_at=timezone.now())


def is_alive(worker: Worker, *, now: datetime | None = None) -> bool:
    now = now or timezone.now()
    grace = timedelta(seconds=settings.WORKER_HEARTBEAT_SECONDS * 3)
    return worker.stopped_at is None and worker.last_seen_at >= now - grace


class HeartbeatThread(threading.Thread):
    """Beats in the background of a worker process until `stop()`; survives database hiccups."""

    def __init__(self, *, name: str, kind: str) -> None:
        super().__init__(name=f"heartbeat:{name}", daemon=True)
        self.worker_name = name
        self.kind = kind
        self.started_at = timezone.now()
        self._stop_event = threading.Event()

    def run(self) -> None:
        while True:
            close_old_connections()
            try:
                worker_heartbeat(name=self.worker_name, kind=self.kind, started_at=self.started_at)
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
