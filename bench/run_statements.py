"""What one run costs the database: SQL statements and hand-offs to the database threads.

Runs `--runs` W1 runs (three agents in sequence, `bench/engine_overhead.py`) one after the other
with the embedded executor in this process, against the fake model server at 0 ms latency, and
counts what the engine's threads send: every statement executed (on PostgreSQL a batch sent as
one round trip counts once; SQLite's `BEGIN` counts, its commit does not) and every task handed
to the pool of database threads (`a2a_site.db.in_db_thread`). Also the CPU time of those
threads per run (the main thread, which launches runs and waits for their ends, is left out).

    python bench/run_statements.py                 # SQLite (a scratch file)
    python bench/run_statements.py --postgres      # BENCH_DATABASE_URL (default a2a_bench)
    python bench/run_statements.py --by-statement  # which statements and hand-offs, per run

The last line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--by-statement", action="store_true")
    args = parser.parse_args()

    import engine_overhead as bench

    os.environ["DJANGO_SETTINGS_MODULE"] = "a2a_site.settings"
    os.environ["A2A_EXECUTOR_AUTOSTART"] = "false"
    os.environ["A2A_EXECUTION_MODE"] = "embedded"
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ["DEBUG"] = "false"
    os.environ["SECRET_KEY"] = "bench-" + "k" * 60
    if args.postgres:
        os.environ["DATABASE_URL"] = bench.POSTGRES_URL
        os.environ["REDIS_URL"] = bench.REDIS_URL
        bench._ensure_postgres_database()
    else:
        os.environ["A2A_VAR_DIR"] = tempfile.mkdtemp(prefix="a2a-statements-")
        os.environ.pop("DATABASE_URL", None)
        os.environ.pop("REDIS_URL", None)
    fake, url = bench.start_fakellm()
    os.environ["A2A_DEMO_MODEL_URL"] = url
    try:
        print(json.dumps(_measure(bench, url, args.runs, args.by_statement)))
    finally:
        fake.terminate()
        sys.stdout.flush()
        os._exit(0)  # the executor's threads end with the process


def _measure(bench: Any, url: str, runs: int, by_statement: bool) -> dict[str, Any]:
    import django

    django.setup()
    import psutil
    from django.conf import settings
    from django.core.management import call_command
    from django.db.backends import utils

    import a2a_site.db
    from workflows.executor import process_executor
    from workflows.models import Run
    from workflows.services.runs import run_start

    call_command("migrate", verbosity=0)
    bench.set_latency(url, 0)
    main_thread = threading.main_thread()
    counts: collections.Counter[str] = collections.Counter()
    seen: collections.Counter[str] = collections.Counter()
    counting = False
    execute = utils.CursorWrapper._execute_with_wrappers

    def counted(self: Any, sql: str, params: Any, many: bool, executor: Any) -> Any:
        if counting and threading.current_thread() is not main_thread:
            counts["statements"] += 1
            if by_statement:
                seen[sql[:100]] += 1
        return execute(self, sql, params, many, executor)

    utils.CursorWrapper._execute_with_wrappers = counted  # type: ignore[method-assign]

    class CountingThreads(a2a_site.db._DbThreads):
        def put(self, call: Any) -> None:
            if counting:
                counts["hand_offs"] += 1
                if by_statement:
                    func = call[3]
                    target = getattr(func, "func", func)
                    seen["hand-off: " + getattr(target, "__qualname__", str(target))] += 1
            super().put(call)

    a2a_site.db._pool = CountingThreads(a2a_site.db._pool_size())
    workspace, agents = bench._fixtures()
    workflow = bench._workflow(workspace, "W1", agents)
    executor = process_executor()
    process = psutil.Process()

    def engine_cpu() -> float:
        return sum(
            t.user_time + t.system_time for t in process.threads() if t.id != main_thread.native_id
        )

    def one(index: int) -> str:
        run = run_start(workflow=workflow, user=None, inputs={"topic": f"t{index}"})
        while True:
            status = Run.objects.filter(pk=run.pk).values_list("status", flat=True).get()
            if status in ("succeeded", "failed", "cancelled"):
                return str(status)
            time.sleep(0.002)  # another thread's progress: polled

    for index in range(3):  # warm: agents resolved, connections open
        one(index)
    counting = True
    cpu_before = engine_cpu()
    statuses = [one(index) for index in range(runs)]
    cpu = engine_cpu() - cpu_before
    counting = False
    if by_statement:
        for text, count in seen.most_common():
            print(f"{count / runs:6.2f}  {text}")
    del executor
    return {
        "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
        "runs": runs,
        "succeeded": statuses.count("succeeded"),
        "statements_per_run": round(counts["statements"] / runs, 2),
        "hand_offs_per_run": round(counts["hand_offs"] / runs, 2),
        "engine_cpu_ms_per_run": round(cpu * 1000 / runs, 2),
    }


if __name__ == "__main__":
    main()
