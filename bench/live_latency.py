"""Live feed latency: from the engine publishing an event to a viewer's socket receiving it.

Setup as in production's distributed mode, on loopback: PostgreSQL, the Redis channel layer, one
real daphne process serving the run WebSocket, and a separate publisher process standing in for
the engine (it calls `workflows.live.publish_events`, as the engine does after each commit).
For 1, 50 and 200 viewers of one run: the viewers connect with a session cookie, subscribe and
wait for the replay to end; the publisher then sends EVENTS events at RATE per second, each
carrying `data.sent_at`; every viewer records `time.time() - sent_at` when the event arrives.

Both ends read `time.time()` (the system's wall clock, one kernel clock for every process on the
machine), taken just before the publisher's `publish_events` and just after the viewer's client
(aiohttp) has read the frame and parsed its JSON, so a figure spans the layer, daphne's fan-out
and frame writes, and the client's read. The viewers are real WebSocket clients, one connection
each, all in this process; every event is counted at every viewer, none sampled, and the payload
is the consumer's own (Markdown text and its rendered HTML).

    python bench/live_latency.py                 # 200 events at 20/s per phase
    python bench/live_latency.py --events 50     # quicker

Bounded counts, loopback only; it stops by itself and stops the processes it started.
The last line is one JSON object with the figures (milliseconds; `lost` = events not received).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/a2a_bench")
REDIS_URL = os.environ.get("BENCH_LIVE_REDIS_URL", "redis://127.0.0.1:6379/13")
VIEWERS = (1, 50, 200)
# Every process of the bench sees the same settings through these.
ENVIRONMENT = {
    "DJANGO_SETTINGS_MODULE": "a2a_site.settings",
    "DATABASE_URL": DATABASE_URL,
    "REDIS_URL": REDIS_URL,
    "DEBUG": "false",  # DEBUG records every query: not what production pays
    "SECRET_KEY": "bench-live-" + "k" * 60,
    "SECURE_SSL_REDIRECT": "false",
    "SESSION_COOKIE_SECURE": "false",
    "CSRF_COOKIE_SECURE": "false",
    "ALLOWED_HOSTS": "127.0.0.1",
    "A2A_EXECUTOR_AUTOSTART": "false",
    "LOG_LEVEL": "WARNING",
}


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the publisher process ----------------------------------------------------------------------


def publisher(run_id: str, events: int, rate: float) -> None:
    """Stands in for the engine: one `run.events` message per event, paced at `rate`."""
    import django

    django.setup()
    from asgiref.sync import async_to_sync

    from workflows.live import live_outbox, publish_events

    async def publish_all() -> None:
        from channels.layers import get_channel_layer

        # An engine's connection to the layer is long open: open ours before the clock starts.
        await get_channel_layer().group_send("bench.warmup", {"type": "bench.noop"})
        start = time.monotonic()
        for seq in range(1, events + 1):
            # On a schedule, not sleep-after-send, so a slow send does not lower the rate.
            delay = start + (seq - 1) / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            event = {
                "seq": seq,
                "kind": "message",
                "step_key": "bench",
                "data": {"agent": "Bench", "text": f"**Event** {seq}", "sent_at": time.time()},
                "at": "",
            }
            await publish_events(run_id, [event])
        # Publishing only queues the message (workflows.live.LiveOutbox): let the last ones go.
        await live_outbox().flush()

    # One event loop for the whole burst: the layer's connection pool is per loop.
    async_to_sync(publish_all)()


# --- the bench process ----------------------------------------------------------------------------


def prepare_database() -> None:
    import psycopg

    name = DATABASE_URL.rsplit("/", 1)[1]
    admin = DATABASE_URL.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{name}"')


def setup_django() -> None:
    os.environ.update(ENVIRONMENT)
    prepare_database()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()  # the bench owns db 13: no earlier run's groups or messages
    client.close()


def make_viewer() -> tuple[Any, str]:
    """A user in a fresh workspace, and a session key a browser would hold after logging in."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    from a2a_site.accounts.models import Membership, Role, User, Workspace

    user, _ = User.objects.get_or_create(username="bench-viewer")
    workspace = Workspace.objects.create(name=f"Live bench {time.time_ns()}", created_by=user)
    Membership.objects.create(workspace=workspace, user=user, role=Role.VIEWER)
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    assert session.session_key is not None
    return workspace, session.session_key


def make_run(workspace: Any) -> str:
    from workflows.models import Run
    from workflows.services.workflows import EMPTY_GRAPH, workflow_create, workflow_publish

    workflow = workflow_create(
        workspace=workspace, user=None, name=f"Live {time.time_ns()}", graph=EMPTY_GRAPH
    )
    version = workflow_publish(workflow=workflow, user=None)
    run = Run.objects.create(workspace=workspace, workflow=workflow, version=version)
    return str(run.pk)


def start_daphne(port: int, log: Any) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
        + ["a2a_site.asgi:application"],
        cwd=ROOT,
        env={**os.environ, **ENVIRONMENT},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"daphne exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return process
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


async def phase(
    port: int, session_key: str, run_id: str, viewers: int, events: int, rate: float
) -> dict[str, Any]:
    import aiohttp

    url = f"ws://127.0.0.1:{port}/ws/runs/{run_id}/"
    from django.conf import settings

    cookie = f"{settings.SESSION_COOKIE_NAME}={session_key}"
    headers = {"Cookie": cookie, "Origin": f"http://127.0.0.1:{port}"}
    latencies: list[float] = []
    received = [0] * viewers
    all_in = asyncio.Event()
    done_viewers = 0

    # No connection limit: each viewer holds its own connection for the whole phase.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        sockets = await asyncio.gather(
            *(http.ws_connect(url, headers=headers, max_msg_size=0) for _ in range(viewers))
        )

        async def subscribed(ws: Any) -> None:
            await ws.send_json({"type": "subscribe", "after_seq": 0})
            while (await ws.receive_json())["type"] != "status":
                pass

        await asyncio.wait_for(asyncio.gather(*(subscribed(ws) for ws in sockets)), 60)

        async def listen(index: int, ws: Any) -> None:
            nonlocal done_viewers
            async for message in ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    break
                payload = json.loads(message.data)
                if payload["type"] != "event":
                    continue
                latencies.append(time.time() - payload["data"]["sent_at"])
                received[index] += 1
                if received[index] == events:
                    done_viewers += 1
                    if done_viewers == viewers:
                        all_in.set()

        listeners = [asyncio.create_task(listen(i, ws)) for i, ws in enumerate(sockets)]
        publisher_process = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--publisher",
            run_id,
            "--events",
            str(events),
            "--rate",
            str(rate),
            cwd=ROOT,
            env={**os.environ, **ENVIRONMENT},
        )
        try:
            await asyncio.wait_for(publisher_process.wait(), events / rate + 60)
            # Whatever has not arrived a few seconds after the last send is counted lost.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(all_in.wait(), 5)
        finally:
            if publisher_process.returncode is None:
                publisher_process.kill()
                await publisher_process.wait()
            for task in listeners:
                task.cancel()
            await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
            await asyncio.gather(*listeners, return_exceptions=True)

    millis = [value * 1000 for value in latencies]
    return {
        "viewers": viewers,
        "deliveries": len(millis),
        "lost": viewers * events - sum(received),
        "p50_ms": round(percentile(millis, 0.50), 2),
        "p99_ms": round(percentile(millis, 0.99), 2),
        "max_ms": round(max(millis, default=0.0), 2),
    }


def bench(events: int, rate: float) -> dict[str, Any]:
    setup_django()
    workspace, session_key = make_viewer()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="a2a-live-bench-") as scratch:
        log_path = Path(scratch) / "daphne.log"
        with log_path.open("wb") as log:
            server = start_daphne(port, log)
            rows = []
            try:
                for viewers in VIEWERS:
                    # A fresh run per phase: its group holds only this phase's viewers.
                    run_id = make_run(workspace)
                    rows.append(
                        asyncio.run(phase(port, session_key, run_id, viewers, events, rate))
                    )
            except BaseException:
                log.flush()
                print(log_path.read_text(errors="replace")[-3000:], file=sys.stderr)
                raise
            finally:
                server.terminate()
                try:
                    server.wait(15)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait(15)

    print(f"{events} events at {rate:g}/s per phase; one daphne process; Redis channel layer")
    print(
        f"{'viewers':>8} {'deliveries':>11} {'lost':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}"
    )
    for row in rows:
        print(
            f"{row['viewers']:>8} {row['deliveries']:>11} {row['lost']:>6} "
            f"{row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f} {row['max_ms']:>8.2f}"
        )
    figures: dict[str, Any] = {"events": events, "rate_per_s": rate}
    for row in rows:
        figures[f"p50_ms_{row['viewers']}"] = row["p50_ms"]
        figures[f"p99_ms_{row['viewers']}"] = row["p99_ms"]
        figures[f"lost_{row['viewers']}"] = row["lost"]
    figures["lost"] = sum(row["lost"] for row in rows)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--publisher", metavar="RUN_ID", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.publisher:
        publisher(args.publisher, args.events, args.rate)
        return
    print(json.dumps(bench(args.events, args.rate)))


if __name__ == "__main__":
    main()
