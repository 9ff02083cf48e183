"""Server time of the public API at scale, and what token authentication costs per request.

Needs PostgreSQL holding the seeded history (`python manage.py seed_history --runs 100000` with
the same DATABASE_URL; keep it apart from the test database, e.g. a2a_api_bench) and Redis
(REDIS_URL): launches are dispatched to Celery as in the distributed mode (no worker needs to
run; the runs stay queued) and the rate limit is counted in Redis. Requests go through Django's
test client in this process, so what is timed is the server's work (middleware, authentication,
queries, serialization), not a network:

- launch: `POST /api/v1/workflows/{id}/runs` with an Idempotency-Key (one new run each);
- get: `GET /api/v1/runs/{id}` of seeded runs;
- list: `GET /api/v1/runs?limit=50`, first pages and pages deep by cursor, and with a filter;
- token authentication: the API's bearer authentication on its own, as each request runs it
  (the token's digest found among the ones this process verified in the last
  API_TOKEN_CACHE_SECONDS, the last-use check, the rate-limit count, added to Redis in batches);
  its median is what a token adds to a request. "uncached" is the same with the token looked up
  by digest in PostgreSQL every time, as a token's first request in a process costs.
  `GET /api/v1/me` with the token and with a session is printed beside it, end to end.

p50 and p95 over repeated requests, several rounds (the machine is shared: the p95 reported is
the worst round's).

    DATABASE_URL=postgres://…/a2a_api_bench REDIS_URL=redis://… python bench/api.py [--repeat 100]

The last line is one JSON object: launch_p95_ms, get_p95_ms, list_p95_ms,
token_auth_overhead_ms (wall time), token_auth_cpu_ms (this process's CPU for it),
token_auth_uncached_ms (wall time, looked up every time), the p50s, runs (rows in the workspace).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def timed(call: Any, repeat: int, expect: int = 200) -> list[float]:
    for _ in range(3):  # warm-up: connections, caches
        status = call().status_code
        assert status == expect, status
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = call()
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == expect, (response.status_code, response.content[:300])
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "a2a_site.settings")
    os.environ.setdefault("A2A_API_RATE_LIMIT", "1000000")
    os.environ.setdefault("A2A_EXECUTION_MODE", "celery")
    import django

    django.setup()
    from django.conf import settings
    from django.test import Client, RequestFactory

    from a2a_site.accounts.models import Membership
    from a2a_site.api.auth import TokenAuth
    from a2a_site.api.tokens import token_create
    from monitoring.history.seed import LONG_RUN_ID
    from workflows.models import Run, Workflow
    from workflows.services.workflows import EMPTY_GRAPH, workflow_create, workflow_publish

    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        sys.exit("Set DATABASE_URL to the PostgreSQL database holding the seeded history.")
    if not settings.REDIS_URL:
        sys.exit("Set REDIS_URL: launches are dispatched through Celery's broker.")
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    settings.DEBUG = False  # no query log kept per request: it is not what a server does
    long_run = Run.objects.filter(pk=LONG_RUN_ID).first()
    if long_run is None:
        sys.exit("No seeded history here: run `python manage.py seed_history --runs 100000`.")
    workspace = long_run.workspace
    from django.db import connection

    with connection.cursor() as cursor:  # fresh statistics: a seeded table has none yet
        cursor.execute("ANALYZE workflows_run, agents_ledgerentry, api_apitoken")
    owner = Membership.objects.filter(workspace=workspace, role="owner").first()
    if owner is None:
        sys.exit("The seeded workspace has no owner: seed with --member USERNAME.")
    user = owner.user
    secret = token_create(
        user=user, name="bench", scope="admin", workspace=workspace, expires_in_days=1
    ).secret
    bearer = Client(headers={"Authorization": f"Bearer {secret}"})
    factory = RequestFactory()
    authenticate = TokenAuth()
    session = Client()
    session.force_login(user)
    workflow = Workflow.objects.filter(workspace=workspace, name="API bench").first()
    if workflow is None:
        workflow = workflow_create(
            workspace=workspace, user=user, name="API bench", graph=EMPTY_GRAPH
        )
        workflow_publish(workflow=workflow, user=user)
    runs = Run.objects.filter(workspace=workspace).count()
    sample = list(
        Run.objects.filter(workspace=workspace).order_by("?").values_list("pk", flat=True)[:200]
    )
    deep_cursor = None
    page = bearer.get("/api/v1/runs", {"limit": 50}).json()
    for _ in range(20):  # a cursor 20 pages deep (1,000 rows in)
        deep_cursor = page["next_cursor"]
        page = bearer.get("/api/v1/runs", {"limit": 50, "cursor": deep_cursor}).json()

    def launch() -> Any:
        return bearer.post(
            f"/api/v1/workflows/{workflow.pk}/runs",
            {"inputs": {}},
            content_type="application/json",
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )

    counter = iter(range(10**9))

    def get() -> Any:
        return bearer.get(f"/api/v1/runs/{sample[next(counter) % len(sample)]}")

    lists = [
        {"limit": 50},
        {"limit": 50, "cursor": deep_cursor},
        {"limit": 50, "status": "failed"},
        {"limit": 50, "sort": "-cost"},
    ]

    def list_page() -> Any:
        return bearer.get("/api/v1/runs", lists[next(counter) % len(lists)])

    figures: dict[str, list[float]] = {"launch": [], "get": [], "list": []}
    p95s: dict[str, float] = {"launch": 0.0, "get": 0.0, "list": 0.0}
    overheads: list[float] = []
    cpu_overheads: list[float] = []
    uncached: list[float] = []
    for round_number in range(args.rounds):
        for name, call, expect in (
            ("launch", launch, 201),
            ("get", get, 200),
            ("list", list_page, 200),
        ):
            times = timed(call, args.repeat, expect)
            figures[name] += times
            p95s[name] = max(p95s[name], percentile(times, 0.95))
            print(
                f"round {round_number + 1} {name:6}  p50 {statistics.median(times):7.2f} ms"
                f"   p95 {percentile(times, 0.95):7.2f} ms"
            )
        auth_times, auth_cpu = [], []
        for _ in range(args.repeat * 5):
            request = factory.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
            started, started_cpu = time.perf_counter(), time.process_time()
            caller = authenticate(request)
            auth_times.append((time.perf_counter() - started) * 1000)
            auth_cpu.append((time.process_time() - started_cpu) * 1000)
            assert caller is not None and caller.user.pk == user.pk
        overheads.append(statistics.median(auth_times))
        cpu_overheads.append(statistics.median(auth_cpu))
        # The same without the process's memory of verified tokens: what a token's first
        # request in a process (and one a second after) costs, the lookup by digest included.
        cached_for = settings.API_TOKEN_CACHE_SECONDS
        settings.API_TOKEN_CACHE_SECONDS = 0
        cold_times = []
        for _ in range(args.repeat):
            request = factory.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
            started = time.perf_counter()
            authenticate(request)
            cold_times.append((time.perf_counter() - started) * 1000)
        settings.API_TOKEN_CACHE_SECONDS = cached_for
        uncached.append(statistics.median(cold_times))
        with_token = timed(lambda: bearer.get("/api/v1/me"), args.repeat)
        with_session = timed(lambda: session.get("/api/v1/me"), args.repeat)
        print(
            f"round {round_number + 1} token authentication p50 {overheads[-1]:.3f} ms"
            f" (CPU {cpu_overheads[-1]:.3f} ms)"
            f"  p95 {percentile(auth_times, 0.95):.3f} ms, uncached p50 {uncached[-1]:.3f} ms;"
            f"  GET /me p50 with the token "
            f"{statistics.median(with_token):.2f} ms, with a session "
            f"{statistics.median(with_session):.2f} ms"
        )
    launched = Run.objects.filter(workflow=workflow).count()
    print(f"{runs:,} runs in the workspace; {launched:,} launched by this bench so far")
    result = {
        "launch_p95_ms": round(p95s["launch"], 2),
        "get_p95_ms": round(p95s["get"], 2),
        "list_p95_ms": round(p95s["list"], 2),
        "token_auth_overhead_ms": round(max(overheads), 3),
        "token_auth_cpu_ms": round(max(cpu_overheads), 3),
        "token_auth_uncached_ms": round(max(uncached), 3),
        "launch_p50_ms": round(statistics.median(figures["launch"]), 2),
        "get_p50_ms": round(statistics.median(figures["get"]), 2),
        "list_p50_ms": round(statistics.median(figures["list"]), 2),
        "runs": runs,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
