"""Server time of a run's trace and of two runs compared, on the seeded 100k-run history.

Needs PostgreSQL holding the seeded history (`python manage.py seed_history --runs 100000`
with the same DATABASE_URL); its 200-step run (LONG_RUN_ID) is the run measured. Each page is
requested in this process through Django's test client, so what is timed is the server's work
(middleware, queries, rendering), not a network. Every statement one request sends is then
EXPLAINed, and a sequential scan over runs, steps, events, ledger rows or payloads is counted.

    DATABASE_URL=postgres://…/a2a_x python bench/trace.py [--repeat 40] [--rounds 3]

The last line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WATCHED_TABLES = (
    "workflows_run",
    "workflows_step",
    "workflows_runevent",
    "agents_ledgerentry",
    "agents_callpayload",
)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def timed(client: Any, url: str, repeat: int) -> tuple[list[float], list[float]]:
    """Wall time and this process's CPU time of each request, in ms.

    On a machine shared with other work the wall time includes waiting for a core; the CPU time
    is what the request itself cost (the database's own work is in the wall time only)."""
    for _ in range(3):  # warm-up: connections, template caches
        assert client.get(url).status_code == 200, url
    walls, cpus = [], []
    for _ in range(repeat):
        started, cpu = time.perf_counter(), time.process_time()
        response = client.get(url)
        walls.append((time.perf_counter() - started) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
        assert response.status_code == 200, url
    return walls, cpus


def seq_scans(client: Any, url: str) -> tuple[int, int, list[str]]:
    """(statements sent, sequential scans over watched tables, the plans that had one)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    found = []
    with connection.cursor() as cursor:
        for query in captured.captured_queries:
            sql = query["sql"]
            if not sql.lstrip().upper().startswith("SELECT"):
                continue
            cursor.execute("EXPLAIN " + sql)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            for table in WATCHED_TABLES:
                if re.search(rf"Seq Scan on {table}\b", plan):
                    found.append(f"{table}: {sql[:160]}")
    return len(captured.captured_queries), len(found), found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=40, help="requests per page and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "a2a_site.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.test import Client
    from django.urls import reverse

    from a2a_site.accounts.models import Membership
    from agents.models import LedgerEntry
    from monitoring.history.seed import LONG_RUN_ID
    from workflows.models import Run

    if "postgresql" not in settings.DATABASES["default"]["ENGINE"]:
        sys.exit("Set DATABASE_URL to the PostgreSQL database holding the seeded history.")
    run = Run.objects.filter(pk=LONG_RUN_ID).select_related("workflow").first()
    if run is None:
        sys.exit("No seeded history here: run `python manage.py seed_history --runs 100000`.")
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    member = Membership.objects.filter(workspace_id=run.workspace_id).select_related("user")[0]
    client = Client()
    client.force_login(member.user)
    other = (
        Run.objects.filter(workspace_id=run.workspace_id, workflow_id=run.workflow_id)
        .exclude(pk=run.pk)
        .order_by("-created_at")
        .first()
    )
    call = LedgerEntry.objects.filter(run_id=run.pk).order_by("started_at").first()
    trace_url = reverse("run_trace", args=[run.pk])
    pages = {
        "trace": trace_url,
        "trace_inspector": f"{trace_url}?span=call:{call.pk}" if call else trace_url,
        "compare": f"{reverse('run_compare')}?a={run.pk}&b={(other or run).pk}",
    }
    steps = run.steps.count()
    calls = LedgerEntry.objects.filter(run_id=run.pk).count()
    print(f"run {run.pk}: {steps} steps, {calls} ledger rows; {Run.objects.count():,} runs")
    figures: dict[str, Any] = {"trace_steps": steps, "trace_calls": calls}
    for name, url in pages.items():
        p50s, p95s, cpu50s = [], [], []
        for round_number in range(1, args.rounds + 1):
            times, cpus = timed(client, url, args.repeat)
            p50s.append(percentile(times, 0.5))
            p95s.append(percentile(times, 0.95))
            cpu50s.append(percentile(cpus, 0.5))
            print(
                f"{name:16} round {round_number}: p50 {p50s[-1]:6.1f} ms  p95 {p95s[-1]:6.1f} ms"
                f"  (CPU p50 {cpu50s[-1]:5.1f} ms; load average {os.getloadavg()[0]:.1f})"
            )
        statements, scans, plans = seq_scans(client, url)
        for plan in plans:
            print(f"  sequential scan: {plan}")
        print(f"{name:16} {statements} statements, {scans} sequential scans over watched tables")
        figures[f"{name}_p50_ms"] = round(statistics.median(p50s), 1)
        figures[f"{name}_p95_ms"] = round(max(p95s), 1)
        figures[f"{name}_cpu_p50_ms"] = round(statistics.median(cpu50s), 1)
        figures[f"{name}_statements"] = statements
        figures[f"{name}_seq_scans"] = scans
    figures["load_average"] = round(os.getloadavg()[0], 1)
    figures["seq_scans"] = sum(v for k, v in figures.items() if k.endswith("_seq_scans"))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
