"""Dashboards at scale: the server time of every dashboard page and chart query on a seeded
history of 100k runs (1M ledger rows) in PostgreSQL, and a recomputation of the rollups.

Each endpoint is requested in-process through Django's test client as a signed-in member of the
seeded workspace (DEBUG off), so a figure is the server's time to answer — view, queries,
template — without a network. Every endpoint is asked REPEAT times per round, over ROUNDS
rounds (the first request of each endpoint is not counted: it warms caches the way a page's
second visitor finds them). p50 and p95 are over all counted requests of an endpoint.

The charts are asked as the page asks them (its default range of 7 days), and over 90 days, the
longest preset. Then `check_rollups` recomputes every rollup from the raw ledger and counts the
differences; and `bench/budget_overspend.py`, when it exists, runs as a subprocess and its
`budget_overspend_calls` is carried into the last line.

    python bench/dashboards.py                  # seeds 100k runs first if they are not there
    python bench/dashboards.py --runs 5000      # a smaller history, quicker
    python bench/dashboards.py --cold           # no answer of past days kept in the cache

The last line is one JSON object: `dashboard_p95_ms_max`, `metrics_query_p95_ms`,
`budget_overspend_calls` (null without the budgets bench), `rollup_mismatches`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATABASE_URL = os.environ.get(
    "BENCH_DASHBOARDS_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/a2a_dashboards_bench"
)
os.environ.update(
    {
        "DJANGO_SETTINGS_MODULE": "a2a_site.settings",
        "DATABASE_URL": DATABASE_URL,
        "DEBUG": "false",  # DEBUG records every query: not what production pays
        "SECRET_KEY": "bench-dashboards-" + "k" * 60,
        "SECURE_SSL_REDIRECT": "false",
        "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false",
        "ALLOWED_HOSTS": "testserver",
        "A2A_EXECUTOR_AUTOSTART": "false",
        "A2A_STATIC_FROM_FINDERS": "true",  # no collectstatic needed; static files are not timed
        "LOG_LEVEL": "WARNING",
    }
)
os.environ.pop("REDIS_URL", None)  # the pages need no cache or broker

LATENCIES = "latency_p50,latency_p95,latency_p99"
# The charts of the page (templates/monitoring/dashboards.html), as its script asks them.
CHARTS = {
    "spend": "measure=cost&dimension=provider&granularity=auto",
    "tokens": "measure=tokens&dimension=provider&granularity=auto",
    "calls": "measure=calls&dimension=provider&granularity=auto",
    "outcomes": "measure=runs&dimension=status&granularity=auto",
    "error-rate": "measure=error_rate&granularity=auto",
    "error-kinds": "measure=errors&dimension=error_kind&granularity=auto",
    "latency-model": f"measure={LATENCIES}&dimension=model&granularity=total",
    "latency-agent": f"measure={LATENCIES}&dimension=agent&granularity=total",
    "first-token": "measure=first_token_p50,first_token_p95&granularity=auto",
    "unpriced": "measure=unpriced_tokens&dimension=model&granularity=auto",
    "live-poll": "measure=calls,cost&granularity=total",
}


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=100_000, help="seeded runs (default 100k)")
    parser.add_argument("--repeat", type=int, default=10, help="requests per endpoint per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-check", action="store_true", help="skip check_rollups")
    parser.add_argument("--skip-budget", action="store_true", help="skip bench/budget_overspend.py")
    parser.add_argument(
        "--cold",
        action="store_true",
        help="empty the cache before every request (what whole past days summed is not kept)",
    )
    parser.add_argument(
        "--budget-rounds", type=int, default=None, help="rounds of bench/budget_overspend.py"
    )
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.cache import cache
    from django.core.management import call_command
    from django.test import Client
    from django.urls import reverse

    from a2a_site.accounts.models import Membership, Role
    from a2a_site.accounts.selectors import SESSION_WORKSPACE_KEY
    from agents.models import LedgerEntry, LedgerRollup
    from agents.rollups import rollups_check
    from monitoring.history.seed import SEED_WORKSPACE_NAME
    from workflows.models import Run

    call_command("migrate", verbosity=0)
    seeded = Run.objects.filter(workspace__name=SEED_WORKSPACE_NAME).count()
    if seeded < args.runs:
        print(f"Seeding {args.runs:,} runs (this database holds {seeded:,})…", flush=True)
        call_command("seed_history", "--runs", str(args.runs))
    membership = (
        Membership.objects.filter(workspace__name=SEED_WORKSPACE_NAME, role=Role.OWNER)
        .select_related("user", "workspace")
        .first()
    )
    assert membership is not None, "the seeded workspace has no owner"
    workspace = membership.workspace
    print(
        f"History: {Run.objects.filter(workspace=workspace).count():,} runs, "
        f"{LedgerEntry.objects.filter(workspace=workspace).count():,} ledger rows, "
        f"{LedgerRollup.objects.filter(workspace=workspace).count():,} rollup rows",
        flush=True,
    )
    client = Client()
    client.force_login(membership.user)
    session = client.session
    session[SESSION_WORKSPACE_KEY] = str(workspace.pk)
    session.save()
    agent_id = (
        LedgerRollup.objects.filter(workspace=workspace)
        .exclude(agent_id="")
        .values_list("agent_id", flat=True)
        .first()
    )
    workflow_id = Run.objects.filter(workspace=workspace).values_list("workflow_id", flat=True)[0]

    api = reverse("metrics_query")
    region = {"HTTP_HX_REQUEST": "true"}
    pages: dict[str, tuple[str, dict[str, str]]] = {}
    for where, url in (
        ("page", reverse("dashboards")),
        ("agent tab", reverse("agent_dashboard", args=[agent_id])),
        ("workflow tab", reverse("workflow_dashboard", args=[workflow_id])),
    ):
        for days in ("7d", "90d"):
            pages[f"{where} {days}"] = (f"{url}?range={days}", {})
            # The page's regions, each its own request (as its script asks them).
            for name in ("headline", "agents", "costs", "slow"):
                pages[f"{where} {days} {name}"] = (f"{url}?range={days}&region={name}", region)
    pages["report csv 90d"] = (reverse("dashboard_report", args=["csv"]) + "?range=90d", {})
    queries = {}
    for name, params in CHARTS.items():
        queries[f"chart {name} 7d"] = (f"{api}?{params}&range=7d", {})
        queries[f"chart {name} 90d"] = (f"{api}?{params}&range=90d", {})
    queries["chart spend 30d by model, one agent"] = (
        f"{api}?measure=cost&dimension=model&range=30d&agent={agent_id}",
        {},
    )

    samples: dict[str, list[float]] = {name: [] for name in [*pages, *queries]}
    for round_number in range(args.rounds):
        for name, (url, headers) in [*pages.items(), *queries.items()]:
            for attempt in range(args.repeat + (1 if round_number == 0 else 0)):
                if args.cold:
                    cache.clear()  # the sessions live in the database, not the cache
                began = time.perf_counter()
                response = client.get(url, **headers)
                elapsed = (time.perf_counter() - began) * 1000
                if response.status_code != 200:
                    raise SystemExit(
                        f"{name}: HTTP {response.status_code} {response.content[:300]!r}"
                    )
                if round_number == 0 and attempt == 0:
                    continue  # warm-up
                samples[name].append(elapsed)
        print(f"round {round_number + 1} of {args.rounds} done", flush=True)

    width = max(len(name) for name in samples)
    print(f"{'endpoint':<{width}}  {'p50 ms':>8}  {'p95 ms':>8}")
    p95s: dict[str, float] = {}
    for name, times in samples.items():
        p95s[name] = percentile(times, 0.95)
        print(f"{name:<{width}}  {statistics.median(times):8.1f}  {p95s[name]:8.1f}")
    query_samples = [value for name in queries for value in samples[name]]

    mismatches: int | None = None
    if not args.skip_check:
        began = time.perf_counter()
        mismatches = len(rollups_check())
        print(f"check_rollups: {mismatches} differences ({time.perf_counter() - began:.0f} s)")

    overspend: Any = None
    budget_bench = ROOT / "bench" / "budget_overspend.py"
    if budget_bench.exists() and not args.skip_budget:
        rounds = [] if args.budget_rounds is None else ["--rounds", str(args.budget_rounds)]
        # Its own database and Redis database (it flushes the latter): BENCH_BUDGET_* here.
        environment = {
            **os.environ,
            "BENCH_DATABASE_URL": os.environ.get(
                "BENCH_BUDGET_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/a2a_bench_budget"
            ),
            "BENCH_REDIS_URL": os.environ.get(
                "BENCH_BUDGET_REDIS_URL", "redis://127.0.0.1:6379/14"
            ),
        }
        for name in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE", "DEBUG", "ALLOWED_HOSTS"):
            environment.pop(name, None)
        done = subprocess.run(
            [sys.executable, str(budget_bench), *rounds],
            capture_output=True,
            text=True,
            check=False,
            env=environment,
        )
        lines = [line for line in done.stdout.splitlines() if line.strip()]
        try:
            overspend = json.loads(lines[-1]).get("budget_overspend_calls") if lines else None
        except json.JSONDecodeError:
            overspend = None
        print(f"budget_overspend.py exited {done.returncode}: {lines[-1] if lines else ''}")
        if done.returncode:
            print("\n".join(done.stderr.splitlines()[-15:]))

    print(
        json.dumps(
            {
                "dashboard_p95_ms_max": round(max(p95s.values()), 1),
                "slowest": max(p95s, key=lambda name: p95s[name]),
                "metrics_query_p95_ms": round(percentile(query_samples, 0.95), 1),
                "budget_overspend_calls": overspend,
                "rollup_mismatches": mismatches,
            }
        )
    )


if __name__ == "__main__":
    main()
