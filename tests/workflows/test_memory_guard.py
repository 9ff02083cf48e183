"""The memory guard, with real Celery workers made to exceed a tiny limit (1 MB).

A worker over its limit takes no new runs, lets its runs finish (or hands them over when its
drain time is up), and restarts itself in place; every run still completes, once.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
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
TRIPPED = "taking no new runs"
RESTARTING = "Memory guard: restarting the worker"


def _worker(llm_server: Any, label: str, **env: str) -> ServerProcess:
    return start_celery_worker(
        f"{label}-{uuid.uuid4().hex[:6]}",
        A2A_DEMO_MODEL_URL=llm_server.url,
        A2A_OUTBOUND_ALLOWED_HOSTS="127.0.0.1",
        **LEASE,
        **env,
    )


def _log(worker: ServerProcess) -> str:
    return worker.log_path.read_text(errors="replace")


def _readies(worker: ServerProcess) -> int:
    return _log(worker).count(" ready.")


def _finished(run: Run, *, timeout: float = 60, reap: bool = False) -> Run:
    def done() -> Run | None:
        if reap:
            runs_reap()  # beat's schedule, in miniature
        current = Run.objects.get(pk=run.pk)
        return current if current.status in ("succeeded", "failed", "cancelled") else None

    return wait_for(done, timeout=timeout, interval=0.2, what=f"run {run.pk} to finish")


def _once_each(run: Run, *, handed_over: bool = False) -> None:
    assert Step.objects.filter(run=run, status=Step.Status.COMPLETED).count() == 3
    calls = LedgerEntry.objects.filter(run_id=run.pk, status="completed").count()
    if handed_over:
        # A call that answered just as the hand-over cancelled its step is booked (it was paid)
        # and its step is done again by the next worker: at most one such call per hand-over.
        assert 3 <= calls <= 4, calls
    else:
        assert calls == 3
    messages = list(
        RunEvent.objects.filter(run=run, kind="message").values_list("step_key", flat=True)
    )
    assert len(messages) == len(set(messages)) == 3


def test_a_worker_over_its_limit_finishes_its_run_takes_no_new_one_and_restarts(
    personas: Personas, pipeline: Any, llm_server: Any, settings: Any
) -> None:
    settings.EXECUTION_MODE = "celery"
    llm_server.set_script({"rules": [{"reply": "A considered answer.", "delay_ms": 800}]})
    worker = _worker(
        llm_server, "guarded", A2A_WORKER_MAX_RSS_MB="1", A2A_WORKER_DRAIN_SECONDS="60"
    )
    try:
        wait_for(lambda: (worker.assert_running(), _readies(worker) == 1)[1], timeout=60)
        pid = worker.process.pid
        first = run_start(workflow=pipeline, user=personas.owner, inputs={"topic": "tides"})
        wait_for(
            lambda: (worker.assert_running(), TRIPPED in _log(worker))[1],
            timeout=30,
            what="the guard to trip",
        )
        assert Run.objects.get(pk=first.pk).status == RunStatus.RUNNING  # still executing here
        # It stops consuming every queue of runs, not only the normal one, and Celery's
        # default queue, where runs' messages went before.
        for queue in ("a2a-runs-high", "a2a-runs", "a2a-runs-low", "celery"):
            wait_for(
                lambda queue=queue: (
                    worker.assert_running(),
                    f"Canceling queue {queue}" in _log(worker),
                )[1],
                timeout=30,
                what=f"the worker to stop consuming {queue}",
            )
        second = run_start(workflow=pipeline, user=personas.owner, inputs={"topic": "waves"})
        urgent = run_start(
            workflow=pipeline, user=personas.owner, inputs={"topic": "surf"}, priority="high"
        )

        first = _finished(first)
        wait_for(
            lambda: (worker.assert_running(), _readies(worker) == 2)[1],
            timeout=60,
            what="the worker to restart",
        )
        restarted_at = timezone.now()
        second = _finished(second)
        urgent = _finished(urgent)
    finally:
        worker.stop()

    assert RESTARTING in _log(worker)
    assert worker.process.pid == pid  # restarted in place: the same process, a fresh image
    # The first run finished where it was, in one attempt, before the restart.
    assert first.status == RunStatus.SUCCEEDED, first.reason
    assert first.attempts == 1
    assert first.finished_at < restarted_at
    _once_each(first)
    # The second was not taken while the worker drained: it ran after the restart.
    assert second.status == RunStatus.SUCCEEDED, second.reason
    first_step = Step.objects.filter(run=second).order_by("started_at").first()
    assert first_step is not None and first_step.started_at > first.finished_at
    _once_each(second)
    # The high-priority run waited too; no message was taken, refused and put back while the
    # worker drained.
    assert urgent.status == RunStatus.SUCCEEDED, urgent.reason
    urgent_step = Step.objects.filter(run=urgent).order_by("started_at").first()
    assert urgent_step is not None and urgent_step.started_at > first.finished_at
    taken = [
        line for line in _log(worker).splitlines() if "run_execute[" in line and "received" in line
    ]
    assert len(taken) == 3, taken  # the three runs' messages, once each
    _once_each(urgent)


def test_a_run_still_executing_when_the_drain_time_ends_is_handed_to_another_worker(
    personas: Personas, pipeline: Any, llm_server: Any, settings: Any
) -> None:
    settings.EXECUTION_MODE = "celery"
    llm_server.set_script({"rules": [{"reply": "A considered answer.", "delay_ms": 800}]})
    guarded = _worker(
        llm_server, "guarded", A2A_WORKER_MAX_RSS_MB="1", A2A_WORKER_DRAIN_SECONDS="0"
    )
    other: ServerProcess | None = None
    try:
        wait_for(lambda: (guarded.assert_running(), _readies(guarded) == 1)[1], timeout=60)
        run = run_start(workflow=pipeline, user=personas.owner, inputs={"topic": "currents"})
        wait_for(
            lambda: (guarded.assert_running(), RESTARTING in _log(guarded))[1],
            timeout=30,
            what="the guard to hand the run over",
        )
        other = _worker(llm_server, "roomy")
        run = _finished(run, reap=True)
        guarded.assert_running()  # it came back
    finally:
        guarded.stop()
        if other is not None:
            other.stop()

    assert run.status == RunStatus.SUCCEEDED, run.reason
    assert run.attempts >= 2  # resumed after the hand-over
    _once_each(run, handed_over=True)
    assert not LedgerEntry.objects.filter(run_id=run.pk, status="pending").exists()
