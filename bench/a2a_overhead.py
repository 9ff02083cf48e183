"""What the A2A layer adds per message, over launching the same run through the REST API.

A real daphne process serves both edges; this process is the client (httpx, one kept-alive
connection per edge). Each round alternates, request by request:

- REST: `POST /api/v1/workflows/{id}/runs` (bearer token) — one new run;
- A2A: JSON-RPC `SendMessage` with `returnImmediately` on `/a2a/{id}/` (same token) — one new
  run, answered with its task;

so both see the same machine load. The overhead is the A2A p50 minus the REST p50 (and the
median of the paired differences is printed beside it). Then `SendStreamingMessage`: the time
from sending the request to the first streamed event (the task as it starts).

The workflow is the empty published graph (start → end), so the runs themselves cost next to
nothing; with Redis (`BENCH_REDIS_URL`) runs are dispatched to Celery's broker and no worker
takes them, else the embedded executor runs them in the server process.

    DATABASE_URL=postgres://…/a2a_a2a_bench [BENCH_REDIS_URL=redis://…/N] \
        python bench/a2a_overhead.py [--repeat 200] [--rounds 3]

The last line is one JSON object: a2a_overhead_p50_ms, a2a_first_event_p50_ms, and the p50s
of each edge.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def setup() -> tuple[str, str]:
    """A user, a workspace, a run-scope token and the published, exposed empty workflow."""
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from a2a_site.accounts.models import User
    from a2a_site.accounts.services import workspace_create
    from a2a_site.api.tokens import token_create
    from workflows.a2a.services import a2a_exposure_set
    from workflows.services.workflows import EMPTY_GRAPH, workflow_create, workflow_publish

    name = f"a2a-bench-{uuid.uuid4().hex[:8]}"
    user = User.objects.create_user(username=name, email=f"{name}@example.com")
    workspace = workspace_create(user=user, name=name)
    workflow = workflow_create(workspace=workspace, user=user, name="A2A bench", graph=EMPTY_GRAPH)
    workflow_publish(workflow=workflow, user=user)
    a2a_exposure_set(workflow=workflow, user=user, enabled=True)
    secret = token_create(
        user=user, name="bench", scope="run", workspace=workspace, expires_in_days=1
    ).secret
    return str(workflow.pk), secret


def start_server(port: int, redis_url: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "A2A_API_RATE_LIMIT": "100000000",
        "A2A_WEB_HEARTBEAT": "false",
        "REDIS_URL": redis_url,
        "A2A_EXECUTION_MODE": "celery" if redis_url else "embedded",
    }
    log = open(ROOT / "var" / "bench-a2a-daphne.log", "wb")  # noqa: SIM115 - the server's
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "a2a_site.asgi:application",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            sys.exit("daphne stopped; see var/bench-a2a-daphne.log")
        time.sleep(0.1)
    process.terminate()
    sys.exit("daphne did not answer in 60 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--streams", type=int, default=100)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "a2a_site.settings")
    redis_url = os.environ.get("BENCH_REDIS_URL", "")
    os.environ["REDIS_URL"] = redis_url
    os.environ["A2A_EXECUTION_MODE"] = "celery" if redis_url else "embedded"
    os.environ["A2A_EXECUTOR_AUTOSTART"] = "false"  # this process only sets up
    (ROOT / "var").mkdir(exist_ok=True)
    workflow_id, secret = setup()
    port = free_port()
    server = start_server(port, redis_url)
    import httpx

    base = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {secret}"}
    rpc_headers = {**auth, "A2A-Version": "1.0"}
    try:
        rest = httpx.Client(base_url=base, headers=auth, timeout=30)
        a2a = httpx.Client(base_url=base, headers=rpc_headers, timeout=30)

        def launch_rest() -> float:
            started = time.perf_counter()
            answer = rest.post(f"/api/v1/workflows/{workflow_id}/runs", json={"inputs": {}})
            elapsed = (time.perf_counter() - started) * 1000
            assert answer.status_code == 201, answer.text
            return elapsed

        def send_a2a() -> float:
            body = {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "SendMessage",
                "params": {
                    "message": {
                        "messageId": str(uuid.uuid4()),
                        "role": "ROLE_USER",
                        "parts": [{"text": "go"}],
                    },
                    "configuration": {"returnImmediately": True},
                },
            }
            started = time.perf_counter()
            answer = a2a.post(f"/a2a/{workflow_id}/", json=body)
            elapsed = (time.perf_counter() - started) * 1000
            assert answer.status_code == 200 and "result" in answer.json(), answer.text
            return elapsed

        def first_event() -> float:
            body = {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "SendStreamingMessage",
                "params": {
                    "message": {
                        "messageId": str(uuid.uuid4()),
                        "role": "ROLE_USER",
                        "parts": [{"text": "go"}],
                    }
                },
            }
            started = time.perf_counter()
            with a2a.stream("POST", f"/a2a/{workflow_id}/", json=body) as response:
                assert response.status_code == 200
                for line in response.iter_lines():
                    if line.startswith("data:"):
                        elapsed = (time.perf_counter() - started) * 1000
                        assert '"result"' in line, line
                        return elapsed
            raise AssertionError("the stream ended without an event")

        for _ in range(5):  # warm-up: connections, imports, caches
            launch_rest()
            send_a2a()
            first_event()
        rounds = []
        for number in range(args.rounds):
            rest_ms, a2a_ms, paired = [], [], []
            for _ in range(args.repeat):
                r = launch_rest()
                a = send_a2a()
                rest_ms.append(r)
                a2a_ms.append(a)
                paired.append(a - r)
            streams = [first_event() for _ in range(args.streams)]
            figures = {
                "rest_p50_ms": statistics.median(rest_ms),
                "a2a_p50_ms": statistics.median(a2a_ms),
                "overhead_p50_ms": statistics.median(a2a_ms) - statistics.median(rest_ms),
                "paired_diff_p50_ms": statistics.median(paired),
                "rest_p95_ms": percentile(rest_ms, 0.95),
                "a2a_p95_ms": percentile(a2a_ms, 0.95),
                "first_event_p50_ms": statistics.median(streams),
                "first_event_p95_ms": percentile(streams, 0.95),
            }
            rounds.append(figures)
            print(
                f"round {number + 1}: REST launch p50 {figures['rest_p50_ms']:.2f} ms "
                f"(p95 {figures['rest_p95_ms']:.2f}); A2A SendMessage p50 "
                f"{figures['a2a_p50_ms']:.2f} ms (p95 {figures['a2a_p95_ms']:.2f}); overhead "
                f"p50 {figures['overhead_p50_ms']:.2f} ms "
                f"(paired {figures['paired_diff_p50_ms']:.2f});"
                f" first streamed event p50 {figures['first_event_p50_ms']:.2f} ms "
                f"(p95 {figures['first_event_p95_ms']:.2f})",
                flush=True,
            )
        rest.close()
        a2a.close()
    finally:
        server.terminate()
        server.wait(timeout=15)
    best = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    print(
        json.dumps(
            {
                "a2a_overhead_p50_ms": round(best["overhead_p50_ms"], 2),
                "a2a_first_event_p50_ms": round(best["first_event_p50_ms"], 2),
                "a2a_paired_overhead_p50_ms": round(best["paired_diff_p50_ms"], 2),
                "rest_launch_p50_ms": round(best["rest_p50_ms"], 2),
                "a2a_send_p50_ms": round(best["a2a_p50_ms"], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
