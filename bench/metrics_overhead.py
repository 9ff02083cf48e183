"""What the operations telemetry costs: per model call, and per `/metrics` scrape.

Per call. Counting adds nothing to a model call: `/metrics` reads the ledger's rollups, which
the call's transaction already wrote before this instrumentation existed. What a call does pay
is the tracing hooks: a step span around it and the call's own span (`a2a_site/tracing.py`).
Measured two ways:
- the hooks alone, N times in a loop: off (the default: one global read, a shared no-op) and on
  (the SDK's tracer, a batch processor, an exporter that drops what it is given);
- whole gateway calls to the demo model (`agents.fakellm` in a subprocess) with tracing off and
  on, in alternating rounds: CPU time per call of this process (the latency difference is lost in
  the network's noise at these sizes, the CPU is not).

Per scrape. Seeds the ledger's daily rollups for ~190 models × 2 outcomes × 30 days × 3 agents
(34k rows), enough for ~10k series, then times `GET /metrics` through Django's test client
(in-process: the view, the queries, the exposition; no network), p50/p95 of rounds.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/a2a_metrics_bench \\
      .venv/bin/python bench/metrics_overhead.py

The database (PostgreSQL; created and migrated if missing) is emptied of its rollups and
refilled. Without DATABASE_URL that one is used. The last line is one JSON object with
`instrumentation_ms_per_call` (tracing on, the hooks' cost per call), `scrape_ms_10k_series`
(p50), and the rest.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/a2a_metrics_bench")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "a2a_site.settings")

HOOK_CALLS = 20_000
GATEWAY_ROUNDS = 6
GATEWAY_CALLS = 300
SCRAPE_ROUNDS = 5
SCRAPES_PER_ROUND = 8
MODELS = 190
DAYS = 30
AGENTS = 3


class DroppingExporter:
    """Takes spans and does nothing with them: what is measured is our side of the export."""

    def export(self, spans: Sequence[Any]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def tracing_on() -> None:
    from a2a_site import tracing

    tracing.tracing_configure(exporter=DroppingExporter())  # type: ignore[arg-type]


def tracing_off() -> None:
    from a2a_site import tracing

    tracing.tracing_configure()


# --- per call: the hooks -------------------------------------------------------------------------


def _call_record() -> None:
    from a2a_site.tracing import model_call_record

    model_call_record(
        provider_kind="openai",
        model="gpt-4o-mini",
        call_id="c",
        latency_ms=400.0,
        input_tokens=120,
        output_tokens=80,
        finish_reason="stop",
        response_model="gpt-4o-mini",
        cost=0.0001,
        price_source="price_list",
    )


def hooks_ms_per_call(calls: int, *, with_step: bool) -> float:
    """CPU time of this process per call (the exporter's thread included), in ms."""
    from a2a_site.tracing import step_span

    started = time.process_time()
    if with_step:
        for index in range(calls):
            with step_span("run-1", f"agent#{index}", "agent", "agent", 1):
                _call_record()
    else:
        for _ in range(calls):
            _call_record()
    return (time.process_time() - started) * 1000 / calls


def hooks_figures() -> dict[str, float]:
    figures = {}
    for state in ("off", "on"):
        tracing_on() if state == "on" else tracing_off()
        for with_step in (False, True):
            hooks_ms_per_call(2000, with_step=with_step)  # warm-up
            figures[f"{state}_{'step_and_call' if with_step else 'call'}"] = statistics.median(
                hooks_ms_per_call(HOOK_CALLS, with_step=with_step) for _ in range(3)
            )
    tracing_off()
    return figures


# --- per call: whole gateway calls ---------------------------------------------------------------


def start_fakellm() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "agents.fakellm", "--port", "0", "--name", "bench"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("fakellm listening on "):
        proc.kill()
        raise SystemExit(f"fakellm did not start: {line!r}")
    return proc, line.split()[-1]


async def gateway_cpu_ms(url: str) -> dict[str, float]:
    from agents.llm import Deployment, Gateway, InMemoryLedger, LLMRequest, Route, RoutePlan

    gateway = Gateway(ledger=InMemoryLedger())
    plan = RoutePlan(Route([Deployment("bench", "openai", "gpt-4o-mini", url + "/v1", "sk-b")]))
    request = LLMRequest([{"role": "user", "content": "Summarize solar panels."}], stream=False)

    async def calls(count: int) -> float:
        started = time.process_time()
        for _ in range(count):
            await gateway.complete(request, plan)
        return (time.process_time() - started) * 1000 / count

    await calls(50)  # warm-up: connections, imports
    figures: dict[str, list[float]] = {"off": [], "on": []}
    for _ in range(GATEWAY_ROUNDS):
        for state in ("off", "on"):
            tracing_on() if state == "on" else tracing_off()
            figures[state].append(await calls(GATEWAY_CALLS))
    tracing_off()
    await gateway.aclose()
    return {state: statistics.median(values) for state, values in figures.items()}


# --- per scrape ----------------------------------------------------------------------------------


def database_ensure() -> None:
    import dj_database_url
    import psycopg

    config = dj_database_url.parse(os.environ["DATABASE_URL"])
    params = {
        "host": config.get("HOST") or "127.0.0.1",
        "port": config.get("PORT") or 5432,
        "user": config.get("USER") or None,
        "password": config.get("PASSWORD") or None,
    }
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as connection:
        if not connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [config["NAME"]]
        ).fetchone():
            connection.execute(f'CREATE DATABASE "{config["NAME"]}"')


def seed_rollups() -> int:
    from decimal import Decimal

    from a2a_site.accounts.models import Workspace
    from agents.histogram import FIRST_TOKEN_COLUMNS, LATENCY_COLUMNS
    from agents.models import LedgerRollupDay, Provider

    workspace, _ = Workspace.objects.get_or_create(name="Metrics bench")
    LedgerRollupDay.objects.filter(workspace=workspace).delete()
    providers = []
    for kind in ("openai", "anthropic", "ollama"):
        provider = Provider.objects.filter(workspace=workspace, kind=kind).first()
        if provider is None:
            provider = Provider.objects.create(workspace=workspace, kind=kind, name=kind)
        providers.append(provider)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    rows = []
    for model_index in range(MODELS):
        provider = providers[model_index % len(providers)]
        for day in range(DAYS):
            for agent in range(AGENTS):
                for error_kind in ("", "rate_limited"):
                    row = LedgerRollupDay(
                        workspace=workspace,
                        day=today - timedelta(days=day),
                        provider_id=str(provider.pk),
                        deployment_id=f"{provider.pk}:m{model_index}",
                        model=f"bench-model-{model_index:03d}",
                        agent_id=f"agent-{agent}",
                        error_kind=error_kind,
                        calls=10,
                        prompt_tokens=1200,
                        completion_tokens=800,
                        cost=Decimal("0.0123") if provider.kind != "ollama" else Decimal(0),
                        unpriced_calls=10 if provider.kind == "ollama" else 0,
                        unpriced_tokens=2000 if provider.kind == "ollama" else 0,
                        latency_ms_sum=4000,
                        latency_count=10,
                        first_token_ms_sum=1500 if not error_kind else 0,
                        first_token_count=10 if not error_kind else 0,
                    )
                    setattr(row, LATENCY_COLUMNS[7], 10)
                    if not error_kind:
                        setattr(row, FIRST_TOKEN_COLUMNS[3], 10)
                    rows.append(row)
    LedgerRollupDay.objects.bulk_create(rows, batch_size=2000)
    return len(rows)


def scrape_ms() -> tuple[list[float], list[float], int, int]:
    from django.test import Client
    from django.test.utils import override_settings

    client = Client()
    durations: list[float] = []
    cpu: list[float] = []
    with override_settings(METRICS_TOKEN="bench", ALLOWED_HOSTS=["*"]):
        body = client.get("/metrics", HTTP_AUTHORIZATION="Bearer bench").content
        for _ in range(SCRAPE_ROUNDS * SCRAPES_PER_ROUND):
            started, started_cpu = time.perf_counter(), time.process_time()
            response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer bench")
            durations.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - started_cpu) * 1000)
            assert response.status_code == 200, response.status_code
    series = sum(1 for line in body.decode().splitlines() if line and not line.startswith("#"))
    return durations, cpu, series, len(body)


def scrape_cold_ms() -> list[float]:
    """Scrapes with nothing kept: every day's rollups summed (the first scrape of a day, or
    after a late call changed a past day)."""
    from django.core.cache import cache
    from django.test import Client
    from django.test.utils import override_settings

    client = Client()
    durations = []
    with override_settings(METRICS_TOKEN="bench", ALLOWED_HOSTS=["*"]):
        for _ in range(SCRAPES_PER_ROUND):
            cache.clear()
            started = time.perf_counter()
            client.get("/metrics", HTTP_AUTHORIZATION="Bearer bench")
            durations.append((time.perf_counter() - started) * 1000)
    return durations


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    database_ensure()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    hooks = hooks_figures()
    us = {name: value * 1000 for name, value in hooks.items()}
    print(
        f"tracing hooks, CPU per model call: off {us['off_call']:.2f} µs "
        f"(with its step's span {us['off_step_and_call']:.2f} µs); on {us['on_call']:.1f} µs "
        f"(with its step's span {us['on_step_and_call']:.1f} µs)"
    )

    server, url = start_fakellm()
    try:
        gateway = asyncio.run(gateway_cpu_ms(url))
    finally:
        server.terminate()
        server.wait(10)
    print(
        f"gateway call, CPU of this process: tracing off {gateway['off']:.3f} ms, "
        f"on {gateway['on']:.3f} ms (+{gateway['on'] - gateway['off']:.3f} ms; medians of "
        f"{GATEWAY_ROUNDS} alternating rounds of {GATEWAY_CALLS})"
    )

    rows = seed_rollups()
    durations, cpu, series, size = scrape_ms()
    p50, p95 = statistics.median(durations), percentile(durations, 0.95)
    print(
        f"/metrics over {rows} daily rollup rows: {series} series, {size / 1024:.0f} KiB; "
        f"p50 {p50:.1f} ms, p95 {p95:.1f} ms, max {max(durations):.1f} ms "
        f"({len(durations)} scrapes); CPU of this process p50 {statistics.median(cpu):.1f} ms "
        f"(PostgreSQL's apart)"
    )
    cold = scrape_cold_ms()
    print(
        f"/metrics with nothing kept (every day summed): p50 {statistics.median(cold):.1f} ms, "
        f"max {max(cold):.1f} ms ({len(cold)} scrapes)"
    )
    print(
        json.dumps(
            {
                "instrumentation_ms_per_call": round(hooks["on_call"], 4),
                "instrumentation_with_step_span_ms_per_call": round(hooks["on_step_and_call"], 4),
                "instrumentation_tracing_off_ms_per_call": round(hooks["off_call"], 5),
                "gateway_cpu_ms_per_call_tracing_off": round(gateway["off"], 3),
                "gateway_cpu_ms_per_call_tracing_on": round(gateway["on"], 3),
                "scrape_ms_10k_series": round(p50, 1),
                "scrape_p95_ms_10k_series": round(p95, 1),
                "scrape_cpu_ms_10k_series": round(statistics.median(cpu), 1),
                "scrape_cold_ms_10k_series": round(statistics.median(cold), 1),
                "series": series,
                "rollup_rows": rows,
            }
        )
    )


if __name__ == "__main__":
    main()
