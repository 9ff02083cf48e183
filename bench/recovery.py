"""Recovery from a killed worker: how soon its runs run again elsewhere, and what is lost.

Setup as in production's distributed mode, on loopback: PostgreSQL, Redis, real Celery worker
processes (solo pool, production's lease settings) and Celery beat running the reaper on its
production schedule; the fake LLM server in its own process streams every answer slowly (about
3 s a call). Each round:

1. worker A starts alone and takes RUNS three-agent runs; the bench waits until A holds all of
   them and every one has its first model call in flight;
2. worker B starts and reports itself ready;
3. A is SIGKILLed; from that instant the bench polls the runs (every 50 ms) and records, for
   each, when it is running again under B's lease;
4. every run is awaited to its end.

Figures: resume time per run (from the kill to B holding it; p50 and max over all rounds),
`runs_lost` (runs that did not succeed), and `duplicate_calls`: successful provider calls beyond
one per step, counted at the fake server (a request is successful when its whole reply was
sent; a call cut by the kill is not, and must be made again).

    python bench/recovery.py               # 3 rounds of 20 runs
    python bench/recovery.py --rounds 1

Database and Redis: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/a2a_bench) and
BENCH_REDIS_URL (default redis://127.0.0.1:6379/12; flushed). Bounded; it stops every process it
started. The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
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
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
STEPS_PER_RUN = 3
# About 6 s per call: every run is mid-call when the worker dies, and a round stays short.
SLOW_STREAM = {
    "reply": "A considered answer, streamed slowly.",
    "chunks": 20,
    "chunk_delay_ms": 300,
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


def wait_until(condition: Any, *, timeout: float, what: str, interval: float = 0.05) -> Any:
    """Polls another process's progress: there is no event to await across processes."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


# --- the fake provider --------------------------------------------------------------------------


def start_fakellm() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "agents.fakellm", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(f"{url}/_fakellm/health", timeout=1):
                return True
        except OSError:
            return False

    wait_until(healthy, timeout=30, what="the fake LLM server")
    return process, url


def fakellm_post(url: str, path: str, body: dict[str, Any] | None = None) -> None:
    request = urllib.request.Request(
        f"{url}{path}",
        data=json.dumps(body or {}).encode(),
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=5).read()


def fakellm_requests(url: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{url}/_fakellm/requests", timeout=10) as response:
        return list(json.loads(response.read())["requests"])


# --- processes ----------------------------------------------------------------------------------


def environment(fakellm_url: str) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("A2A_RUN_LEASE_SECONDS", "A2A_RUN_HEARTBEAT_SECONDS", "A2A_RUN_REAPER_SECONDS"):
        env.pop(name, None)  # production's defaults are what is measured
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "a2a_site.settings",
            "DATABASE_URL": DATABASE_URL,
            "REDIS_URL": REDIS_URL,
            "A2A_EXECUTION_MODE": "celery",
            "A2A_DEMO_MODEL_URL": fakellm_url,
            "A2A_OUTBOUND_ALLOWED_HOSTS": "127.0.0.1",
            "A2A_EXECUTOR_AUTOSTART": "false",
            "DEBUG": "false",
            "SECRET_KEY": "bench-recovery-" + "k" * 60,
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def start_worker(name: str, env: dict[str, str], logs: Path) -> subprocess.Popen[bytes]:
    log = (logs / f"{name}.log").open("wb")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "a2a_site",
            "worker",
            "--pool=solo",
            "--concurrency=1",
            "--loglevel=WARNING",
            "-n",
            f"{name}@%h",
            "--without-mingle",
            "--without-gossip",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def start_beat(env: dict[str, str], logs: Path) -> subprocess.Popen[bytes]:
    log = (logs / "beat.log").open("wb")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "a2a_site",
            "beat",
            "--loglevel=WARNING",
            "-s",
            str(logs / "celerybeat-schedule"),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def worker_ready(process: subprocess.Popen[bytes]) -> bool:
    from workflows.models import Worker

    if process.poll() is not None:
        raise SystemExit(f"a worker exited with {process.returncode}")
    return Worker.objects.filter(pid=process.pid, stopped_at=None).exists()


# --- set-up ---------------------------------------------------------------------------------------


def prepare(fakellm_url: str) -> Any:
    import psycopg

    name = DATABASE_URL.rsplit("/", 1)[1]
    admin = DATABASE_URL.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{name}"')
    os.environ.update(environment(fakellm_url))
    import django

    django.setup()
    import redis
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    client.close()
    return pipeline()


def pipeline() -> Any:
    from a2a_site.accounts.models import Membership, Role, User, Workspace
    from agents.services.agents import agent_create
    from agents.services.providers import ProviderInput, provider_create
    from workflows.graph import examples
    from workflows.services.workflows import workflow_create, workflow_publish

    user, _ = User.objects.get_or_create(username="bench")
    workspace = Workspace.objects.create(name=f"Recovery {time.time_ns()}", created_by=user)
    Membership.objects.create(workspace=workspace, user=user, role=Role.OWNER)
    provider = provider_create(
        workspace=workspace, user=user, data=ProviderInput(kind="demo", name="Demo")
    )
    ids = [
        str(
            agent_create(
                workspace=workspace,
                user=user,
                name=name,
                description="",
                config={"role": role, "model": {"provider_id": str(provider.pk), "model": "demo"}},
                known_tools=[],
            ).pk
        )
        for name, role in (
            ("Researcher", "a meticulous researcher"),
            ("Analyst", "a sharp analyst"),
            ("Writer", "a clear writer"),
        )
    ]
    graph = examples.research_pipeline(*ids)
    workflow = workflow_create(workspace=workspace, user=user, name="Recovery bench", graph=graph)
    workflow_publish(workflow=workflow, user=user)
    return workflow


# --- one round ------------------------------------------------------------------------------------


def one_round(
    number: int, workflow: Any, fakellm_url: str, runs: int, env: dict[str, str], logs: Path
) -> dict[str, Any]:
    from django.db.models import Q

    from workflows.models import Run
    from workflows.services.runs import run_start

    fakellm_post(fakellm_url, "/_fakellm/reset")
    fakellm_post(fakellm_url, "/_fakellm/script", {"rules": [SLOW_STREAM]})
    first = start_worker(f"recovery-a{number}-{os.getpid()}", env, logs)
    second: subprocess.Popen[bytes] | None = None
    try:
        wait_until(lambda: worker_ready(first), timeout=60, what="worker A")
        ids = [
            run_start(workflow=workflow, user=None, inputs={"topic": f"r{number} t{i}"}).pk
            for i in range(runs)
        ]
        held_by_a = Q(status="running", lease_owner__contains=f":{first.pid}:")
        wait_until(
            lambda: Run.objects.filter(held_by_a, pk__in=ids).count() == runs,
            timeout=60,
            what="worker A to hold every run",
        )
        # Every run's first call in flight, so the kill cuts calls as well as runs.
        wait_until(
            lambda: len(fakellm_requests(fakellm_url)) >= runs,
            timeout=60,
            what="every run's first call",
        )
        second = start_worker(f"recovery-b{number}-{os.getpid()}", env, logs)
        wait_until(lambda: worker_ready(second), timeout=60, what="worker B")
        if Run.objects.filter(held_by_a, pk__in=ids).count() != runs:
            raise SystemExit("a run ended before the kill: make the replies slower")

        os.kill(first.pid, signal.SIGKILL)
        killed = time.monotonic()
        first.wait(10)
        on_b = Q(lease_owner__contains=f":{second.pid}:") | Q(
            status__in=["succeeded", "failed", "cancelled"]
        )
        resumed: dict[Any, float] = {}
        deadline = killed + 120
        while len(resumed) < runs and time.monotonic() < deadline:
            now = time.monotonic()
            for run_id in Run.objects.filter(on_b, pk__in=ids).values_list("pk", flat=True):
                resumed.setdefault(run_id, now - killed)
            time.sleep(0.05)
        wait_until(
            lambda: not Run.objects.filter(pk__in=ids, status__in=["queued", "running"]).exists(),
            timeout=180,
            interval=0.2,
            what="every run to end",
        )
    finally:
        stop(first)
        if second is not None:
            stop(second)
    finished = Run.objects.filter(pk__in=ids)
    succeeded = finished.filter(status="succeeded").count()
    answered = sum(1 for entry in fakellm_requests(fakellm_url) if entry.get("answered"))
    return {
        "round": number,
        "runs": runs,
        "resumed": len(resumed),
        "resume_s": sorted(round(value, 2) for value in resumed.values()),
        "runs_lost": runs - succeeded,
        "calls_made": len(fakellm_requests(fakellm_url)),
        "successful_calls": answered,
        "duplicate_calls": max(0, answered - succeeded * STEPS_PER_RUN),
        "attempts": sorted(set(finished.values_list("attempts", flat=True))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    fake, url = start_fakellm()
    logs = Path(tempfile.mkdtemp(prefix="a2a-recovery-bench-"))
    beat: subprocess.Popen[bytes] | None = None
    try:
        workflow = prepare(url)
        env = environment(url)
        beat = start_beat(env, logs)
        rounds = []
        for number in range(1, args.rounds + 1):
            result = one_round(number, workflow, url, args.runs, env, logs)
            print(json.dumps(result))
            rounds.append(result)
    finally:
        if beat is not None:
            stop(beat)
        stop(fake)
    times = [value for result in rounds for value in result["resume_s"]]
    never = sum(result["runs"] - result["resumed"] for result in rounds)
    print(
        json.dumps(
            {
                "rounds": len(rounds),
                "runs_per_round": args.runs,
                "resume_p50_s": round(percentile(times, 0.5), 2),
                "resume_max_s": round(max(times), 2) if times else None,
                "runs_not_resumed": never,
                "runs_lost": sum(result["runs_lost"] for result in rounds),
                "duplicate_calls": sum(result["duplicate_calls"] for result in rounds),
            }
        )
    )


if __name__ == "__main__":
    main()
