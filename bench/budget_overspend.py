"""Budget enforcement across workers: how far past a hard limit 50 runs in flight can spend.

Setup as in production's distributed mode, on loopback: PostgreSQL, Redis, two real Celery worker
processes (the recovery bench's harness) and the fake LLM server in its own process, serving
`gpt-4o-mini` (priced from the public price list) slowly enough that many calls are in flight
together: about a second a call, 400 completion tokens each (agents cap answers at 512). Each
round makes a fresh workspace whose workflow (three agents in a row) has a hard budget worth
about half of what RUNS runs would spend, launches RUNS runs at once and waits for all to end.

Figures, from the ledger rows of the round (each call's start, end and cost):

* `overspend`: what the workflow spent beyond the hard limit;
* the crossing: the end of the call that took cumulative spend (in order of the calls' ends)
  past the limit; `in_flight_cost`: the cost of the calls in flight at that instant (started
  before it, ending at or after it: the crossing call included);
* `budget_overspend_calls`: calls charged beyond the limit (the crossing call and every call
  that ended after it), and `within_in_flight`: whether overspend ≤ in-flight cost;
* runs stopped by the budget (with its reason on the run) and calls the budget refused.

    python bench/budget_overspend.py               # 3 rounds of 50 runs on 2 workers
    python bench/budget_overspend.py --rounds 1 --runs 20

Database and Redis: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/
a2a_bench_budget) and BENCH_REDIS_URL (default redis://127.0.0.1:6379/14; flushed). Bounded; it
stops every process it started. The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/a2a_bench_budget")
os.environ.setdefault("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")

import recovery as harness  # noqa: E402  (the same processes, set up the same way)

COMPLETION_TOKENS = 400
MAX_TOKENS = 512
CALLS_PER_RUN = 3
SLOW_CALL = {
    "reply": "A considered answer about the topic, streamed at a steady pace.",
    "chunks": 10,
    "chunk_delay_ms": 100,
    "completion_tokens": COMPLETION_TOKENS,
}


def budget_workflow(runs: int) -> tuple[Any, Any, Decimal]:
    """A fresh workspace: three agents on gpt-4o-mini, a workflow, and a hard budget on it."""
    from a2a_site.accounts.models import Membership, Role, User, Workspace
    from agents.budgets.models import Budget
    from agents.llm.pricing import model_prices
    from agents.services.agents import agent_create
    from agents.services.providers import ProviderInput, provider_create
    from workflows.graph import examples
    from workflows.services.workflows import workflow_create, workflow_publish

    user, _ = User.objects.get_or_create(username="bench")
    workspace = Workspace.objects.create(name=f"Budget {time.time_ns()}", created_by=user)
    Membership.objects.create(workspace=workspace, user=user, role=Role.OWNER)
    provider = provider_create(
        workspace=workspace,
        user=user,
        data=ProviderInput(
            kind="openai_compatible", name="Gateway", base_url=f"{harness_url()}/v1"
        ),
    )
    ids = [
        str(
            agent_create(
                workspace=workspace,
                user=user,
                name=name,
                description="",
                config={
                    "role": name.lower(),
                    "model": {"provider_id": str(provider.pk), "model": "gpt-4o-mini"},
                    "max_tokens": MAX_TOKENS,
                },
                known_tools=[],
            ).pk
        )
        for name in ("Researcher", "Analyst", "Writer")
    ]
    workflow = workflow_create(
        workspace=workspace,
        user=user,
        name="Budget bench",
        graph=examples.research_pipeline(*ids),
    )
    workflow_publish(workflow=workflow, user=user)
    prices = model_prices("openai_compatible", "gpt-4o-mini")
    assert prices is not None, "gpt-4o-mini must be on the public price list"
    # About half of what every run would spend: the limit is crossed with many calls in flight.
    per_call = COMPLETION_TOKENS * prices[1]
    limit = (per_call * runs * CALLS_PER_RUN / 2).quantize(Decimal("0.000001"))
    budget = Budget.objects.create(
        workspace=workspace,
        name="Bench limit",
        scope=Budget.Scope.WORKFLOW,
        target=str(workflow.pk),
        period=Budget.Period.DAY,
        hard_limit=limit,
    )
    return workflow, budget, limit


_URL: list[str] = []


def harness_url() -> str:
    return _URL[0]


def crossing_figures(calls: list[tuple[Any, Any, Decimal]], limit: Decimal) -> dict[str, Any]:
    """From (started_at, finished_at, cost) of every finished call: overspend, the calls charged
    past the limit, and the cost in flight when cumulative spend crossed it."""
    total = sum((cost for _, _, cost in calls), Decimal(0))
    overspend = max(total - limit, Decimal(0))
    ordered = sorted(calls, key=lambda call: call[1])
    running = Decimal(0)
    crossing_at = None
    beyond = 0
    for _, finished_at, cost in ordered:
        running += cost
        if running > limit:
            if crossing_at is None:
                crossing_at = finished_at
            if cost > 0:
                beyond += 1
    in_flight = Decimal(0)
    in_flight_calls = 0
    if crossing_at is not None:
        for started_at, finished_at, cost in calls:
            if started_at <= crossing_at <= finished_at:
                in_flight += cost
                in_flight_calls += 1
    return {
        "spent": str(total),
        "overspend": str(overspend),
        "budget_overspend_calls": beyond,
        "in_flight_calls": in_flight_calls,
        "in_flight_cost": str(in_flight),
        "within_in_flight": overspend <= in_flight,
    }


def one_round(
    number: int, runs: int, workers: int, env: dict[str, str], logs: Path
) -> dict[str, Any]:
    from agents.budgets.models import BudgetPeriod
    from agents.models import LedgerEntry
    from workflows.models import Run
    from workflows.services.runs import run_start

    url = harness_url()
    harness.fakellm_post(url, "/_fakellm/reset")
    harness.fakellm_post(url, "/_fakellm/script", {"rules": [SLOW_CALL]})
    workflow, budget, limit = budget_workflow(runs)
    started = [
        harness.start_worker(f"budget-{number}-{index}-{os.getpid()}", env, logs)
        for index in range(workers)
    ]
    try:
        for process in started:
            harness.wait_until(
                lambda process=process: harness.worker_ready(process),
                timeout=60,
                what="a worker",
            )
        ids = [
            run_start(workflow=workflow, user=None, inputs={"topic": f"r{number} t{i}"}).pk
            for i in range(runs)
        ]
        harness.wait_until(
            lambda: not Run.objects.filter(pk__in=ids, status__in=["queued", "running"]).exists(),
            timeout=300,
            interval=0.2,
            what="every run to end",
        )
    finally:
        for process in started:
            harness.stop(process)
    rows = LedgerEntry.objects.filter(run_id__in=ids, finished_at__isnull=False)
    calls = list(rows.values_list("started_at", "finished_at", "cost"))
    figures = crossing_figures(calls, limit)
    period = BudgetPeriod.objects.get(budget=budget)
    finished = Run.objects.filter(pk__in=ids)
    stopped = finished.filter(status="failed", reason__contains="Bench limit").count()
    return {
        "round": number,
        "runs": runs,
        "workers": workers,
        "limit": str(limit),
        **figures,
        "calls": len(calls),
        "refused_calls": period.refused_calls,
        "period_spent": str(period.spent),
        "period_reserved_left": str(period.reserved),
        "runs_succeeded": finished.filter(status="succeeded").count(),
        "runs_stopped_by_budget": stopped,
        "runs_other": finished.exclude(status="succeeded").count() - stopped,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    fake, url = harness.start_fakellm()
    _URL.append(url)
    logs = Path(tempfile.mkdtemp(prefix="a2a-budget-bench-"))
    rounds = []
    try:
        harness.prepare(url)
        env = harness.environment(url)
        for number in range(1, args.rounds + 1):
            result = one_round(number, args.runs, args.workers, env, logs)
            print(json.dumps(result))
            rounds.append(result)
    finally:
        harness.stop(fake)
    print(
        json.dumps(
            {
                "rounds": len(rounds),
                "runs_per_round": args.runs,
                "workers": args.workers,
                "budget_overspend_calls": max(r["budget_overspend_calls"] for r in rounds),
                "overspend_max": max(
                    (Decimal(r["overspend"]) for r in rounds), default=0
                ).__str__(),
                "in_flight_cost_at_crossing_min": min(
                    (Decimal(r["in_flight_cost"]) for r in rounds), default=0
                ).__str__(),
                "overspend_within_in_flight": all(r["within_in_flight"] for r in rounds),
                "reservations_left": any(Decimal(r["period_reserved_left"]) for r in rounds),
            }
        )
    )


if __name__ == "__main__":
    main()
