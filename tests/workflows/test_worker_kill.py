"""A real Celery worker killed mid-run: another worker finishes the run, and nothing happens twice.

The first worker is SIGKILLed at several points of a three-agent pipeline. After its lease
expires the reaper hands the run to a second worker, which must skip every step the first one
finished: no model call, event or ledger row twice, and the run's cost equal to the ledger.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from django.db.models import Q, Sum
from django.utils import timezone

from agents.models import LedgerEntry
from tests.conftest import Personas
from tests.support.processes import ServerProcess, start_celery_worker
from tests.support.waiting import wait_for
from workflows.models import Run, RunEvent, RunStatus, Step
from workflows.services.reaper import runs_reap
from workflows.services.runs import run_start

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


def _completed_steps(run: Run) -> int:
    return Step.objects.filter(run=run, status=Step.Status.COMPLETED).count()


KILL_POINTS = {
    # Killed while the second model call is in flight: that call is lost and made again.
    "during the second call": lambda run, server: len(server.requests) >= 2,
    # Killed right after the first step was recorded: nothing is lost.
    "after the first step": lambda run, server: _completed_steps(run) >= 1,
    # Killed with two of three steps done.
    "after the second step": lambda run, server: _completed_steps(run) >= 2,
}


@pytest.mark.parametrize("kill_point", list(KILL_POINTS))
def test_another_worker_finishes_the_run_without_doing_anything_twice(
    personas: Personas, pipeline, llm_server, settings, kill_point: str
) -> None:
    settings.EXECUTION_MODE = "celery"
    # Slow replies give the test time to kill the worker at the chosen point.
    llm_server.set_script({"rules": [{"reply": "A considered answer.", "delay_ms": 700}]})
    first = _worker(llm_server, "first")
    second: ServerProcess | None = None
    try:
        run = run_start(workflow=pipeline, user=personas.owner, inputs={"topic": "geothermal"})
        wait_for(
            lambda: (first.assert_running(), KILL_POINTS[kill_point](run, llm_server))[1],
            timeout=60,
            interval=0.02,
            what=kill_point,
        )
        first.process.kill()
        first.process.wait(10)
        calls_before = len(llm_server.requests)
        steps_before = _completed_steps(run)

        second = _worker(llm_server, "second")
        # The reaper runs on a schedule in production; here it runs once the lease has expired.
        wait_for(
            lambda: Run.objects.get(pk=run.pk).lease_until < timezone.now(),
            timeout=30,
            what="the dead worker's lease to expire",
        )
        report = runs_reap()
        assert report.resumed == [run.pk]
        run = wait_for(
            lambda: (r := Run.objects.get(pk=run.pk)).status in ("succeeded", "failed") and r,
            timeout=60,
            interval=0.05,
            what="the second worker to finish",
        )
    finally:
        first.stop()
        if second is not None:
            second.stop()

    assert run.status == RunStatus.SUCCEEDED, run.reason
    assert run.attempts == 2
    assert _completed_steps(run) == Step.objects.filter(run=run).count() == 3
    # Only the steps the first worker had not finished were executed again; a call that was in
    # flight when it died is lost and made again (its ledger row is closed as unknown).
    in_flight = calls_before - steps_before
    assert len(llm_server.requests) - calls_before == 3 - steps_before
    if kill_point == "during the second call":
        assert in_flight == 1
    messages = list(
        RunEvent.objects.filter(run=run, kind="message").values_list("step_key", flat=True)
    )
    assert len(messages) == len(set(messages)) == 3
    seqs = list(RunEvent.objects.filter(run=run).values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
    ledger = LedgerEntry.objects.filter(run_id=run.pk)
    assert ledger.filter(status="completed").count() == 3
    assert not ledger.filter(status="pending").exists()
    # A row written just before the worker died, before its request left, is unknown too.
    assert in_flight <= ledger.filter(status="unknown").count() <= in_flight + 1
    assert run.cost == (ledger.aggregate(total=Sum("cost"))["total"] or Decimal(0))


def test_a_run_delivered_twice_executes_once(
    personas: Personas, pipeline, llm_server, settings
) -> None:
    from workflows.tasks import run_execute

    settings.EXECUTION_MODE = "celery"
    worker = _worker(llm_server, "dup")
    try:
        run = run_start(workflow=pipeline, user=personas.owner, inputs={"topic": "wind"})
        run_execute.delay(str(run.pk))  # the broker's redelivery of the same message
        run_execute.delay(str(run.pk))
        run = wait_for(
            lambda: (
                (worker.assert_running(), (r := Run.objects.get(pk=run.pk)))[1].status
                == "succeeded"
                and r
            ),
            timeout=60,
            what="the run to succeed",
        )
    finally:
        worker.stop()
    assert run.attempts == 1
    assert len(llm_server.requests) == 3
    assert LedgerEntry.objects.filter(run_id=run.pk).count() == 3


def test_a_run_cancelled_after_its_worker_died_ends_cancelled_with_its_cost_settled(
    personas: Personas, pipeline, llm_server, settings
) -> None:
    from workflows.services.runs import run_cancel

    settings.EXECUTION_MODE = "celery"
    llm_server.set_script({"rules": [{"reply": "A considered answer.", "delay_ms": 700}]})
    worker = _worker(llm_server, "doomed")
    try:
        run = run_start(workflow=pipeline, user=personas.owner, inputs={"topic": "tides"})
        wait_for(
            lambda: (worker.assert_running(), len(llm_server.requests) >= 2)[1],
            timeout=60,
            interval=0.02,
            what="the second model call",
        )
        worker.process.kill()
        worker.process.wait(10)
    finally:
        worker.stop()

    # Asked while the dead worker's lease still looks alive: only the flag can be set.
    run = run_cancel(run=run, user=personas.owner)
    assert run.status == RunStatus.RUNNING and run.cancel_requested
    wait_for(
        lambda: Run.objects.get(pk=run.pk).lease_until < timezone.now(),
        timeout=30,
        what="the dead worker's lease to expire",
    )
    report = runs_reap()
    run.refresh_from_db()

    assert report.cancelled == [run.pk] and report.resumed == []
    assert run.status == RunStatus.CANCELLED and run.finished_at is not None
    ledger = LedgerEntry.objects.filter(run_id=run.pk)
    assert not ledger.filter(status="pending").exists()
    assert ledger.filter(status="unknown", cost_estimated=True).exists()
    assert run.cost == ledger.aggregate(total=Sum("cost"))["total"]
    assert run.model_calls == ledger.count()
    # Nothing brings it back: the reaper has nothing left to do with it.
    assert runs_reap().redispatched == []


def test_cancelling_a_run_whose_dead_worker_lease_expired_ends_it_at_once(
    personas: Personas, pipeline, llm_server, settings
) -> None:
    from workflows.services.runs import run_cancel

    settings.EXECUTION_MODE = "celery"
    llm_server.set_script({"rules": [{"reply": "A considered answer.", "delay_ms": 700}]})
    worker = _worker(llm_server, "doomed")
    try:
        run = run_start(workflow=pipeline, user=personas.owner, inputs={"topic": "tides"})
        wait_for(
            lambda: (worker.assert_running(), _completed_steps(run) >= 1)[1],
            timeout=60,
            interval=0.02,
            what="the first step",
        )
        worker.process.kill()
        worker.process.wait(10)
    finally:
        worker.stop()
    wait_for(
        lambda: Run.objects.get(pk=run.pk).lease_until < timezone.now(),
        timeout=30,
        what="the dead worker's lease to expire",
    )
    run = run_cancel(run=run, user=personas.owner)
    assert run.status == RunStatus.CANCELLED
    assert run.reason == "Cancelled by olivia."
    ledger = LedgerEntry.objects.filter(run_id=run.pk)
    assert not ledger.filter(status="pending").exists()
    assert run.cost == (ledger.aggregate(total=Sum("cost"))["total"] or Decimal(0))


def _owned_by(process: ServerProcess) -> str:
    return f":{process.process.pid}:"


def test_a_killed_workers_runs_resume_on_another_worker_within_seconds(
    personas: Personas, pipeline, llm_server, settings
) -> None:
    """With the default lease, a SIGKILLed worker's runs are running again elsewhere in < 10 s."""
    import time

    from workflows.models import Worker

    settings.EXECUTION_MODE = "celery"
    # Each answer streams for about 4 s, so the kill lands in the first call of every run.
    slow = {"reply": "A considered answer, streamed slowly.", "chunks": 8, "chunk_delay_ms": 500}
    llm_server.set_script({"rules": [slow]})
    start = {"A2A_DEMO_MODEL_URL": llm_server.url, "A2A_OUTBOUND_ALLOWED_HOSTS": "127.0.0.1"}
    first = start_celery_worker(f"first-{uuid.uuid4().hex[:6]}", **start)
    second: ServerProcess | None = None
    try:
        runs = [
            run_start(workflow=pipeline, user=personas.owner, inputs={"topic": f"t{i}"})
            for i in range(5)
        ]
        ids = [run.pk for run in runs]
        mine = _owned_by(first)
        wait_for(
            lambda: (
                (first.assert_running(), True)[1]
                and Run.objects.filter(
                    pk__in=ids, status="running", lease_owner__contains=mine
                ).count()
                == 5
            ),
            timeout=60,
            what="the first worker to hold every run",
        )
        second = start_celery_worker(f"second-{uuid.uuid4().hex[:6]}", **start)
        wait_for(
            lambda: (
                (second.assert_running(), True)[1]
                and Worker.objects.filter(pid=second.process.pid).exists()
            ),
            timeout=60,
            what="the second worker to be ready",
        )
        first.process.kill()
        killed = time.monotonic()
        first.process.wait(10)
        theirs = _owned_by(second)

        def all_resumed() -> bool:
            runs_reap()  # beat's job, every RUN_REAPER_SECONDS (1 s) in production
            return (
                Run.objects.filter(pk__in=ids)
                .filter(
                    Q(status="running", lease_owner__contains=theirs)
                    | Q(status="succeeded", attempts=2)
                )
                .count()
                == 5
            )

        wait_for(all_resumed, timeout=30, interval=0.5, what="every run to resume")
        resumed_after = time.monotonic() - killed
        wait_for(
            lambda: Run.objects.filter(pk__in=ids, status="succeeded").count() == 5,
            timeout=90,
            interval=0.1,
            what="every run to succeed",
        )
    finally:
        first.stop()
        if second is not None:
            second.stop()
    assert resumed_after < 10, f"resumed {resumed_after:.1f} s after the kill"
    for run in Run.objects.filter(pk__in=ids):
        ledger = LedgerEntry.objects.filter(run_id=run.pk)
        assert ledger.filter(status="completed").count() == 3
        assert run.cost == (ledger.aggregate(total=Sum("cost"))["total"] or Decimal(0))


def test_a_worker_stopped_politely_hands_its_runs_over_at_once(
    personas: Personas, pipeline, llm_server, settings
) -> None:
    settings.EXECUTION_MODE = "celery"
    llm_server.set_script({"rules": [{"reply": "A considered answer.", "delay_ms": 1500}]})
    worker = _worker(llm_server, "leaving")
    try:
        run = run_start(workflow=pipeline, user=personas.owner, inputs={"topic": "rolling"})
        wait_for(
            lambda: (worker.assert_running(), llm_server.requests)[1],
            timeout=60,
            what="the first model call",
        )
    finally:
        stopping = timezone.now()
        worker.stop()  # SIGTERM: Celery's warm shutdown
        stopped = timezone.now()
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING
    # Ended by the stop, at its moment: a lease left to run out would end at its last renewal
    # plus the lease, seconds later. (Compared with the lease read before the stop, this failed
    # when a loaded machine took longer to stop than that lease had left.)
    assert stopping <= run.lease_until <= stopped
    assert runs_reap().resumed == [run.pk]
