"""A run's calls land in the hourly rollups under its workflow, agents and launching user."""

from __future__ import annotations

from typing import Any

import pytest
from django.db.models import Sum

from agents.models import LedgerEntry, LedgerRollup
from agents.rollups import rollups_check
from tests.conftest import Personas
from tests.workflows.conftest import finished
from workflows.services.runs import run_start

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_runs_calls_are_rolled_up_by_workflow_agent_and_user(
    personas: Personas, pipeline: Any, executor: Any
) -> None:
    run = finished(run_start(workflow=pipeline, user=personas.owner, inputs={"topic": "tea"}))

    assert run.status == "succeeded", run.reason
    rows = LedgerRollup.objects.filter(workspace=personas.workspace)
    assert {row.workflow_id for row in rows} == {str(pipeline.pk)}
    assert {row.user_id for row in rows} == {str(personas.owner.pk)}
    assert len({row.agent_id for row in rows}) == 3
    calls = LedgerEntry.objects.filter(run_id=run.pk).count()
    assert rows.aggregate(calls=Sum("calls"))["calls"] == calls
    # Only a streamed answer has a time to first token; nobody watched this run, so its calls
    # streamed only until the deployment had shown it answers quickly (then they came plain).
    streamed = LedgerEntry.objects.filter(run_id=run.pk, first_token_ms__isnull=False).count()
    assert 0 < streamed <= calls
    assert rows.aggregate(n=Sum("first_token_count"))["n"] == streamed
    assert rollups_check() == []


@pytest.mark.services
@pytest.mark.slow
def test_concurrent_runs_on_two_workers_leave_the_rollups_equal_to_the_ledger(
    personas: Personas, pipeline: Any, llm_server: Any, settings: Any
) -> None:
    import uuid

    from tests.support.processes import start_celery_worker
    from tests.support.waiting import wait_for
    from workflows.models import TERMINAL_STATUSES, Run

    settings.EXECUTION_MODE = "celery"
    # Replies slow enough that the two workers' calls finish interleaved, in the same hours.
    llm_server.set_script({"rules": [{"reply": "A considered answer.", "delay_ms": 150}]})
    workers = [
        start_celery_worker(
            f"rollups-{index}-{uuid.uuid4().hex[:6]}",
            A2A_DEMO_MODEL_URL=llm_server.url,
            A2A_OUTBOUND_ALLOWED_HOSTS="127.0.0.1",
        )
        for index in range(2)
    ]
    try:
        runs = [
            run_start(workflow=pipeline, user=personas.owner, inputs={"topic": f"t{index}"})
            for index in range(8)
        ]

        def all_finished() -> bool:
            for worker in workers:
                worker.assert_running()
            return Run.objects.filter(
                pk__in=[run.pk for run in runs], status__in=TERMINAL_STATUSES
            ).count() == len(runs)

        wait_for(all_finished, timeout=90, what="the eight runs to finish")
    finally:
        for worker in workers:
            worker.stop()

    calls = LedgerEntry.objects.filter(run_id__in=[run.pk for run in runs]).count()
    assert calls == 24
    total = LedgerRollup.objects.filter(workspace=personas.workspace).aggregate(n=Sum("calls"))
    assert total["n"] == calls
    assert rollups_check() == []
