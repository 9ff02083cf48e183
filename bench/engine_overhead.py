"""The run engine's own cost: orchestration overhead per step, and many runs at once.

Workloads, against the fake LLM server (in its own process) at 0 ms and 1 s latency:
  W1  three agents in sequence
  W2  four agents in parallel, then an aggregator
  W3  200 concurrent W1 runs (at 1 s latency: the ideal wall time is 3 s)
  W4  200 concurrent one-agent runs sharing one deployment limited to RATE_RPM requests per
      RATE_WINDOW_S seconds (the "minute" shortened, A2A_RATE_WINDOW_SECONDS): every run must
      finish (waiting its turn in line), at the limit's pace — throughput ratio = calls let
      through per second after the first window's burst / (RATE_RPM / RATE_WINDOW_S), from the
      ledger's call starts
on SQLite with the embedded executor (this process), and on PostgreSQL with one Celery worker
process. Overhead per step = (run time - time inside model calls, from the ledger) / steps, so
persistence, scheduling and event publishing are all counted. Loopback only; bounded counts.

    python bench/engine_overhead.py            # both databases
    python bench/engine_overhead.py --quick    # fewer runs
    python bench/engine_overhead.py --ratelimited-only   # W4 alone
    python bench/engine_overhead.py --steps-only         # W1 and W2 at 0 ms alone

The last line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

POSTGRES_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/a2a_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
RATE_RPM = 20
RATE_WINDOW_S = 2


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_fakellm() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "agents.fakellm", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    import urllib.request

    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_fakellm/health", timeout=1):
                return process, url
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def set_latency(url: str, delay_ms: int) -> None:
    import urllib.request

    body = json.dumps({"rules": [{"reply": "A short, useful answer.", "delay_ms": delay_ms}]})
    request = urllib.request.Request(
        f"{url}/_fakellm/script", data=body.encode(), headers={"Content-Type": "application/json"}
    )
    urllib.request.urlopen(request, timeout=5).read()


# --- one phase, in a process of its own (settings are per process) -------------------------------


def phase(
    database: str, fakellm_url: str, quick: bool, only_w4: bool = False, steps_only: bool = False
) -> dict[str, Any]:
    import django

    os.environ["DJANGO_SETTINGS_MODULE"] = "a2a_site.settings"
    os.environ["A2A_DEMO_MODEL_URL"] = fakellm_url
    os.environ["A2A_EXECUTOR_AUTOSTART"] = "false"
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ["DEBUG"] = "false"  # DEBUG records every query: not what production pays
    os.environ["SECRET_KEY"] = "bench-" + "k" * 60
    os.environ["A2A_RUNS_PER_PROCESS"] = "400"
    os.environ["A2A_RATE_WINDOW_SECONDS"] = str(RATE_WINDOW_S)
    if database == "postgres":
        os.environ["DATABASE_URL"] = POSTGRES_URL
        os.environ["REDIS_URL"] = REDIS_URL
        os.environ["A2A_EXECUTION_MODE"] = "celery"
        _ensure_postgres_database()
    else:
        os.environ["A2A_VAR_DIR"] = tempfile.mkdtemp(prefix="a2a-bench-")
        os.environ.pop("DATABASE_URL", None)
        os.environ.pop("REDIS_URL", None)
        os.environ["A2A_EXECUTION_MODE"] = "embedded"
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    if database == "postgres":
        _flush_redis()
    workspace, agents = _fixtures()
    worker = _start_worker(fakellm_url) if database == "postgres" else None
    try:
        figures: dict[str, Any] = {}
        runs_w1 = 10 if quick else 30
        for latency in () if only_w4 else (0,) if steps_only else (0, 1000):
            set_latency(fakellm_url, latency)
            count = runs_w1 if latency == 0 else 3
            w1 = _measure(workspace, "W1", agents, count=count, concurrent=False, worker=worker)
            w2 = _measure(
                workspace, "W2", agents, count=max(3, count // 3), concurrent=False, worker=worker
            )
            figures[f"w1_{latency}ms"] = w1
            figures[f"w2_{latency}ms"] = w2
        if steps_only:
            return figures
        if not only_w4:
            set_latency(fakellm_url, 1000)
            figures["w3_1000ms"] = _measure(
                workspace, "W1", agents, count=100 if quick else 200, concurrent=True, worker=worker
            )
        set_latency(fakellm_url, 50)
        figures["w4_ratelimited"] = _measure_ratelimited(workspace, count=100 if quick else 200)
        return figures
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(20)


def _ensure_postgres_database() -> None:
    import psycopg

    name = POSTGRES_URL.rsplit("/", 1)[1]
    admin = POSTGRES_URL.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{name}"')


def _flush_redis() -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    client.close()


def _fixtures() -> tuple[Any, list[Any]]:
    from a2a_site.accounts.models import Membership, Role, User, Workspace
    from agents.services.agents import agent_create
    from agents.services.providers import ProviderInput, provider_create

    user, _ = User.objects.get_or_create(username="bench")
    workspace = Workspace.objects.create(name=f"Bench {time.time_ns()}", created_by=user)
    Membership.objects.create(workspace=workspace, user=user, role=Role.OWNER)
    provider = provider_create(
        workspace=workspace, user=user, data=ProviderInput(kind="demo", name="Demo")
    )
    agents = [
        agent_create(
            workspace=workspace,
            user=user,
            name=f"Agent {index}",
            description="",
            config={
                "role": "a bench agent",
                "model": {"provider_id": str(provider.pk), "model": "demo"},
            },
            known_tools=[],
        )
        for index in range(5)
    ]
    return workspace, agents


def _workflow(workspace: Any, kind: str, agents: list[Any]) -> Any:
    from workflows.graph import examples
    from workflows.services.workflows import workflow_create, workflow_publish

    ids = [str(agent.pk) for agent in agents]
    if kind == "W1":
        graph = examples.research_pipeline(ids[0], ids[1], ids[2])
    else:
        graph = _fan_out_graph(ids)
    workflow = workflow_create(
        workspace=workspace, user=None, name=f"{kind} {time.time_ns()}", graph=graph
    )
    workflow_publish(workflow=workflow, user=None)
    return workflow


def _fan_out_graph(ids: list[str]) -> dict[str, Any]:
    from workflows.graph.examples import agent, edge, graph, node, text_variable

    branches = [
        agent(f"branch-{i}", ids[i], 300 * i, "Study {{ topic }} from angle " + str(i), f"part{i}")
        for i in range(4)
    ]
    nodes = [
        node("start", "start", 0, -200),
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
        text_variable(name) for name in ("part0", "part1", "part2", "part3", "merged", "report")
    ]
    return graph(nodes, edges, variables, "report")


def _measure(
    workspace: Any,
    kind: str,
    agents: list[Any],
    *,
    count: int,
    concurrent: bool,
    worker: subprocess.Popen[bytes] | None = None,
) -> dict[str, Any]:
    import psutil
    from django.conf import settings
    from django.db.models import Sum

    from agents.models import LedgerEntry
    from workflows.models import Run, Step
    from workflows.services.runs import run_start

    workflow = _workflow(workspace, kind, agents)
    executor = None
    if settings.EXECUTION_MODE == "embedded":
        from workflows.executor import process_executor

        executor = process_executor()
    watched = psutil.Process(worker.pid) if worker is not None else psutil.Process()
    rss_peak = 0
    runs: list[Any] = []
    cpu_before = _engine_cpu_s(watched, worker is not None)
    started = time.perf_counter()
    if concurrent:
        runs = [
            run_start(workflow=workflow, user=None, inputs={"topic": f"t{i}"}) for i in range(count)
        ]
        pending = {run.pk for run in runs}
        while pending:
            rss_peak = max(rss_peak, watched.memory_info().rss)
            done = set(
                Run.objects.filter(
                    pk__in=pending, status__in=["succeeded", "failed", "cancelled"]
                ).values_list("pk", flat=True)
            )
            pending -= done
            time.sleep(0.05)  # polling another process's progress: there is no event to await
    else:
        for i in range(count):
            run = run_start(workflow=workflow, user=None, inputs={"topic": f"t{i}"})
            while Run.objects.get(pk=run.pk).status not in ("succeeded", "failed", "cancelled"):
                time.sleep(0.005)
            runs.append(run)
            rss_peak = max(rss_peak, watched.memory_info().rss)
    wall = time.perf_counter() - started
    cpu_s = _engine_cpu_s(watched, worker is not None) - cpu_before
    overheads = []
    hops = []
    steps_done = 0
    failed = 0
    for run in Run.objects.filter(pk__in=[r.pk for r in runs]):
        if run.status != "succeeded":
            failed += 1
            continue
        if run.dispatched_at is not None and run.started_at is not None:
            # Launch (the run created and dispatched) to the engine starting (its lease taken).
            hops.append((run.started_at - run.dispatched_at).total_seconds() * 1000)
        llm_ms = (
            LedgerEntry.objects.filter(run_id=run.pk).aggregate(total=Sum("latency_ms"))["total"]
            or 0
        )
        steps = Step.objects.filter(run=run, status="completed").count()
        steps_done += steps
        run_ms = (run.finished_at - run.started_at).total_seconds() * 1000
        if kind == "W2":
            # Parallel branches overlap: count the longest branch's model time, not the sum.
            llm_ms = _critical_llm_ms(run)
        overheads.append(max(0.0, run_ms - llm_ms) / max(1, steps))
    del executor
    result = {
        "runs": count,
        "failed": failed,
        "wall_s": round(wall, 3),
        "overhead_per_step_p50_ms": round(percentile(overheads, 0.5), 2),
        "overhead_per_step_p95_ms": round(percentile(overheads, 0.95), 2),
        "launch_to_start_p50_ms": round(percentile(hops, 0.5), 2),
        # CPU time the engine's process spent per step (the embedded mode: its threads but the
        # bench's own), which a busy machine stretches far less than wall time.
        "engine_cpu_per_step_ms": round(cpu_s * 1000 / max(1, steps_done), 2),
        "rss_peak_mb": round(rss_peak / 2**20, 1),
    }
    if concurrent:
        result["ideal_s"] = 3.0
        result["ratio_to_ideal"] = round(wall / 3.0, 2)
    return result


def _engine_cpu_s(process: Any, whole: bool) -> float:
    """CPU seconds of the engine: the worker process whole, or this process's threads other
    than the main one (which launches the runs and polls for their ends)."""
    if whole:
        times = process.cpu_times()
        return float(times.user + times.system)
    import threading

    main = threading.main_thread().native_id
    return float(sum(t.user_time + t.system_time for t in process.threads() if t.id != main))


def _measure_ratelimited(workspace: Any, *, count: int) -> dict[str, Any]:
    """W4: `count` one-call runs at once on a deployment that takes RATE_RPM calls a window."""
    from agents.models import LedgerEntry
    from agents.services.agents import agent_create
    from agents.services.providers import ProviderInput, provider_create
    from workflows.graph.examples import agent, edge, graph, node, text_variable
    from workflows.models import Run
    from workflows.services.runs import run_start
    from workflows.services.workflows import workflow_create, workflow_publish

    provider = provider_create(
        workspace=workspace,
        user=None,
        data=ProviderInput(kind="demo", name=f"Limited {time.time_ns()}", rpm_limit=RATE_RPM),
    )
    limited = agent_create(
        workspace=workspace,
        user=None,
        name=f"Limited agent {time.time_ns()}",
        description="",
        config={
            "role": "a bench agent",
            "model": {"provider_id": str(provider.pk), "model": "demo"},
            "max_queue_wait_s": 600,
        },
        known_tools=[],
    )
    one_step = graph(
        [
            node("start", "start", 0, 0, input_mapping={"topic": "topic"}),
            agent("answer", str(limited.pk), 250, "Answer: {{ topic }}", "answer"),
            node("end", "end", 500, 0, output="answer"),
        ],
        [edge("start", "answer"), edge("answer", "end")],
        [text_variable("topic"), text_variable("answer")],
        "answer",
    )
    workflow = workflow_create(
        workspace=workspace, user=None, name=f"W4 {time.time_ns()}", graph=one_step
    )
    workflow_publish(workflow=workflow, user=None)
    started = time.perf_counter()
    runs = [
        run_start(workflow=workflow, user=None, inputs={"topic": f"t{i}"}) for i in range(count)
    ]
    pending = {run.pk for run in runs}
    deadline = time.monotonic() + 600
    while pending and time.monotonic() < deadline:
        done = set(
            Run.objects.filter(
                pk__in=pending, status__in=["succeeded", "failed", "cancelled"]
            ).values_list("pk", flat=True)
        )
        pending -= done
        time.sleep(0.05)  # polling another process's progress: there is no event to await
    wall = time.perf_counter() - started
    ids = [run.pk for run in runs]
    failed = Run.objects.filter(pk__in=ids).exclude(status="succeeded").count()
    starts = sorted(
        at.timestamp()
        for at in LedgerEntry.objects.filter(run_id__in=ids).values_list("started_at", flat=True)
    )
    limit_rate = RATE_RPM / RATE_WINDOW_S
    ratio = None
    if len(starts) > RATE_RPM and starts[-1] > starts[0]:
        # The first window's calls go at once; after that the limit sets the pace.
        ratio = round((len(starts) - RATE_RPM) / (starts[-1] - starts[0]) / limit_rate, 3)
    # The most ledger starts in any window. A start is written after its call was admitted,
    # later when the loop is busy, so this can read above the limit without the limit being
    # passed; far above it (106 of 20 when in-process checks did not take their place) it was.
    busiest = max(
        (sum(1 for t in starts[i:] if t < start + RATE_WINDOW_S) for i, start in enumerate(starts)),
        default=0,
    )
    return {
        "runs": count,
        "failed": failed,
        "calls": len(starts),
        "limit": f"{RATE_RPM} per {RATE_WINDOW_S} s",
        "wall_s": round(wall, 3),
        "ideal_s": round((count - RATE_RPM) / limit_rate, 3),
        "throughput_ratio": ratio,
        "busiest_window_ledger_starts": busiest,
    }


def _critical_llm_ms(run: Any) -> float:
    from agents.models import LedgerEntry

    latencies = {
        entry.source.get("step_key", ""): entry.latency_ms or 0
        for entry in LedgerEntry.objects.filter(run_id=run.pk)
    }
    branch = max((v for k, v in latencies.items() if k.startswith("branch")), default=0)
    rest = sum(v for k, v in latencies.items() if not k.startswith("branch"))
    return float(branch + rest)


def _start_worker(fakellm_url: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = "a2a_site.settings"
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
            f"bench-{os.getpid()}@%h",
            "--without-mingle",
            "--without-gossip",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        # BENCH_WORKER_LOG=path keeps what the worker said (warnings and errors).
        stderr=open(os.environ["BENCH_WORKER_LOG"], "ab")  # noqa: SIM115 - lives with the worker
        if os.environ.get("BENCH_WORKER_LOG")
        else subprocess.DEVNULL,
    )
    from workflows.models import Worker

    deadline = time.monotonic() + 60
    while not Worker.objects.filter(pid=process.pid).exists():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the Celery worker did not start")
        time.sleep(0.1)
    return process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--phase", choices=["sqlite", "postgres"])
    parser.add_argument("--fakellm")
    parser.add_argument("--only", choices=["sqlite", "postgres"])
    parser.add_argument(
        "--ratelimited-only", action="store_true", help="only W4 (runs sharing a rate limit)"
    )
    parser.add_argument(
        "--steps-only", action="store_true", help="only W1 and W2 at 0 ms (overhead per step)"
    )
    args = parser.parse_args()
    if args.phase:
        figures = phase(
            args.phase, args.fakellm, args.quick, args.ratelimited_only, args.steps_only
        )
        print(json.dumps(figures))
        return
    fake, url = start_fakellm()
    results: dict[str, Any] = {}
    try:
        for database in [args.only] if args.only else ["sqlite", "postgres"]:
            command = [sys.executable, __file__, "--phase", database, "--fakellm", url]
            if args.quick:
                command.append("--quick")
            if args.ratelimited_only:
                command.append("--ratelimited-only")
            if args.steps_only:
                command.append("--steps-only")
            output = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=1800)
            if output.returncode != 0:
                print(output.stderr[-3000:], file=sys.stderr)
                raise SystemExit(f"the {database} phase failed")
            results[database] = json.loads(output.stdout.strip().splitlines()[-1])
            print(f"{database}: {json.dumps(results[database], indent=2)}")
    finally:
        fake.terminate()
    summary = {
        "step_overhead_p50_ms_sqlite": results.get("sqlite", {})
        .get("w1_0ms", {})
        .get("overhead_per_step_p50_ms"),
        "step_overhead_p50_ms_postgres": results.get("postgres", {})
        .get("w1_0ms", {})
        .get("overhead_per_step_p50_ms"),
        "step_overhead_p95_ms_postgres": results.get("postgres", {})
        .get("w1_0ms", {})
        .get("overhead_per_step_p95_ms"),
        "celery_hop_p50_ms": results.get("postgres", {})
        .get("w1_0ms", {})
        .get("launch_to_start_p50_ms"),
        "embedded_hop_p50_ms": results.get("sqlite", {})
        .get("w1_0ms", {})
        .get("launch_to_start_p50_ms"),
        "engine_cpu_per_step_ms_sqlite": results.get("sqlite", {})
        .get("w1_0ms", {})
        .get("engine_cpu_per_step_ms"),
        "engine_cpu_per_step_ms_postgres": results.get("postgres", {})
        .get("w1_0ms", {})
        .get("engine_cpu_per_step_ms"),
        "w2_overhead_p50_ms_postgres": results.get("postgres", {})
        .get("w2_0ms", {})
        .get("overhead_per_step_p50_ms"),
        "w3_ratio_to_ideal": results.get("postgres", results.get("sqlite", {}))
        .get("w3_1000ms", {})
        .get("ratio_to_ideal"),
        "w3_ratio_to_ideal_sqlite": results.get("sqlite", {})
        .get("w3_1000ms", {})
        .get("ratio_to_ideal"),
        "worker_rss_mb": results.get("postgres", {}).get("w3_1000ms", {}).get("rss_peak_mb"),
        "ratelimited_failed": results.get("postgres", results.get("sqlite", {}))
        .get("w4_ratelimited", {})
        .get("failed"),
        "ratelimited_throughput_ratio": results.get("postgres", results.get("sqlite", {}))
        .get("w4_ratelimited", {})
        .get("throughput_ratio"),
        "ratelimited_failed_sqlite": results.get("sqlite", {})
        .get("w4_ratelimited", {})
        .get("failed"),
        "ratelimited_throughput_ratio_sqlite": results.get("sqlite", {})
        .get("w4_ratelimited", {})
        .get("throughput_ratio"),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
