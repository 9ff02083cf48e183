"""Server time of the run history at scale, and the query plans behind it.

Needs PostgreSQL holding the seeded history (`python manage.py seed_history --runs 100000` with
the same DATABASE_URL; keep it apart from the test database, e.g. a2a_history_bench). Each page
is requested in this process through Django's test client, so what is timed is the server's
work (middleware, queries, rendering), not a network: the list with no filter, each filter
alone, each sort, three filters combined, text search, a page 200 pages deep (keyset), the
workflow tab, and — when those URL names exist — the trace of the 200-step run and two runs
compared. p50 and p95 over repeated requests, several rounds (the machine is shared: the p95
reported is the worst round's). Every statement one request sends is then EXPLAINed and a
sequential scan over runs, steps, events or ledger rows is counted.

    DATABASE_URL=postgres://…/a2a_history_bench python bench/history.py [--repeat 20] [--rounds 2]

The last line is one JSON object: history_p95_ms_max, search_p95_ms, trace_p95_ms, rows_runs,
rows_events, seq_scans (null with a note for what could not be measured).
"""

from __future__ import annotations

import argparse
import html
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
)
DEEP_PAGES = 200


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def timed(client: Any, url: str, repeat: int) -> tuple[list[float], list[float]]:
    """(wall times, this process's CPU times) of `repeat` requests, in ms. The CPU time is the
    server's own work (PostgreSQL's is apart): on a shared machine it varies far less than the
    wall time, which also counts the waits for a core."""
    for _ in range(2):  # warm-up: connections, template caches
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
    times, cpu = [], []
    for _ in range(repeat):
        started, started_cpu = time.perf_counter(), time.process_time()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
        assert response.status_code == 200, url
    return times, cpu


def seq_scans(client: Any, url: str) -> tuple[int, list[str]]:
    """(statements sent, the statements whose plan scans a watched table sequentially)."""
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
                    found.append(f"{table}: {sql[:200]}")
    return len(captured.captured_queries), found


def deep_url(client: Any, base: str, pages: int) -> str:
    """The URL of page `pages` of the unfiltered list, reached by following "Next page"."""
    url = base
    for _ in range(pages):
        page = client.get(url).content.decode()
        found = re.search(r'href="([^"]+)" data-testid="next-page"', page)
        if found is None:
            break
        url = html.unescape(found.group(1))
    return url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=20, help="requests per page and round")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "a2a_site.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.test import Client
    from django.urls import NoReverseMatch, reverse
    from django.utils import timezone

    from a2a_site.accounts.models import Membership
    from agents.models import Agent, LedgerEntry, Provider
    from monitoring.history.seed import LONG_RUN_ID
    from workflows.models import Run, RunEvent, Workflow

    if "postgresql" not in settings.DATABASES["default"]["ENGINE"]:
        sys.exit("Set DATABASE_URL to the PostgreSQL database holding the seeded history.")
    long_run = Run.objects.filter(pk=LONG_RUN_ID).first()
    if long_run is None:
        sys.exit("No seeded history here: run `python manage.py seed_history --runs 100000`.")
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    workspace_id = long_run.workspace_id
    member = (
        Membership.objects.filter(workspace_id=workspace_id, role="owner")
        .select_related("user")
        .order_by("pk")[0]
    )
    client = Client()
    client.force_login(member.user)

    workflow = Workflow.objects.filter(workspace_id=workspace_id).order_by("name")[0]
    agent = Agent.objects.filter(workspace_id=workspace_id).order_by("name")[0]
    provider = Provider.objects.get(workspace_id=workspace_id, name="Anthropic")
    today = timezone.localdate()
    week_ago = (today - timezone.timedelta(days=7)).isoformat()
    month_ago = (today - timezone.timedelta(days=30)).isoformat()
    base = reverse("run_list")
    history_pages = {
        "no_filter": base,
        "status": f"{base}?status=failed",
        "workflow": f"{base}?workflow={workflow.pk}",
        "version": f"{base}?workflow={workflow.pk}&version=2",
        "agent": f"{base}?agent={agent.pk}",
        "model": f"{base}?model=claude-3-5-haiku",
        "provider": f"{base}?provider={provider.pk}",
        "launched_by": f"{base}?by={member.user_id}",
        "launched_via": f"{base}?via=api",
        "date_range": f"{base}?from={month_ago}&to={week_ago}",
        "duration_range": f"{base}?min_duration=20&max_duration=60",
        "cost_range": f"{base}?min_cost=0.01&max_cost=0.05",
        "error_kind": f"{base}?error=rate_limit",
        "waiting": f"{base}?waiting=on",
        "pinned": f"{base}?pinned=on",
        "sort_duration": f"{base}?sort=-duration",
        "sort_cost": f"{base}?sort=-cost",
        "sort_tokens": f"{base}?sort=-tokens",
        "combined_3": f"{base}?status=succeeded&model=gpt-4o&min_cost=0.01",
        "combined_3_sorted": f"{base}?from={month_ago}&via=web&error=timeout&sort=-cost",
        "workflow_tab": reverse("workflow_runs", args=[workflow.pk]),
    }
    search_pages = {
        "search_word": f"{base}?q=kubernetes",
        "search_phrase": f"{base}?q=%22battery+recycling%22",
        "search_filtered": f"{base}?q=refund&status=succeeded&sort=-cost",
    }
    notes: list[str] = []
    extra_pages: dict[str, str] = {}
    try:
        extra_pages["trace"] = reverse("run_trace", args=[long_run.pk])
        other = (
            Run.objects.filter(workspace_id=workspace_id, workflow_id=long_run.workflow_id)
            .exclude(pk=long_run.pk)
            .order_by("-created_at")
            .first()
        )
        extra_pages["compare"] = f"{reverse('run_compare')}?a={long_run.pk}&b={other.pk}"
    except NoReverseMatch:
        notes.append("run_trace / run_compare are not in this tree: trace not measured")

    rows_runs = Run.objects.count()
    rows_events = RunEvent.objects.count()
    rows_ledger = LedgerEntry.objects.count()
    print(f"{rows_runs:,} runs, {rows_events:,} events, {rows_ledger:,} ledger rows")
    started = time.perf_counter()
    history_pages["deep_page"] = deep_url(client, base, DEEP_PAGES)
    print(f"deep page: {DEEP_PAGES} pages followed in {time.perf_counter() - started:.1f} s")

    figures: dict[str, Any] = {}
    scans: list[str] = []
    for group in (history_pages, search_pages, extra_pages):
        for name, url in group.items():
            p50s, p95s, cpus = [], [], []
            for _ in range(args.rounds):
                times, cpu = timed(client, url, args.repeat)
                cpus += cpu
                p50s.append(percentile(times, 0.5))
                p95s.append(percentile(times, 0.95))
            statements, found = seq_scans(client, url)
            scans += found
            figures[name] = {
                "p50_ms": round(statistics.median(p50s), 1),
                "p95_ms": round(max(p95s), 1),
                "cpu_p50_ms": round(statistics.median(cpus), 1),
                "statements": statements,
                "seq_scans": len(found),
            }
            print(
                f"{name:18} p50 {figures[name]['p50_ms']:7.1f} ms  "
                f"p95 {figures[name]['p95_ms']:7.1f} ms  "
                f"cpu p50 {figures[name]['cpu_p50_ms']:5.1f} ms  {statements:2} statements  "
                f"{len(found)} seq scans"
            )
    for plan in scans:
        print(f"  sequential scan: {plan}")

    def worst(names: Any) -> float | None:
        values = [figures[name]["p95_ms"] for name in names if name in figures]
        return max(values) if values else None

    summary = {
        "history_p95_ms_max": worst(history_pages),
        "history_p95_ms_max_page": max(history_pages, key=lambda n: figures[n]["p95_ms"]),
        "search_p95_ms": worst(search_pages),
        "deep_page_p95_ms": figures["deep_page"]["p95_ms"],
        "trace_p95_ms": figures["trace"]["p95_ms"] if "trace" in figures else None,
        "compare_p95_ms": figures["compare"]["p95_ms"] if "compare" in figures else None,
        "history_cpu_p50_ms_max": max(figures[name]["cpu_p50_ms"] for name in history_pages),
        "rows_runs": rows_runs,
        "rows_events": rows_events,
        "rows_ledger": rows_ledger,
        "seq_scans": len(scans),
        "repeat": args.repeat,
        "rounds": args.rounds,
        "notes": "; ".join(notes) or None,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
