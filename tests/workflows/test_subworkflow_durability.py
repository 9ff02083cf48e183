"""A parent waiting on its sub-workflow's person step survives a worker killed mid-child.

Real Celery workers, PostgreSQL and Redis: the child is answered, its worker dies while the
child's model call is in flight, the reaper hands the child to a second worker, and the child's
end wakes the parent, which finishes with the child's output — every call counted once.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from django.db.models import Sum
from django.utils import timezone

from agents.models import LedgerEntry
from tests.conftest import Personas
from tests.support.processes import ServerProcess, start_celery_worker
from tests.support.waiting import wait_for
from tests.workflows.conftest import research_agents
from tests.workflows.test_subworkflow import _asking_child, _delegator
from workflows.models import Run, RunStatus
from workflows.services.reaper import runs_reap
from workflows.services.runs import run_answer, run_start

pytestmark = [
    pytest.mark.services,
    pytest.mark.slow,
    pytest.mark.serial,
    pytest.mark.django_db(transaction=True),
]

LEASE = {"A2A_RUN_LEASE_SECONDS": "3", "A2A_RUN_HEARTBEAT_SECONDS": "1"}


def _worker(llm_server: Any, label: str) -> ServerProcess:
    return start_celery_worker(
        f"{label}-{uuid.uuid4().hex[:6]}",
        A2A_DEMO_MODEL_URL=llm_server.url,
        A2A_OUTBOUND_ALLOWED_HOSTS="127.0.0.1",
        **LEASE,
    )


def _status(run: Run, *statuses: str) -> Run | None:
    found = Run.objects.get(pk=run.pk)
    return found if found.status in statuses else None


def test_a_waiting_parent_finishes_after_its_childs_worker_dies(
    personas: Personas, llm_server, settings
) -> None:
    settings.EXECUTION_MODE = "celery"
    llm_server.set_script({"rules": [{"reply": "A considered article.", "delay_ms": 1500}]})
    agent = research_agents(personas)[2]
    workflow = _delegator(personas, _asking_child(personas, str(agent.pk)), **{"*": "report"})
    first = _worker(llm_server, "first")
    second: ServerProcess | None = None
    try:
        parent = run_start(workflow=workflow, user=personas.owner, inputs={"topic": "moss"})
        parent = wait_for(
            lambda: (first.assert_running(), _status(parent, RunStatus.WAITING))[1],
            timeout=60,
            what="the parent to wait on its child's question",
        )
        child = Run.objects.get(parent=parent)
        assert child.status == RunStatus.WAITING
        assert parent.waiting_request["child_run_id"] == str(child.pk)

        run_answer(run=parent, step_key="delegate", answer="its history", user=personas.owner)
        wait_for(
            lambda: (first.assert_running(), len(llm_server.requests) >= 1)[1],
            timeout=60,
            interval=0.02,
            what="the child's model call to be in flight",
        )
        first.process.kill()
        first.process.wait(10)
        assert _status(parent, RunStatus.WAITING), "the parent still waits on its child"

        second = _worker(llm_server, "second")
        wait_for(
            lambda: (
                (lease := Run.objects.get(pk=child.pk).lease_until) is not None
                and lease < timezone.now()
            ),
            timeout=30,
            what="the dead worker's lease on the child to expire",
        )
        assert child.pk in runs_reap().resumed
        parent = wait_for(
            lambda: (second.assert_running(), _status(parent, RunStatus.SUCCEEDED))[1],
            timeout=90,
            what="the child to finish and wake its parent",
        )
    finally:
        first.stop()
        if second is not None:
            second.stop()

    child.refresh_from_db()
    assert child.status == RunStatus.SUCCEEDED and child.attempts == 3
    assert parent.output == child.output == "A considered article."
    assert parent.variables["report"] == child.output
    ledger = LedgerEntry.objects.filter(run_id=child.pk)
    # The call lost with the first worker is closed as unknown; the second made it again.
    assert ledger.filter(status="completed").count() == 1
    assert not ledger.filter(status="pending").exists()
    assert not LedgerEntry.objects.filter(run_id=parent.pk).exists()
    assert parent.model_calls == child.model_calls == ledger.count()
    assert parent.cost == child.cost == (ledger.aggregate(total=Sum("cost"))["total"] or Decimal(0))
