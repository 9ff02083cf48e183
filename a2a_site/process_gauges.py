"""What each process says about itself for `/metrics`: memory, event-loop lag, WebSockets, runs.

Counters (runs, calls, tokens, cost) are read from the database at scrape time, so they are
right across any number of processes for free. These figures are different: they belong to one
process and live in its memory. Each process that has any (Celery workers, daphne, the embedded
web process) writes them every few seconds to a Redis hash of its own that expires unless
renewed, so a scrape of any web process sees every live process and a dead one drops out by
itself. Without Redis (the embedded mode: one process) the scrape reads this process directly.

Measuring costs nothing on the hot paths: a WebSocket connect adds one to an integer, the lag
probe wakes four times a second, and the publisher is one thread writing one hash per interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
from typing import Any, Final

import psutil
from django.conf import settings

logger = logging.getLogger(__name__)

KEY_PREFIX: Final = "a2a:process-gauges:"
LAG_PROBE_SECONDS: Final = 0.25


class ProcessGauges:
    """This process's figures. One instance per process (`gauges`)."""

    def __init__(self) -> None:
        self.kind = "web"
        self.websocket_connections = 0
        self._lag_max = 0.0  # the worst lag seen since the last report
        self._lag_last = 0.0
        self._probed: set[int] = set()  # ids of the loops that already have a probe
        self._lock = threading.Lock()
        self._publisher: threading.Thread | None = None

    @property
    def name(self) -> str:
        # Read each time: a forked pool process inherits this object from its parent.
        return f"{socket.gethostname()}:{os.getpid()}"

    # --- measuring ---------------------------------------------------------------------------

    def websocket_opened(self) -> None:
        self.websocket_connections += 1
        self.publisher_ensure()
        with contextlib.suppress(RuntimeError):
            self.lag_probe_ensure(asyncio.get_running_loop())

    def websocket_closed(self) -> None:
        self.websocket_connections = max(0, self.websocket_connections - 1)

    def lag_probe_ensure(self, loop: asyncio.AbstractEventLoop) -> None:
        """Measures how late `loop` wakes a sleeper: the time a blocking call held it."""
        with self._lock:
            if id(loop) in self._probed:
                return
            self._probed.add(id(loop))
        if loop.is_running() and _running_loop() is loop:
            loop.create_task(self._probe(loop))
        else:
            asyncio.run_coroutine_threadsafe(self._probe(loop), loop)

    async def _probe(self, loop: asyncio.AbstractEventLoop) -> None:
        while True:
            planned = loop.time() + LAG_PROBE_SECONDS
            await asyncio.sleep(LAG_PROBE_SECONDS)
            lag = max(0.0, loop.time() - planned)
            self._lag_last = lag
            if lag > self._lag_max:
                self._lag_max = lag

    # --- reporting ---------------------------------------------------------------------------

    def snapshot(self, *, reset_lag: bool = False) -> dict[str, Any]:
        from workflows import executor

        process = psutil.Process(os.getpid())
        running = executor._executor
        lag = max(self._lag_max, self._lag_last)
        if reset_lag:
            self._lag_max = 0.0
        executes = self.kind != "web"
        serves = self.kind != "celery"
        return {
            "process": self.name,
            "kind": self.kind,
            "resident_memory_bytes": process.memory_info().rss,
            "event_loop_lag_seconds": round(lag, 6) if self._probed else None,
            "websocket_connections": self.websocket_connections if serves else None,
            "runs_in_flight": (running.active if running is not None else 0) if executes else None,
            "runs_capacity": (
                (running.capacity if running is not None else settings.RUNS_PER_PROCESS)
                if executes
                else None
            ),
            "reported_at": time.time(),
        }

    def publish(self, client: Any) -> None:
        key = KEY_PREFIX + self.name
        values = {k: "" if v is None else str(v) for k, v in self.snapshot(reset_lag=True).items()}
        pipe = client.pipeline(transaction=False)
        pipe.hset(key, mapping=values)
        pipe.expire(key, max(3, settings.WORKER_HEARTBEAT_SECONDS * 3))
        pipe.execute()

    def publisher_ensure(self, *, kind: str | None = None) -> None:
        """Starts this process's reporting thread (distributed mode only; idempotent)."""
        if kind is not None:
            self.kind = kind
        if not settings.REDIS_URL:
            return
        with self._lock:
            if self._publisher is not None and self._publisher.is_alive():
                return
            self._publisher = threading.Thread(
                target=self._publish_forever, name="process-gauges", daemon=True
            )
            self._publisher.start()

    def _publish_forever(self) -> None:
        import redis

        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2
        )
        while True:
            try:
                self.publish(client)
            except Exception as error:  # noqa: BLE001 - the next interval tries again
                logger.debug("Process gauges not published (%s).", type(error).__name__)
            time.sleep(settings.WORKER_HEARTBEAT_SECONDS)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


gauges = ProcessGauges()


def process_gauges_read() -> list[dict[str, Any]]:
    """Every live process's figures: this process's, and in the distributed mode the others' from
    Redis.

    A Redis that does not answer leaves this process's own figures, so a scrape still says
    something true (and `a2a_process_gauges_complete` says it is partial)."""
    if not settings.REDIS_URL:
        return [gauges.snapshot()]
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        keys = list(client.scan_iter(match=KEY_PREFIX + "*", count=500))
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key)
        found = pipe.execute()
    except (redis.RedisError, OSError):
        return [{**gauges.snapshot(), "partial": True}]
    finally:
        client.close()
    # The process answering the scrape is live whether or not it has reported yet.
    readings = [gauges.snapshot()]
    for raw in found:
        if not raw:
            continue  # expired between the scan and the read
        reading = {k.decode(): v.decode() for k, v in raw.items()}
        if reading.get("process") != gauges.name:
            readings.append(reading)
    return readings
