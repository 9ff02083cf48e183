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


def _database_figures(vendor: str) -> dict[str, str]:
    """Connections and size, as the database itself reports them; unknown figures say so."""
    details: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            if vendor == "postgresql":
                cursor.execute(
                    "SELECT count(*), current_setting('max_connections')::int,"
                    " pg_database_size(current_database())"
                    " FROM pg_stat_activity WHERE datname = current_database()"
                )
                used, limit, size = cursor.fetchone()
                details["connections"] = f"{used} of {limit} allowed"
                details["size"] = _bytes(size)
            else:
                name = settings.DATABASES["default"]["NAME"]
                details["connections"] = "one per thread (a file, not a server)"
                details["size"] = _bytes(os.path.getsize(name)) if os.path.exists(name) else "?"
    except Exception as error:  # noqa: BLE001 - figures are extras; the probe answered
        details["figures"] = f"not readable ({type(error).__name__})"
    return details


def _bytes(value: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


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
    return Probe(
        "Database",
        True,
        f"{vendor}, answered in {_ms(started)}. Holds everything stored: runs, events, ledger.",
        _database_figures(connection.vendor),
    )


def _redis_info() -> dict[str, Any]:
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        return client.info()  # type: ignore[return-value]
    finally:
        client.close()


def probe_redis() -> Probe:
    if not settings.REDIS_URL:
        return Probe(
            "Redis",
            True,
            "Not used in the embedded mode: runs are handed to this process's executor and "
            "live events stay in its memory. Set REDIS_URL for the distributed mode.",
            used=False,
        )
    import redis

    started = time.perf_counter()
    try:
        info = _redis_info()
    except (redis.RedisError, ValueError) as error:
        return Probe("Redis", False, f"Redis does not answer ({type(error).__name__}).")
    uses = ["live events (channel layer)", "cache (download progress, limits)"]
    if settings.EXECUTION_MODE == "celery":
        uses.insert(0, "run dispatch (Celery broker)")
    limit = int(info.get("maxmemory") or 0)
    memory = str(info.get("used_memory_human", "?"))
    return Probe(
        "Redis",
        True,
        f"Redis {info.get('redis_version', '?')}, answered in {_ms(started)}.",
        {
            "used for": ", ".join(uses),
            "memory used": f"{memory} of {_bytes(limit)}" if limit else f"{memory} (no limit)",
            "clients": str(info.get("connected_clients", "?")),
            "operations": f"{info.get('instantaneous_ops_per_sec', '?')}/s",
            "eviction policy": str(info.get("maxmemory_policy", "?")),
        },
    )


@dataclass(frozen=True)
class QueueDepth:
    name: str
    waiting: int | None  # None: not readable now
    about: str = ""  # what waits in it, for the page ("Normal runs")


@dataclass(frozen=True)
class Queues:
    used: bool
    summary: str
    queues: list[QueueDepth] = field(default_factory=list)
    unacked: int | None = None  # delivered to a worker, not acknowledged yet


def queue_about(name: str) -> str:
    """What waits in a queue of ours, in words; "" for one this project does not name."""
    from workflows.services.dispatch import PRIORITY_QUEUES

    about = {
        PRIORITY_QUEUES[2]: "High-priority runs",
        PRIORITY_QUEUES[1]: "Normal runs",
        PRIORITY_QUEUES[0]: "Low-priority runs",
        getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", "celery"): (
            "Other tasks (the reaper, deliveries, model pulls)"
        ),
    }
    return about.get(name, "")


def celery_queue_names() -> list[str]:
    """The queues workers consume: the settings' (runs by priority, and Celery's default one
    for every other task), then any a route names."""
    names = list(getattr(settings, "CELERY_TASK_QUEUES", None) or {})
    default = getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", "celery")
    if default not in names:
        names.append(default)
    for route in (getattr(settings, "CELERY_TASK_ROUTES", None) or {}).values():
        queue = route.get("queue") if isinstance(route, dict) else None
        if queue and queue not in names:
            names.append(queue)
    return names


def celery_queues() -> Queues:
    """How many tasks wait in each Celery queue of the broker (Redis lists)."""
    if settings.EXECUTION_MODE != "celery" or not settings.REDIS_URL:
        return Queues(False, "Not used in the embedded mode: no queue, runs start in-process.")
    import redis

    prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("global_keyprefix", "")
    names = celery_queue_names()
    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1
        )
        try:
            pipe = client.pipeline()
            for name in names:
                pipe.llen(f"{prefix}{name}")
            pipe.hlen(f"{prefix}unacked")
            *lengths, unacked = pipe.execute()
        finally:
            client.close()
    except (redis.RedisError, ValueError) as error:
        return Queues(
            True,
            f"Queue depth not readable: Redis does not answer ({type(error).__name__}).",
            [QueueDepth(name, None, queue_about(name)) for name in names],
        )
    waiting = sum(lengths)
    return Queues(
        True,
        "Nothing waits: workers take tasks as they come."
        if not waiting
        else f"{waiting} task(s) wait for a worker.",
        [
            QueueDepth(name, int(n), queue_about(name))
            for name, n in zip(names, lengths, strict=True)
        ],
        int(unacked),
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
