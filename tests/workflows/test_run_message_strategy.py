"""A solo-pool worker takes a run's message by its own short path (hand-over, then the ack),
and leaves every other message to Celery's: one with an ETA here. Real worker, Redis and
PostgreSQL; both runs finish, and the log says which path each took."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.conftest import Personas
from tests.support.processes import start_celery_worker
from tests.support.waiting import wait_for
from workflows.models import Run, RunStatus, Step, Worker
from workflows.services.runs import run_start
from workflows.tasks import run_execute

pytestmark = [pytest.mark.services, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _await_ready(worker: Any, name: str) -> None:
    wait_for(
        lambda: (worker.assert_running(), Worker.objects.filter(name__startswith=name))[1].exists(),
        timeout=60,
        interval=0.1,
        what="the worker to be ready",
    )


def test_a_runs_message_takes_the_short_path_and_a_delayed_one_celerys(
    personas: Personas, pipeline: Any, llm_server: Any, settings: Any
) -> None:
    settings.EXECUTION_MODE = "celery"
    name = f"strategy-{uuid.uuid4().hex[:6]}"
    worker = start_celery_worker(
        name, A2A_DEMO_MODEL_URL=llm_server.url, A2A_OUTBOUND_ALLOWED_HOSTS="127.0.0.1"
    )
    try:
        _await_ready(worker, name)
        quick = run_start(workflow=pipeline, user=personas.owner, inputs={"topic": "tides"})
        later = run_start(
            workflow=pipeline, user=personas.owner, inputs={"topic": "waves"}, dispatch=False
        )
        run_execute.apply_async((str(later.pk),), countdown=0.5)

        def both_done() -> bool:
            worker.assert_running()
            ended = Run.objects.filter(pk__in=[quick.pk, later.pk], status=RunStatus.SUCCEEDED)
            return ended.count() == 2

        wait_for(both_done, timeout=60, interval=0.1, what="both runs to succeed")
        log = worker.log()
    finally:
        worker.stop()

    # Each message was received, and logged so, once.
    received = [line for line in log.splitlines() if "run_execute[" in line and "received" in line]
    assert len(received) == 2, received
    # Celery's tracer reports the delayed one's task as succeeded; the run's own message
    # never went through the tracer.
    succeeded = [
        line for line in log.splitlines() if "run_execute[" in line and "succeeded" in line
    ]
    assert len(succeeded) == 1, succeeded
    assert Run.objects.get(pk=quick.pk).attempts == Run.objects.get(pk=later.pk).attempts == 1


@pytest.mark.parametrize(("pool", "unacknowledged"), [("solo", 0), ("threads", 1)])
def test_a_run_queues_message_is_taken_without_acknowledgement_bookkeeping_by_a_solo_worker(
    personas: Personas,
    pipeline: Any,
    llm_server: Any,
    settings: Any,
    pool: str,
    unacknowledged: int,
) -> None:
    """A solo-pool worker reads runs' queues without acknowledgements (the reaper, not the
    broker, recovers a lost message): with one run per process, a second run's message read
    while the first run executes waits in the worker, out of its queue and out of the broker's
    set of unacknowledged messages. Any other pool keeps Celery's late acknowledgements (its
    prefetch limit counts only those): there the message waits unacknowledged. Then both runs
    finish, each in one attempt."""
    import redis

    settings.EXECUTION_MODE = "celery"
    llm_server.set_script({"rules": [{"reply": "Slow and sure.", "delay_ms": 700}]})
    prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"]
    broker = redis.Redis.from_url(settings.REDIS_URL)
    name = f"no-ack-{uuid.uuid4().hex[:6]}"
    worker = start_celery_worker(
        name,
        A2A_DEMO_MODEL_URL=llm_server.url,
        A2A_OUTBOUND_ALLOWED_HOSTS="127.0.0.1",
        pool=pool,
        A2A_RUNS_PER_PROCESS="1",
    )
    try:
        _await_ready(worker, name)
        first = run_start(workflow=pipeline, user=personas.owner, inputs={"topic": "tides"})
        wait_for(
            lambda: (worker.assert_running(), Run.objects.get(pk=first.pk).started_at)[1],
            timeout=30,
            interval=0.05,
            what="the first run to be leased",
        )
        second = run_start(workflow=pipeline, user=personas.owner, inputs={"topic": "waves"})
        wait_for(
            lambda: broker.llen(f"{prefix}a2a-runs") == 0,
            timeout=30,
            interval=0.02,
            what="the worker to read the second run's message",
        )
        # Some time later (the broker's bookkeeping, if any, follows the read within a
        # moment; the first run has two more steps of 0.7 s to go):
        wait_for(
            lambda: Step.objects.filter(run=first, status=Step.Status.COMPLETED).exists(),
            timeout=30,
            what="the first run's first step to complete",
        )
        # Read, and waiting in the worker for the first run's place.
        assert Run.objects.get(pk=first.pk).status == RunStatus.RUNNING
        assert Run.objects.get(pk=second.pk).status == RunStatus.QUEUED
        assert broker.hlen(f"{prefix}unacked") == unacknowledged

        def both_done() -> bool:
            worker.assert_running()
            ended = Run.objects.filter(pk__in=[first.pk, second.pk], status=RunStatus.SUCCEEDED)
            return ended.count() == 2

        wait_for(both_done, timeout=60, interval=0.1, what="both runs to succeed")
    finally:
        worker.stop()
        broker.close()
    assert Run.objects.get(pk=first.pk).attempts == Run.objects.get(pk=second.pk).attempts == 1
