"""Budgets over runs: refused at launch, stopped or paused at the next step, with the reason."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from agents.budgets.models import Budget, BudgetPeriod
from agents.models import LedgerEntry
from tests.agents.factories import make_agent, make_provider
from tests.conftest import Personas
from tests.workflows.conftest import finished
from workflows.graph import examples
from workflows.models import Workflow
from workflows.services.runs import run_answer, run_retry, run_start
from workflows.services.workflows import workflow_create, workflow_publish

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def priced(personas: Personas, llm_server: Any) -> Workflow:
    """Three agents in a row on a gateway serving gpt-4o-mini, which has a public price."""
    gateway = make_provider(
        personas.workspace,
        kind="openai_compatible",
        name="Gateway",
        base_url=f"{llm_server.url}/v1",
    )
    ids = [
        str(
            make_agent(
                personas.workspace,
                name=name,
                provider=gateway,
                model={"provider_id": str(gateway.pk), "model": "gpt-4o-mini"},
                # A bounded answer bounds what a budget reserves for each call.
                max_tokens=64,
            ).pk
        )
        for name in ("Researcher", "Analyst", "Writer")
    ]
    workflow = workflow_create(
        workspace=personas.workspace,
        user=personas.owner,
        name="Priced",
        graph=examples.research_pipeline(*ids),
    )
    workflow_publish(workflow=workflow, user=personas.owner)
    return workflow


def _budget(personas: Personas, **fields: Any) -> Budget:
    # Far below one call's cost: the first call is admitted (nothing spent yet), none after it.
    defaults: dict[str, Any] = {"name": "Tiny", "period": "day", "hard_limit": Decimal("1e-6")}
    return Budget.objects.create(workspace=personas.workspace, **{**defaults, **fields})


def test_a_hard_limit_stops_the_run_at_its_next_step_with_the_reason(
    personas: Personas, priced: Workflow, executor: Any
) -> None:
    budget = _budget(personas, scope="workflow", target=str(priced.pk))

    run = finished(run_start(workflow=priced, user=personas.owner, inputs={"topic": "tea"}), 60)

    assert run.status == "failed"
    assert "Budget “Tiny” reached its hard limit of $0.000001" in run.reason
    assert LedgerEntry.objects.filter(run_id=run.pk).count() == 1
    assert run.steps.filter(status="completed", node_type="agent").count() == 1
    period = BudgetPeriod.objects.get(budget=budget)
    assert (period.calls, period.reserved) == (1, 0)
    assert period.spent == LedgerEntry.objects.get(run_id=run.pk).cost > 0

    # A spent budget refuses the next launch, and a retry, with the same reason.
    with pytest.raises(ValidationError, match="Not started: Budget “Tiny”"):
        run_start(workflow=priced, user=personas.owner, inputs={"topic": "tea"})
    with pytest.raises(ValidationError, match="Not retried: Budget “Tiny”"):
        run_retry(run=run, user=personas.owner)


def test_a_pausing_budget_waits_for_a_person_who_raises_the_limit_and_resumes(
    personas: Personas, priced: Workflow, executor: Any, client_for: Any
) -> None:
    from django.urls import reverse

    budget = _budget(personas, scope="user", target=str(personas.owner.pk), on_exceed="pause")

    run = finished(run_start(workflow=priced, user=personas.owner, inputs={"topic": "tea"}), 60)

    assert run.status == "waiting"
    request = run.waiting_request or {}
    assert "Budget “Tiny” reached its hard limit" in request["prompt"]
    page = client_for(personas.editor).get(reverse("run_detail", args=[run.pk])).content.decode()
    assert reverse("budget_detail", args=[budget.pk]) in page and "Approve" in page
    budget.hard_limit = Decimal("10")
    budget.save()
    run = finished(run_answer(run=run, step_key=request["step_key"], answer=True, user=None), 60)
    assert run.status == "succeeded", run.reason
    assert LedgerEntry.objects.filter(run_id=run.pk).count() == 3


def test_a_person_can_stop_a_paused_run(
    personas: Personas, priced: Workflow, executor: Any
) -> None:
    _budget(personas, on_exceed="pause")
    run = finished(run_start(workflow=priced, user=personas.owner, inputs={"topic": "tea"}), 60)
    assert run.status == "waiting"

    key = (run.waiting_request or {})["step_key"]
    run = finished(run_answer(run=run, step_key=key, answer=False, user=None), 60)

    assert run.status == "cancelled"
    assert "A person stopped the run" in run.reason
    assert LedgerEntry.objects.filter(run_id=run.pk).count() == 1


def test_an_agent_budget_refuses_its_call_and_the_run_stops_there(
    personas: Personas, priced: Workflow, executor: Any
) -> None:
    from agents.models import Agent
    from workflows.services.dispatch import dispatch_run

    # Made after the launch (which it would have refused), before the run executes.
    run = run_start(workflow=priced, user=personas.owner, inputs={"topic": "tea"}, dispatch=False)
    analyst = Agent.objects.get(workspace=personas.workspace, name="Analyst")
    _budget(personas, scope="agent", target=str(analyst.pk), hard_limit=Decimal(0))
    dispatch_run(run.pk)
    run = finished(run)

    assert run.status == "failed"
    assert "Budget “Tiny” reached its hard limit of $0" in run.reason
    # The researcher's call was made; the analyst's was refused before any request.
    assert LedgerEntry.objects.filter(run_id=run.pk).count() == 1


def _spent(personas: Personas, **fields: Any) -> Budget:
    """A budget whose current period already reached its hard limit."""
    from django.utils import timezone

    from agents.budgets.periods import period_bounds

    budget = _budget(personas, name="Spent", hard_limit=Decimal("2"), **fields)
    start, end = period_bounds("day", "UTC", timezone.now())
    BudgetPeriod.objects.create(budget=budget, starts_at=start, ends_at=end, spent=Decimal("2.5"))
    return budget


def test_every_way_of_launching_says_why_a_spent_budget_refuses(
    personas: Personas, priced: Workflow, client_for: Any
) -> None:
    from django.urls import reverse

    from workflows.models import Run

    _spent(personas)
    client = client_for(personas.editor)
    reason = "Budget “Spent” reached its hard limit of $2.00"

    form = client.post(reverse("workflow_run", args=[priced.pk]), {"topic": "tea"})
    assert form.status_code == 400 and reason in form.content.decode()

    api = client.post(
        reverse("workflow_run_api", args=[priced.pk]),
        {"inputs": {"topic": "tea"}},
        content_type="application/json",
    )
    assert api.status_code == 409
    assert reason in api.json()["error"] and api.json()["refused_by"] == "budget"
    assert not Run.objects.exists()


def test_a_budget_over_another_workflow_does_not_refuse_this_one(
    personas: Personas, priced: Workflow
) -> None:
    _spent(personas, scope="workflow", target="00000000-0000-0000-0000-000000000000")
    run = run_start(workflow=priced, user=personas.owner, inputs={"topic": "tea"}, dispatch=False)
    assert run.status == "queued"


def _overspend_within_in_flight(calls: list[tuple[Any, Any, Decimal]], limit: Decimal) -> bool:
    """Spend past the limit is at most the cost of the calls in flight when (in order of the
    calls' ends) cumulative spend crossed it."""
    total = sum((cost for _, _, cost in calls), Decimal(0))
    if total <= limit:
        return True
    running = Decimal(0)
    for _, finished_at, cost in sorted(calls, key=lambda call: call[1]):
        running += cost
        if running > limit:
            crossing = finished_at
            break
    in_flight = sum(
        (cost for started, finished_at, cost in calls if started <= crossing <= finished_at),
        Decimal(0),
    )
    return total - limit <= in_flight


@pytest.mark.services
@pytest.mark.slow
def test_two_workers_count_against_one_budget_and_stop_past_it(
    personas: Personas, priced: Workflow, llm_server: Any, settings: Any
) -> None:
    import uuid

    from agents.budgets.models import BudgetCharge
    from tests.support.processes import start_celery_worker
    from tests.support.waiting import wait_for
    from workflows.models import Run

    settings.EXECUTION_MODE = "celery"
    # Slow enough that the runs' calls overlap on both workers.
    llm_server.set_script(
        {"rules": [{"reply": "A steady answer.", "chunks": 4, "chunk_delay_ms": 80}]}
    )
    limit = Decimal("0.0001")  # about half of what the twelve runs would spend
    budget = _budget(personas, hard_limit=limit, scope="workflow", target=str(priced.pk))
    workers = [
        start_celery_worker(
            f"budget-{index}-{uuid.uuid4().hex[:6]}",
            A2A_DEMO_MODEL_URL=llm_server.url,
            A2A_OUTBOUND_ALLOWED_HOSTS="127.0.0.1",
        )
        for index in range(2)
    ]
    try:
        ids = [
            run_start(workflow=priced, user=personas.owner, inputs={"topic": f"t{i}"}).pk
            for i in range(12)
        ]
        wait_for(
            lambda: not Run.objects.filter(pk__in=ids, status__in=["queued", "running"]).exists(),
            timeout=120,
            interval=0.2,
            what="every run to end",
        )
    finally:
        for worker in workers:
            worker.stop()
    runs = Run.objects.filter(pk__in=ids)
    stopped = runs.filter(status="failed", reason__contains="Budget “Tiny” reached its hard limit")
    outcomes = list(runs.values_list("status", "reason"))
    assert stopped.exists(), set(outcomes)
    assert runs.filter(status__in=["succeeded", "failed"]).count() == 12, outcomes
    # Every reservation was settled at its call's real cost, whichever worker made it.
    calls = list(
        LedgerEntry.objects.filter(run_id__in=ids, finished_at__isnull=False).values_list(
            "started_at", "finished_at", "cost"
        )
    )
    period = BudgetPeriod.objects.get(budget=budget)
    assert period.reserved == 0
    assert not BudgetCharge.objects.filter(settled_at=None).exists()
    assert period.spent == sum((cost for _, _, cost in calls), Decimal(0)) > limit
    assert _overspend_within_in_flight(calls, limit)


def test_a_failed_budget_check_ends_the_run_with_its_reason_and_makes_no_call(
    personas: Personas, priced: Workflow, executor: Any, llm_server: Any, monkeypatch: Any
) -> None:
    from django.db import OperationalError

    from agents import ledger

    def unreachable(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("server closed the connection unexpectedly")

    _budget(personas, hard_limit=Decimal("10"))
    monkeypatch.setattr(ledger, "budgets_for", unreachable)

    run = finished(run_start(workflow=priced, user=personas.owner, inputs={"topic": "tea"}), 60)

    assert run.status == "failed"
    assert "The budget check could not be made (OperationalError)" in run.reason
    assert not LedgerEntry.objects.filter(run_id=run.pk).exists()
    assert llm_server.requests == []  # nothing reached the provider
