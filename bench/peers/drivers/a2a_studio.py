"""A2A Studio running the workloads, launch to result, in one of its two modes.

    embedded     SQLite, the in-process executor (this process)
    distributed  PostgreSQL, one Celery worker process (solo pool), Redis

Every run is launched through `run_start` (validation, the Run row, dispatch on commit) and
timed until its result is stored: the run's `finished_at`, written by the statement that ends
it (a poller or a viewer's replay sees the result from then on). That is the figure beside the
peers, whose callers hold their result in memory. Also measured, as "seen": until this process
saw the run finished — the in-process executor's future in embedded mode, which also waits for
the work after the end (search text, the parents' totals, the finished event, waking waiting
runs); in distributed mode a poll of the run's status every POLL_S, which on a loaded machine
adds the poller's own scheduling delays. The figures include everything a run pays here:
persistence of every step and event, leases, live publishing, the ledger. Model calls go to the
fake server; their model names set the latency.

The Celery hop is the run's own timestamps: `dispatched_at` (set as `run_start` writes the row,
before the message is sent) to `started_at` (set when a worker acquires the lease).

Prints one JSON line like the other drivers, plus "hops_ms", "stream_share" is left to the
caller (it reads the fake server's log), and, with --capacity N, N concurrent three-step runs on
the one worker at 1 s latency (ideal 3 s) with the worker's peak RSS, when the last of them was
leased (`last_leased_s`) and over how long each wave of their calls went out
(`call_waves_spread_s`: the runs' first calls, second, third).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import CALLS, CRITICAL, model_name  # noqa: E402

POSTGRES_URL = os.environ.get(
    "BENCH_PEERS_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/a2a_peers"
)
REDIS_URL = os.environ.get("BENCH_PEERS_REDIS_URL", "redis://127.0.0.1:6379/8")
POLL_S = 0.002
CAPACITY_POLL_S = 0.1
TERMINAL = ("succeeded", "failed", "cancelled")


def configure(mode: str, fakellm_root: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "a2a_site.settings"
    os.environ["A2A_DEMO_MODEL_URL"] = fakellm_root
    os.environ["A2A_EXECUTOR_AUTOSTART"] = "false"
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ["DEBUG"] = "false"  # DEBUG records every query: not what production pays
    os.environ.setdefault("SECRET_KEY", "bench-" + "k" * 60)
    os.environ["A2A_RUNS_PER_PROCESS"] = "400"
    if mode == "distributed":
        os.environ["DATABASE_URL"] = POSTGRES_URL
        os.environ["REDIS_URL"] = REDIS_URL
        os.environ["A2A_EXECUTION_MODE"] = "celery"
        _ensure_postgres_database()
        _flush_redis()
    else:
        os.environ["A2A_VAR_DIR"] = tempfile.mkdtemp(prefix="a2a-peers-")
        os.environ.pop("DATABASE_URL", None)
        os.environ.pop("REDIS_URL", None)
        os.environ["A2A_EXECUTION_MODE"] = "embedded"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _ensure_postgres_database() -> None:
    import psycopg

    name = POSTGRES_URL.rsplit("/", 1)[1]
    admin = POSTGRES_URL.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        if not connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [name]
        ).fetchone():
            connection.execute(f'CREATE DATABASE "{name}"')


def _flush_redis() -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    client.close()


class Studio:
    """One workspace, five agents and the two workflows per model latency."""

    def __init__(self) -> None:
        from a2a_site.accounts.models import Membership, Role, User, Workspace
        from agents.services.providers import ProviderInput, provider_create

        self.user, _ = User.objects.get_or_create(username="bench-peers")
        self.workspace = Workspace.objects.create(
            name=f"Peers bench {time.time_ns()}", created_by=self.user
        )
        Membership.objects.create(workspace=self.workspace, user=self.user, role=Role.OWNER)
        self.provider = provider_create(
            workspace=self.workspace, user=self.user, data=ProviderInput(kind="demo", name="Fake")
        )
        self.workflows: dict[tuple[str, int], Any] = {}
        self.executor: Any = None
        self.launched_wall = 0.0
        self.rss_peak = 0
        self.launch_cpu_s = 0.0
        self.worker: Any = None  # psutil.Process of the Celery worker, in distributed mode

    def workflow(self, kind: str, latency_ms: int) -> Any:
        key = ("W2" if kind == "W2" else "W1", latency_ms)
        if key not in self.workflows:
            self.workflows[key] = self._publish(*key)
        return self.workflows[key]

    def _publish(self, kind: str, latency_ms: int) -> Any:
        from agents.services.agents import agent_create
        from workflows.graph import examples
        from workflows.services.workflows import workflow_create, workflow_publish

        ids = [
            str(
                agent_create(
                    workspace=self.workspace,
                    user=self.user,
                    name=f"{kind} agent {index} at {latency_ms} ms",
                    description="",
                    config={
                        "role": "a bench agent",
                        "model": {
                            "provider_id": str(self.provider.pk),
                            "model": model_name(latency_ms),
                        },
                    },
                    known_tools=[],
                ).pk
            )
            for index in range(CALLS[kind])
        ]
        graph = examples.research_pipeline(*ids) if kind == "W1" else _fan_out_graph(ids)
        workflow = workflow_create(
            workspace=self.workspace, user=None, name=f"{kind} {latency_ms} ms", graph=graph
        )
        workflow_publish(workflow=workflow, user=None)
        return workflow

    def launch(self, workflow: Any, topic: str) -> tuple[Any, float]:
        from workflows.services.runs import run_start

        self.launched_wall = time.time()
        launched = time.perf_counter()
        cpu = time.thread_time()
        run = run_start(workflow=workflow, user=None, inputs={"topic": topic})
        self.launch_cpu_s += time.thread_time() - cpu
        return run, launched

    def cpu_s(self) -> float:
        """CPU seconds spent on runs so far: this process's and the worker's (the database
        servers' own are not counted). In distributed mode only the launches of this process
        count: the rest of its time is the bench polling for results."""
        if self.worker is None:
            return time.process_time()
        times = self.worker.cpu_times()
        return float(times.user + times.system) + self.launch_cpu_s

    def wait(
        self, run_ids: list[Any], watch: Any = None, poll_s: float = POLL_S
    ) -> dict[Any, float]:
        """Waits until every run is finished; when each was seen finished (perf_counter)."""
        from workflows.models import Run

        seen: dict[Any, float] = {}
        if self.executor is not None:
            for run_id in run_ids:
                future = self.executor._active.get(str(run_id))
                if future is not None:
                    future.result(timeout=600)
                    seen[run_id] = time.perf_counter()
        pending = [run_id for run_id in run_ids if run_id not in seen]
        deadline = time.monotonic() + 900
        rss_peak = 0
        while pending:
            if watch is not None:
                rss_peak = max(rss_peak, watch.memory_info().rss)
            done = set(
                Run.objects.filter(pk__in=pending, status__in=TERMINAL).values_list("pk", flat=True)
            )
            now = time.perf_counter()
            for run_id in done:
                seen[run_id] = now
            pending = [run_id for run_id in pending if run_id not in done]
            if pending:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{len(pending)} runs did not finish in time")
                # Polling another process's progress: there is no event to await.
                time.sleep(poll_s)
        self.rss_peak = rss_peak
        return seen


def _fan_out_graph(ids: list[str]) -> dict[str, Any]:
    from workflows.graph.examples import agent, edge, graph, node, text_variable

    branches = [
        agent(f"branch-{i}", ids[i], 300 * i, "Study {{ topic }} from angle " + str(i), f"part{i}")
        for i in range(4)
    ]
    nodes = [
        node("start", "start", 0, -200, input_mapping={"topic": "topic"}),
        node("fan-out", "parallel", 0, -100),
        *branches,
        node("merge", "join", 0, 200, strategy="concatenate", output_variable="merged"),
        agent("aggregate", ids[4], 0, "Combine: {{ merged }}", "report"),
        node("end", "end", 0, 400, output="report"),
    ]
    edges = [
        edge("start", "fan-out"),
        *[edge("fan-out", f"branch-{i}") for i in range(4)],
        *[edge(f"branch-{i}", "merge") for i in range(4)],
        edge("merge", "aggregate"),
        edge("aggregate", "end"),
    ]
    variables = [
        text_variable(name)
        for name in ("topic", "part0", "part1", "part2", "part3", "merged", "report")
    ]
    return graph(nodes, edges, variables, "report")


def _check(run_ids: list[Any]) -> dict[str, Any]:
    from workflows.models import Run

    rows = list(
        Run.objects.filter(pk__in=run_ids).values(
            "pk", "status", "reason", "dispatched_at", "started_at", "finished_at"
        )
    )
    failed = [row for row in rows if row["status"] != "succeeded"]
    if failed:
        raise RuntimeError(
            f"{len(failed)} of {len(rows)} runs did not succeed: "
            f"{failed[0]['status']} ({failed[0]['reason'][:300]})"
        )
    return {row["pk"]: row for row in rows}


def time_case(studio: Studio, case: dict[str, Any], hops: list[float]) -> dict[str, Any]:
    kind = case["workload"]
    latency = int(case["latency_ms"])
    workflow = studio.workflow(kind, latency)
    warm, _ = studio.launch(workflow, "warm-up")
    studio.wait([warm.pk])
    _check([warm.pk])
    result: dict[str, Any] = dict(case)
    if kind == "W3":
        count = int(case["pipelines"])
        started = time.perf_counter()
        started_wall = time.time()
        runs = [studio.launch(workflow, f"topic {i}")[0] for i in range(count)]
        studio.wait([run.pk for run in runs])
        result["wall_seen_ms"] = round((time.perf_counter() - started) * 1000, 2)
        rows = _check([run.pk for run in runs])
        last = max(row["finished_at"].timestamp() for row in rows.values())
        result["wall_ms"] = round((last - started_wall) * 1000, 2)
        result["failed"] = 0
        return result
    samples = []
    seen_samples = []
    cpu_started = studio.cpu_s()
    phases: dict[str, list[float]] = {"launch": [], "hop": [], "engine": [], "noticed": []}
    for i in range(int(case["runs"])):
        run, launched = studio.launch(workflow, f"topic {i}")
        launched_wall = studio.launched_wall
        seen = studio.wait([run.pk])[run.pk]
        seen_wall = time.time() - (time.perf_counter() - seen)
        row = _check([run.pk])[run.pk]
        seen_samples.append(((seen - launched) * 1000 - latency * CRITICAL[kind]) / CALLS[kind])
        dispatched, began, ended = row["dispatched_at"], row["started_at"], row["finished_at"]
        stored_ms = (ended.timestamp() - launched_wall) * 1000
        samples.append((stored_ms - latency * CRITICAL[kind]) / CALLS[kind])
        hops.append((began - dispatched).total_seconds() * 1000)
        # Where a run's time went, from its own timestamps (one wall clock for both processes).
        phases["launch"].append((dispatched.timestamp() - launched_wall) * 1000)
        phases["hop"].append(hops[-1])
        phases["engine"].append((ended - began).total_seconds() * 1000)
        phases["noticed"].append((seen_wall - ended.timestamp()) * 1000)
    result["overhead_per_step_ms"] = round(statistics.median(samples), 3)
    cpu_ms = (studio.cpu_s() - cpu_started) * 1000
    result["cpu_per_call_ms"] = round(cpu_ms / (len(samples) * CALLS[kind]), 3)
    result["overhead_per_step_seen_ms"] = round(statistics.median(seen_samples), 3)
    result["samples"] = len(samples)
    result["phases_p50_ms"] = {k: round(statistics.median(v), 2) for k, v in phases.items()}
    return result


LAUNCHERS = 8


def launch_concurrently(workflow: Any, count: int) -> list[Any]:
    """`count` runs launched by LAUNCHERS threads at once, as that many clients would (web or
    API requests): one thread's launches one after another spent as long as the worker took
    to execute them, and the first runs were over before the last began."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections

    from workflows.services.runs import run_start

    def launch(i: int) -> Any:
        return run_start(workflow=workflow, user=None, inputs={"topic": f"load {i}"})

    closing = threading.Barrier(LAUNCHERS)

    def close() -> None:
        closing.wait(timeout=30)  # every thread takes one: each closes its own connection
        connections.close_all()

    with ThreadPoolExecutor(LAUNCHERS) as pool:
        runs = list(pool.map(launch, range(count)))
        for closed in [pool.submit(close) for _ in range(LAUNCHERS)]:
            closed.result()
    return runs


def capacity(studio: Studio, count: int, worker: subprocess.Popen[bytes] | None) -> dict[str, Any]:
    """`count` concurrent three-step runs at 1 s per model call: ideal 3 s."""
    import psutil

    workflow = studio.workflow("W1", 1000)
    watched = psutil.Process(worker.pid) if worker is not None else psutil.Process()
    cpu_started = watched.cpu_times()
    started = time.perf_counter()
    started_wall = time.time()
    runs = launch_concurrently(workflow, count)
    launched_s = time.perf_counter() - started
    # Polled slowly: the end is read from the runs' own timestamps, and a query of 200 runs
    # every 2 ms cost the bench's process and PostgreSQL more than a core between them, on
    # the machine the worker needs.
    studio.wait([run.pk for run in runs], watch=watched, poll_s=CAPACITY_POLL_S)
    cpu_ended = watched.cpu_times()
    rows = _check([run.pk for run in runs])
    wall = max(row["finished_at"].timestamp() for row in rows.values()) - started_wall
    # The worker's (or, embedded, this process's) CPU for the runs, per model call: on one
    # worker the 200 runs are bound by it.
    cpu_s = sum(cpu_ended[:2]) - sum(cpu_started[:2])
    # Each run's own time from its dispatch to its end: what the worker made of it, apart from
    # how long this process took to launch them all.
    durations = sorted(
        (row["finished_at"] - row["dispatched_at"]).total_seconds() for row in rows.values()
    )
    waves = _waves(rows, started_wall)
    return {
        "runs": count,
        "failed": 0,
        "launch_s": round(launched_s, 3),
        "wall_s": round(wall, 3),
        "after_last_launch_s": round(wall - launched_s, 3),
        "ideal_s": 3.0,
        "ratio_to_ideal": round(wall / 3.0, 3),
        "run_p50_s": round(durations[len(durations) // 2], 3),
        "run_max_s": round(durations[-1], 3),
        "worker_rss_peak_mb": round(studio.rss_peak / 2**20, 1),
        "worker_cpu_per_call_ms": round(cpu_s * 1000 / (count * CALLS["W1"]), 3),
        "succeeded": len(rows),
        **waves,
    }


def _waves(rows: dict[Any, dict[str, Any]], started_wall: float) -> dict[str, Any]:
    """Where the time over the ideal went, from the runs' and their calls' own timestamps:
    when the last run was leased, and over how long each wave of calls (every run's first,
    second and third) was sent. A first wave that is slow to go out keeps its spread through
    the later ones, and the last run ends that much after the ideal."""
    from agents.models import LedgerEntry

    starts: dict[str, list[float]] = {}
    for run_id, started in LedgerEntry.objects.filter(run_id__in=list(rows)).values_list(
        "run_id", "started_at"
    ):
        starts.setdefault(str(run_id), []).append(started.timestamp())
    waves = [sorted(times)[:3] for times in starts.values() if len(times) >= 3]
    spreads = (
        [round(max(run[k] for run in waves) - min(run[k] for run in waves), 3) for k in range(3)]
        if waves
        else []
    )
    leased = max(row["started_at"].timestamp() for row in rows.values())
    return {"last_leased_s": round(leased - started_wall, 3), "call_waves_spread_s": spreads}


def start_worker() -> subprocess.Popen[bytes]:
    from workflows.models import Worker

    process = subprocess.Popen(
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
            f"bench-peers-{os.getpid()}@%h",
            "--without-mingle",
            "--without-gossip",
        ],
        cwd=ROOT,
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 90
    while not Worker.objects.filter(pid=process.pid).exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("the Celery worker did not start")
        time.sleep(0.1)  # the worker's registration row is in another process
    return process


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["embedded", "distributed"], required=True)
    parser.add_argument("--base-url", required=True, help="the fake server's OpenAI base URL")
    parser.add_argument("--plan", required=True, help="JSON list of cases")
    parser.add_argument("--capacity", type=int, default=0, help="concurrent runs at 1 s latency")
    args = parser.parse_args()
    configure(args.mode, args.base_url.removesuffix("/v1"))
    studio = Studio()
    worker = None
    if args.mode == "distributed":
        import psutil

        worker = start_worker()
        studio.worker = psutil.Process(worker.pid)
    else:
        from workflows.executor import process_executor

        studio.executor = process_executor()
    try:
        hops: list[float] = []
        cases = [time_case(studio, case, hops) for case in json.loads(args.plan)]
        out: dict[str, Any] = {"cases": cases, "hops_ms": [round(h, 3) for h in hops]}
        if args.capacity:
            out["capacity"] = capacity(studio, args.capacity, worker)
        from importlib.metadata import version

        out["versions"] = {"django": version("django"), "celery": version("celery")}
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(30)
    sys.stdout.write(json.dumps(out, default=str) + "\n")


if __name__ == "__main__":
    main()
