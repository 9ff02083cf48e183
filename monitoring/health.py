"""Read-only probes of the parts a run depends on; each answers quickly and never raises."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

import psutil
from django.conf import settings
from django.db import connection
from django.utils import timezone

from workflows.models import Worker
from workflows.workers import is_alive


@dataclass(frozen=True)
class Probe:
    name: str
    ok: bool
    summary: str
    details: dict[str, str] = field(default_factory=dict)
    command: str = ""  # what to run to fix it, shown as code
    used: bool = True  # False: this mode does without the part (no dot of health for it)

    @property
    def state(self) -> str:
        """`ok`, `bad`, or `unused` — a part the mode does not use is neither healthy nor not."""
        if not self.used:
            return "unused"
        return "ok" if self.ok else "bad"


def _ms(started: float) -> str:
    return f"{(time.perf_counter() - started) * 1000:.1f} ms"


def probe_database() -> Probe:
    vendor = {"postgresql": "PostgreSQL", "sqlite": "SQLite"}.get(
        connection.vendor, connection.vendor
    )
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as error:  # noqa: BLE001 - reported, not raised
        return Probe("Database", False, f"{vendor} does not answer ({type(error).__name__}).")
    return Probe("Database", True, f"{vendor}, answered in {_ms(started)}.")


def probe_redis() -> Probe:
    if not settings.REDIS_URL:
        return Probe(
            "Redis",
            True,
            "Not used: the embedded mode keeps live events in this process.",
            used=False,
        )
    import redis

    started = time.perf_counter()
    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1
        )
        try:
            info: dict[str, Any] = client.info()  # type: ignore[assignment]
        finally:
            client.close()
    except (redis.RedisError, ValueError) as error:
        return Probe("Redis", False, f"Redis does not answer ({type(error).__name__}).")
    return Probe(
        "Redis",
        True,
        f"Redis {info.get('redis_version', '?')}, answered in {_ms(started)}.",
        {
            "memory used": str(info.get("used_memory_human", "?")),
            "clients": str(info.get("connected_clients", "?")),
            "eviction policy": str(info.get("maxmemory_policy", "?")),
        },
    )


def probe_execution() -> Probe:
    if settings.EXECUTION_MODE == "embedded":
        return Probe(
            "Execution",
            True,
            "Embedded: runs execute inside the web process. Set REDIS_URL to use Celery workers.",
        )
    workers = list(Worker.objects.filter(kind=Worker.Kind.CELERY))
    now = timezone.now()
    alive = [worker for worker in workers if is_alive(worker, now=now)]
    if not alive:
        return Probe(
            "Execution",
            False,
            "Celery: no worker has reported in. Start one with:",
            command="celery -A a2a_site worker",
        )
    return Probe("Execution", True, f"Celery: {len(alive)} worker(s) alive.")


def this_process() -> dict[str, str]:
    process = psutil.Process(os.getpid())
    memory = psutil.virtual_memory()
    return {
        "web process memory": f"{process.memory_info().rss / 2**20:.0f} MB",
        "host CPU": f"{psutil.cpu_percent(interval=None):.0f}% of {psutil.cpu_count()} cores",
        "host memory": f"{memory.percent:.0f}% of {memory.total / 2**30:.1f} GB used",
    }
