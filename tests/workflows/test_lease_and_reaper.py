"""Leases make duplicate executions harmless; the reaper resumes runs whose worker died."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from a2a_site.db import Columns
from agents.models import LedgerEntry
from tests.conftest import Personas
from workflows.models import Run, RunStatus
from workflows.services.lease import (
    run_finish,
    run_lease_acquire,
    run_lease_acquire_reading,
    run_lease_renew,
)
from workflows.services.reaper import runs_reap
from workflows.services.runs import run_start


@pytest.fixture
def queued(personas: Personas, pipeline, settings) -> Run:
    settings.EXECUTION_MODE = "celery"
    settings.CELERY_TASK_ALWAYS_EAGER = False
    return run_start(workflow=pipeline, user=personas.owner, inputs={"topic": "x"}, dispatch=False)


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What would have been handed to the workers."""
    dispatched: list[str] = []

    def dispatch(run_id: Any) -> bool:
        dispatched.append(str(run_id))
        return True  # handed over (dispatch_run says False when the broker is down)

    monkeypatch.setattr("workflows.services.reaper.dispatch_run", dispatch)
    return dispatched


def test_only_one_worker_acquires_a_run(queued: Run) -> None:
    assert run_lease_acquire(queued.pk, owner="worker-a") is True
    assert run_lease_acquire(queued.pk, owner="worker-b") is False
    queued.refresh_from_db()
    assert (queued.status, queued.lease_owner, queued.attempts) == ("running", "worker-a", 1)


def test_the_lease_and_the_runs_read_come_together_and_only_for_its_taker(queued: Run) -> None:
    """On PostgreSQL the read sent with the take sees the run as taken (the same round trip
    and transaction); whoever does not take the lease gets no row. Elsewhere the lease is
    taken alone and the caller reads."""
    read = (
        "SELECT status, lease_owner, attempts FROM workflows_run WHERE id = %s",
        [Columns(Run).value("id", queued.pk)],
    )
    together = connection.vendor == "postgresql"
    assert run_lease_acquire_reading(queued.pk, owner="worker-a", read=read) == (
        True,
        ("running", "worker-a", 1) if together else None,
    )
    assert run_lease_acquire_reading(queued.pk, owner="worker-b", read=read) == (False, None)
    queued.refresh_from_db()
    assert (queued.status, queued.lease_owner, queued.attempts) == ("running", "worker-a", 1)


@pytest.mark.services  # PostgreSQL: only it sends the read with the take
@pytest.mark.django_db(transaction=True)  # as on an executor's database thread: autocommit
def test_a_read_that_fails_with_the_take_takes_no_lease(queued: Run) -> None:
    """Nothing half-written: on PostgreSQL a read that fails in the take's transaction leaves
    the run queued, for the reaper."""
    from django.db import DatabaseError

    assert connection.vendor == "postgresql"
    read = (
        "SELECT no_such_column FROM workflows_run WHERE id = %s",
        [Columns(Run).value("id", queued.pk)],
    )
    with pytest.raises(DatabaseError):
        run_lease_acquire_reading(queued.pk, owner="worker-a", read=read)
    queued.refresh_from_db()
    assert (queued.status, queued.lease_owner, queued.attempts) == ("queued", "", 0)


def test_a_lost_lease_fences_the_old_owner_out(queued: Run) -> None:
    run_lease_acquire(queued.pk, owner="worker-a")
    Run.objects.filter(pk=queued.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert run_lease_acquire(queued.pk, owner="worker-b") is True
    assert run_lease_renew(queued.pk, owner="worker-a") is False
    assert run_finish(queued.pk, owner="worker-a", status="succeeded") is False
    assert run_finish(queued.pk, owner="worker-b", status="succeeded", output="ok") is True
    queued.refresh_from_db()
    assert (queued.status, queued.output, queued.attempts) == ("succeeded", "ok", 2)


def test_the_reaper_resumes_a_run_whose_lease_expired(
    queued: Run, sent: list[str], django_capture_on_commit_callbacks
) -> None:
    run_lease_acquire(queued.pk, owner="dead-worker")
    Run.objects.filter(pk=queued.pk).update(lease_until=timezone.now() - timedelta(seconds=5))
    pending = LedgerEntry.objects.create(
        call_id=uuid.uuid4(),
        workspace_id=queued.workspace_id,
        deployment_id="p:gpt-4o-mini",
        provider_kind="openai",
        model="gpt-4o-mini",
        prompt_tokens_estimate=1000,
        run_id=queued.pk,
        started_at=timezone.now(),
    )
    with django_capture_on_commit_callbacks(execute=True):
        report = runs_reap()
    queued.refresh_from_db()
    pending.refresh_from_db()
    assert report.resumed == [queued.pk]
    assert queued.status == RunStatus.QUEUED and queued.lease_owner == ""
    assert sent == [str(queued.pk)]
    assert pending.status == "unknown" and pending.cost_estimated is True
    assert pending.cost > 0, "priced from LiteLLM's map for the estimated prompt"
    assert runs_reap().resumed == [], "a second reaper round finds nothing"


def test_a_run_that_keeps_losing_its_worker_fails_clearly(
    queued: Run, sent: list[str], settings
) -> None:
    settings.RUN_MAX_RESUMES = 2
    for _ in range(3):
        run_lease_acquire(queued.pk, owner="crashy")
        Run.objects.filter(pk=queued.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
        runs_reap()
    queued.refresh_from_db()
    assert queued.status == RunStatus.FAILED
    assert "stopped 3 times; giving up" in queued.reason


def test_a_run_queued_too_long_is_sent_again(queued: Run, sent: list[str], settings) -> None:
    Run.objects.filter(pk=queued.pk).update(dispatched_at=timezone.now() - timedelta(minutes=5))
    assert runs_reap().redispatched == [queued.pk]
    assert sent == [str(queued.pk)]
    assert runs_reap().redispatched == [], "not again until the interval passes"


def test_a_live_lease_is_left_alone(queued: Run, sent: list[str]) -> None:
    run_lease_acquire(queued.pk, owner="busy-worker")
    report = runs_reap()
    assert report.resumed == [] and report.failed == []
    queued.refresh_from_db()
    assert queued.lease_owner == "busy-worker"


def test_an_unanswered_question_times_out_and_the_run_resumes(
    queued: Run, sent: list[str], django_capture_on_commit_callbacks
) -> None:
    since = (timezone.now() - timedelta(seconds=120)).isoformat()
    Run.objects.filter(pk=queued.pk).update(
        status=RunStatus.WAITING,
        waiting_request={
            "step_key": "approve",
            "kind": "approval",
            "timeout_s": 60,
            "since": since,
        },
    )
    with django_capture_on_commit_callbacks(execute=True):
        report = runs_reap()
    queued.refresh_from_db()
    assert report.resumed == [queued.pk]
    assert queued.status == RunStatus.QUEUED
    assert queued.answers == {"approve": {"timed_out": True}}
    assert sent == [str(queued.pk)]


def test_a_question_within_its_time_keeps_waiting(queued: Run, sent: list[str]) -> None:
    Run.objects.filter(pk=queued.pk).update(
        status=RunStatus.WAITING,
        waiting_request={
            "step_key": "approve",
            "timeout_s": 600,
            "since": timezone.now().isoformat(),
        },
    )
    assert runs_reap().resumed == []
    assert Run.objects.get(pk=queued.pk).status == RunStatus.WAITING


def _pending_call(run: Run, *, tokens: int = 1000) -> LedgerEntry:
    return LedgerEntry.objects.create(
        call_id=uuid.uuid4(),
        workspace_id=run.workspace_id,
        deployment_id="p:gpt-4o-mini",
        provider_kind="openai",
        model="gpt-4o-mini",
        prompt_tokens_estimate=tokens,
        run_id=run.pk,
        started_at=timezone.now(),
    )


def _ledger_cost(run: Run):
    from django.db.models import Sum

    return LedgerEntry.objects.filter(run_id=run.pk).aggregate(total=Sum("cost"))["total"]


def test_cancelling_a_run_whose_worker_died_ends_it_at_once_with_its_cost_settled(
    queued: Run, sent: list[str], personas: Personas
) -> None:
    from workflows.services.runs import run_cancel

    run_lease_acquire(queued.pk, owner="dead-worker")
    pending = _pending_call(queued)
    Run.objects.filter(pk=queued.pk).update(lease_until=timezone.now() - timedelta(seconds=1))

    run = run_cancel(run=queued, user=personas.owner)

    pending.refresh_from_db()
    assert (run.status, run.reason, run.lease_owner) == ("cancelled", "Cancelled by olivia.", "")
    assert run.finished_at is not None
    assert pending.status == "unknown" and pending.cost_estimated is True
    assert run.cost == _ledger_cost(run) > 0
    assert run.model_calls == 1 and run.prompt_tokens == 1000
    assert run_lease_acquire(run.pk, owner="late-worker") is False
    assert runs_reap().resumed == [] and sent == []


def test_cancelling_a_run_a_live_worker_holds_only_asks_it_to_stop(
    queued: Run, sent: list[str], personas: Personas
) -> None:
    from workflows.services.runs import run_cancel

    run_lease_acquire(queued.pk, owner="live-worker")
    pending = _pending_call(queued)
    run = run_cancel(run=queued, user=personas.owner)
    pending.refresh_from_db()
    assert (run.status, run.cancel_requested, run.lease_owner) == (
        "running",
        True,
        "live-worker",
    )
    assert pending.status == "pending", "the live worker completes its own call"
    assert runs_reap().cancelled == []
    assert run_finish(run.pk, owner="live-worker", status="cancelled", reason="Cancelled.")
    run.refresh_from_db()
    assert run.status == "cancelled"


def test_the_reaper_ends_a_cancelled_run_whose_worker_died_instead_of_resuming_it(
    queued: Run, sent: list[str], personas: Personas
) -> None:
    from workflows.services.runs import run_cancel

    run_lease_acquire(queued.pk, owner="worker-that-dies")
    run_cancel(run=queued, user=personas.owner)  # asked while the worker still lived
    pending = _pending_call(queued, tokens=500)
    Run.objects.filter(pk=queued.pk).update(lease_until=timezone.now() - timedelta(seconds=1))

    report = runs_reap()

    queued.refresh_from_db()
    pending.refresh_from_db()
    assert report.cancelled == [queued.pk] and report.resumed == [] and sent == []
    assert queued.status == RunStatus.CANCELLED
    assert queued.reason == "Cancelled (the worker executing it had stopped)."
    assert pending.status == "unknown"
    assert queued.cost == _ledger_cost(queued) > 0


def test_a_queued_run_whose_cancel_was_asked_is_ended_not_sent_again(
    queued: Run, sent: list[str]
) -> None:
    # As runs were left by earlier versions: queued, cancel asked, nobody will ever take them.
    Run.objects.filter(pk=queued.pk).update(
        cancel_requested=True, dispatched_at=timezone.now() - timedelta(minutes=5)
    )
    report = runs_reap()
    queued.refresh_from_db()
    assert report.cancelled == [queued.pk] and report.redispatched == [] and sent == []
    assert queued.status == RunStatus.CANCELLED


def test_the_run_cost_is_copied_from_the_ledger_when_the_run_finishes(queued: Run) -> None:
    run_lease_acquire(queued.pk, owner="worker-a")
    call = _pending_call(queued)
    LedgerEntry.objects.filter(pk=call.pk).update(
        status="cancelled", prompt_tokens=10, completion_tokens=3, cost="0.00044"
    )
    assert run_finish(queued.pk, owner="worker-a", status="cancelled", reason="Cancelled.")
    queued.refresh_from_db()
    assert (queued.prompt_tokens, queued.completion_tokens, queued.model_calls) == (10, 3, 1)
    assert str(queued.cost.normalize()) == "0.00044"


def test_the_batched_renewal_extends_every_lease_of_one_owner(
    personas: Personas, pipeline, settings
) -> None:
    from workflows.services.lease import run_lease_renew_all

    settings.EXECUTION_MODE = "celery"
    runs = [
        run_start(workflow=pipeline, user=personas.owner, inputs={"topic": str(i)}, dispatch=False)
        for i in range(3)
    ]
    for run in runs[:2]:
        run_lease_acquire(run.pk, owner="worker-a")
    run_lease_acquire(runs[2].pk, owner="worker-b")
    soon = timezone.now() + timedelta(seconds=1)
    Run.objects.update(lease_until=soon)
    assert run_lease_renew_all(owner="worker-a") == 2
    leases = dict(Run.objects.values_list("pk", "lease_until"))
    assert leases[runs[0].pk] > soon and leases[runs[1].pk] > soon
    assert leases[runs[2].pk] == soon


def test_a_resumed_run_keeps_the_time_it_first_started(queued: Run) -> None:
    run_lease_acquire(queued.pk, owner="worker-a")
    queued.refresh_from_db()
    first_start = queued.started_at
    assert first_start is not None
    # The run waits for a person, is answered, and another worker takes it up again.
    run_finish(queued.pk, owner="worker-a", status=RunStatus.WAITING)
    Run.objects.filter(pk=queued.pk).update(status=RunStatus.QUEUED)

    assert run_lease_acquire(queued.pk, owner="worker-b") is True

    queued.refresh_from_db()
    assert queued.started_at == first_start
