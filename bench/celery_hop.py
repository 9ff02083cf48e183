"""The Celery hop, launch to the engine starting, and its parts.

    python bench/celery_hop.py                 # 3 rounds of 60 runs, one solo-pool worker
    python bench/celery_hop.py --runs 100 --rounds 5

The hop is what the peers bench reports as `celery_hop_p50_ms`: from the run's `dispatched_at`
(set as `run_start` builds the row) to its `started_at` (the worker's clock as it takes the
lease). Here the worker is started by this script with probes (timestamps on one wall clock,
taken in both processes) at each hand-over, so the hop splits into:

    insert      dispatched_at → the row written and committed (the launch's INSERT)
    publish     → `apply_async` returned (the message is in Redis)
    deliver     → the worker's consumer read it (its BRPOP answered)
    consume     → the task body began (kombu, Celery's strategy and tracer, the Django fixup)
    to_loop     → the run's coroutine began on the executor's loop
    to_db       → the lease take began on a database thread (= started_at)
    lease       → the lease taken and the run read (one round trip on PostgreSQL; not in
                  the hop: started_at is read before its UPDATE)
    load        → the run's row made a snapshot (not in the hop)

and the CPU the hop costs: the launching thread's from the INSERT to the publish, and the
worker consumer thread's from its read to the hand-over to the loop.

Runs are three-step pipelines on the fake model server at 0 ms latency, launched one at a time
(the next after the previous finished, and after a pause so the worker is idle as it would be
when a launch arrives). The database and Redis come from BENCH_PEERS_DATABASE_URL and
BENCH_PEERS_REDIS_URL, as in the peers bench (its Redis database is flushed).
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench" / "peers"))
sys.path.insert(0, str(ROOT / "bench" / "peers" / "drivers"))

PARTS = ["insert", "publish", "deliver", "consume", "to_loop", "to_db", "lease", "load"]


# --- the worker, with its probes ---------------------------------------------------------------


def worker_main(stamps_path: str) -> None:
    """A Celery worker (solo pool) that appends each run's timestamps to `stamps_path`."""
    import django

    django.setup()
    from kombu.transport import redis as kombu_redis

    import workflows.executor as executor_module

    stamps: dict[str, dict[str, float]] = {}
    read = {"at": 0.0, "cpu": 0.0}
    out = open(stamps_path, "a", buffering=1)  # noqa: SIM115 - open for the worker's life

    brpop_read = kombu_redis.Channel._brpop_read

    def probed_brpop_read(self: Any, **options: Any) -> Any:
        read["at"], read["cpu"] = time.time(), time.thread_time()
        return brpop_read(self, **options)

    kombu_redis.Channel._brpop_read = probed_brpop_read  # type: ignore[method-assign]

    submit = executor_module.RunExecutor.submit

    def probed_submit(self: Any, run_id: str, *, block: bool = True) -> Any:
        began = time.time()
        stamps[str(run_id)] = {"read": read["at"], "task": began}
        try:
            return submit(self, run_id, block=block)
        finally:
            stamps[str(run_id)]["consumer_cpu"] = time.thread_time() - read["cpu"]

    executor_module.RunExecutor.submit = probed_submit  # type: ignore[method-assign]

    execute = executor_module.RunExecutor.execute

    async def probed_execute(self: Any, run_id: str) -> Any:
        stamps.setdefault(str(run_id), {})["loop"] = time.time()
        try:
            return await execute(self, run_id)
        finally:
            out.write(json.dumps({"run": str(run_id), **stamps.pop(str(run_id), {})}) + "\n")

    executor_module.RunExecutor.execute = probed_execute  # type: ignore[method-assign]

    acquire = executor_module.run_lease_acquire_reading

    def probed_acquire(run_id: Any, *, owner: str, read: Any) -> Any:
        entry = stamps.setdefault(str(run_id), {})
        entry["db"] = time.time()
        try:
            return acquire(run_id, owner=owner, read=read)
        finally:
            entry["leased"] = time.time()

    executor_module.run_lease_acquire_reading = probed_acquire

    from workflows.store import DatabaseRunStore

    budgeted = DatabaseRunStore.budgeted

    def probed_budgeted(self: Any, run_id: Any) -> Any:
        try:
            return budgeted(self, run_id)
        finally:
            stamps.setdefault(str(run_id), {})["loaded"] = time.time()

    DatabaseRunStore.budgeted = probed_budgeted  # type: ignore[method-assign]

    from a2a_site.celery import app

    app.worker_main(
        [
            "worker",
            "--pool=solo",
            "--concurrency=1",
            "--loglevel=WARNING",
            "-n",
            f"bench-hop-{os.getpid()}@%h",
            "--without-mingle",
            "--without-gossip",
        ]
    )


# --- the launcher --------------------------------------------------------------------------------


def start_worker(stamps_path: str) -> subprocess.Popen[bytes]:
    from workflows.models import Worker

    process = subprocess.Popen(
        [sys.executable, __file__, "--worker", stamps_path],
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


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--runs", type=int, default=60, help="runs per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pause", type=float, default=0.05, help="s between runs")
    args = parser.parse_args()
    if args.worker:
        worker_main(args.worker)
        return

    from run import start_fakellm  # bench/peers/run.py

    fake, url = start_fakellm([0])
    worker = None
    try:
        from a2a_studio import Studio, configure

        configure("distributed", url)
        import workflows.services.dispatch as dispatch_module
        from workflows.models import Run

        launch: dict[str, float] = {}
        dispatch_run = dispatch_module.dispatch_run

        def probed_dispatch(run_id: Any, *, priority: int | None = None) -> bool:
            launch["committed"] = time.time()
            try:
                return dispatch_run(run_id, priority=priority)
            finally:
                launch["published"] = time.time()

        dispatch_module.dispatch_run = probed_dispatch
        import workflows.services.runs as runs_module

        runs_module.dispatch_run = probed_dispatch  # type: ignore[attr-defined]

        studio = Studio()
        workflow = studio.workflow("W1", 0)
        stamps_path = tempfile.mktemp(prefix="a2a-hop-", suffix=".jsonl")
        worker = start_worker(stamps_path)
        rounds = []
        for round_index in range(args.rounds + 1):  # the first warms up
            rows = []
            for i in range(args.runs):
                cpu = time.thread_time()
                run = studio.launch(workflow, f"topic {i}")[0]
                launch_cpu = time.thread_time() - cpu
                studio.wait([run.pk])
                row = Run.objects.values("status", "dispatched_at", "started_at").get(pk=run.pk)
                if row["status"] != "succeeded":
                    raise RuntimeError(f"run {run.pk} {row['status']}")
                rows.append(
                    {
                        "run": str(run.pk),
                        "dispatched": row["dispatched_at"].timestamp(),
                        "started": row["started_at"].timestamp(),
                        "launch_cpu": launch_cpu,
                        **launch,
                    }
                )
                time.sleep(args.pause)
            if round_index:
                rounds.append(rows)
        time.sleep(0.2)  # the worker writes a run's stamps once it ended
        seen = {}
        with open(stamps_path) as stamps_file:
            for line in stamps_file:
                entry = json.loads(line)
                seen[entry["run"]] = entry
        os.unlink(stamps_path)
        summary: dict[str, Any] = {"rounds": []}
        for rows in rounds:
            parts: dict[str, list[float]] = {name: [] for name in PARTS}
            hops, launch_cpu, consumer_cpu = [], [], []
            for row in rows:
                w = seen[row["run"]]
                hops.append((row["started"] - row["dispatched"]) * 1000)
                marks = [
                    row["dispatched"],
                    row["committed"],
                    row["published"],
                    w["read"],
                    w["task"],
                    w["loop"],
                    w["db"],
                    w["leased"],
                    w["loaded"],
                ]
                for name, before, after in zip(PARTS, marks, marks[1:], strict=False):
                    parts[name].append((after - before) * 1000)
                launch_cpu.append(row["launch_cpu"] * 1000)
                consumer_cpu.append(w["consumer_cpu"] * 1000)
            result = {
                "hop_p50_ms": round(statistics.median(hops), 3),
                "hop_p95_ms": round(percentile(hops, 0.95), 3),
                "parts_p50_ms": {k: round(statistics.median(v), 3) for k, v in parts.items()},
                "launch_cpu_p50_ms": round(statistics.median(launch_cpu), 3),
                "consumer_cpu_p50_ms": round(statistics.median(consumer_cpu), 3),
            }
            summary["rounds"].append(result)
            print(
                f"hop p50 {result['hop_p50_ms']:.2f} ms, p95 {result['hop_p95_ms']:.2f} ms; "
                + ", ".join(f"{k} {v:.2f}" for k, v in result["parts_p50_ms"].items())
                + f"; cpu: launch {result['launch_cpu_p50_ms']:.2f}, "
                f"consumer {result['consumer_cpu_p50_ms']:.2f} ms",
                flush=True,
            )
        p50s = [r["hop_p50_ms"] for r in summary["rounds"]]
        summary["hop_p50_ms"] = round(statistics.median(p50s), 3)
        summary["load_average"] = os.getloadavg()
        print(json.dumps(summary))
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(30)
        fake.terminate()
        fake.wait(10)


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main()
