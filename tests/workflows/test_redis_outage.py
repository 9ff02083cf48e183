"""Redis taken away in the middle of real runs: runs, model calls and costs do not depend on it.

A Redis of the test's own serves one daphne and one Celery worker (broker and channel layer);
PostgreSQL is the test database. The test kills Redis while 40 runs stream their answers and
starts it again (empty, as after a crash) once every run has gone on a step without it. Then:
every run succeeded, every model call is in the ledger as completed and priced, and every viewer
(a WebSocket client reconnecting the way the run page does) holds the whole stored transcript.
A second test launches a run through `runs.json` while Redis is down.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings
from django.db.models import Sum
from django.utils import timezone

from agents.models import LedgerEntry
from tests.conftest import Personas
from tests.support.live_viewer import Audience
from tests.support.outage import (
    Stack,
    browser_cookie,
    launch,
    outage_stack,
    priced_pipeline,
)
from tests.support.processes import ServerProcess, child_environment
from tests.support.waiting import wait_for
from workflows.models import TERMINAL_STATUSES, Run, RunEvent, RunStatus, Workflow

pytestmark = [
    pytest.mark.services,
    pytest.mark.slow,
    pytest.mark.serial,
    pytest.mark.django_db(transaction=True),
]

RUNS = 40


@pytest.fixture
def stack(llm_server: Any) -> Iterator[Stack]:
    with outage_stack(llm_server.url) as stack:
        yield stack


@pytest.fixture
def pipeline(personas: Personas) -> Workflow:
    return priced_pipeline(personas.workspace, personas.owner)


def test_runs_succeed_priced_and_watched_through_a_redis_outage(
    personas: Personas, pipeline: Workflow, llm_server: Any, stack: Stack
) -> None:
    # Slow streams: every run is mid-answer when Redis goes, and deltas keep failing meanwhile.
    llm_server.set_script(
        {
            "rules": [
                {"reply": "A considered answer, word by word.", "chunks": 12, "chunk_delay_ms": 200}
            ]
        }
    )
    cookie = browser_cookie(personas.owner)
    with ThreadPoolExecutor(8) as pool:
        launched = list(
            pool.map(lambda n: launch(stack, pipeline, cookie, f"topic {n}"), range(RUNS))
        )
    assert {status for status, _ in launched} == {201}, launched[:3]
    run_ids = [body["run_id"] for _, body in launched]
    audience = Audience(stack.url, cookie, run_ids)
    try:
        # Every run is streaming its first answer (and every viewer follows live)...
        wait_for(
            lambda: (stack.assert_running(), len(llm_server.requests) >= RUNS)[1],
            timeout=40,
            interval=0.05,
            what="every run's first model call",
        )
        wait_for(
            lambda: all(v.connects for v in audience.viewers.values()),
            timeout=20,
            what="every viewer to connect",
        )
        stack.redis.stop()
        calls_at_stop = len(llm_server.requests)
        # Each run still has at least one call to make (three each): the outage is mid-runs.
        assert calls_at_stop <= 2 * RUNS, calls_at_stop
        # ... and goes on without Redis: each makes its next call while it is down.
        wait_for(
            lambda: (stack.assert_running(), len(llm_server.requests) >= calls_at_stop + RUNS)[1],
            timeout=40,
            interval=0.05,
            what="the runs to go on while Redis is down",
        )
        stack.redis.start()

        def all_finished() -> list[Run] | None:
            stack.assert_running()
            runs = list(Run.objects.filter(pk__in=run_ids))
            return runs if all(run.status in TERMINAL_STATUSES for run in runs) else None

        runs = wait_for(all_finished, timeout=60, interval=0.2, what="every run to finish")
        assert [run.reason for run in runs if run.status != RunStatus.SUCCEEDED] == []

        # Every viewer holds the stored transcript, whole and once, and the final status.
        last_seq = dict(Run.objects.filter(pk__in=run_ids).values_list("pk", "last_seq"))
        wait_for(
            lambda: all(
                viewer.status == RunStatus.SUCCEEDED
                and viewer.seen == set(range(1, last_seq[uuid.UUID(run_id)] + 1))
                for run_id, viewer in audience.viewers.items()
            ),
            timeout=30,
            interval=0.1,
            what="every viewer to catch up",
        )
    finally:
        audience.close()

    # The viewers were cut off by the outage and told to reconnect with a code the server can
    # send (never left on a silent socket).
    closes = [code for viewer in audience.viewers.values() for code in viewer.closes]
    assert 4500 in closes, closes[:10]
    assert 1011 not in closes
    assert all(viewer.connects >= 2 for viewer in audience.viewers.values())

    # Every call the provider answered is in the books as completed and priced.
    ledger = LedgerEntry.objects.filter(run_id__in=run_ids)
    assert ledger.count() == len(llm_server.requests) == RUNS * 3
    assert list(ledger.exclude(status="completed").values_list("status", "error_kind")) == []
    assert not ledger.filter(cost__lte=0).exists()
    for run in runs:
        booked = ledger.filter(run_id=run.pk).aggregate(total=Sum("cost"))["total"]
        assert run.cost == booked > Decimal(0)
    assert RunEvent.objects.filter(run_id__in=run_ids, kind="message").count() == RUNS * 3


def start_beat(stack: Stack, tmp_path: Any) -> ServerProcess:
    """Celery beat sending the reaper every second, as production does every 15 s."""
    return ServerProcess(
        "celery-beat-outage",
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "a2a_site",
            "beat",
            "--loglevel=INFO",
            "-s",
            str(tmp_path / "beat-schedule"),
        ],
        child_environment(REDIS_URL=stack.redis.url(), A2A_RUN_REAPER_SECONDS="1"),
    )


def test_a_launch_while_redis_is_down_is_accepted_and_runs_when_it_returns(
    personas: Personas, pipeline: Workflow, llm_server: Any, stack: Stack, tmp_path: Any
) -> None:
    cookie = browser_cookie(personas.owner)
    status, body = launch(stack, pipeline, cookie, "warm-up")
    assert status == 201
    wait_for(
        lambda: Run.objects.get(pk=body["run_id"]).status == RunStatus.SUCCEEDED,
        timeout=30,
        what="a run before the outage",
    )
    stack.redis.stop()
    started = time.monotonic()
    status, body = launch(stack, pipeline, cookie, "during the outage")
    assert status == 201, body
    assert time.monotonic() - started < 5  # the broker's failure is found fast
    run = Run.objects.get(pk=body["run_id"])
    assert run.status == RunStatus.QUEUED
    assert Run.objects.filter(status=RunStatus.QUEUED).count() == 1  # no duplicate launch
    # Not dispatched, and marked so: the reaper's next round resends it, not a minute later.
    stale = timezone.now() - timedelta(seconds=settings.RUN_QUEUED_REDISPATCH_SECONDS)
    assert run.dispatched_at is not None and run.dispatched_at < stale
    stack.redis.start()
    beat = start_beat(stack, tmp_path)

    def finished() -> Run | None:
        stack.assert_running()
        beat.assert_running()
        current = Run.objects.get(pk=run.pk)
        return current if current.status in TERMINAL_STATUSES else None

    try:
        run = wait_for(
            finished, timeout=40, interval=0.1, what="the run launched during the outage to finish"
        )
    finally:
        beat.stop()
    assert run.status == RunStatus.SUCCEEDED, run.reason
    assert run.attempts == 1
    assert LedgerEntry.objects.filter(run_id=run.pk, status="completed").count() == 3


def test_a_worker_holding_an_unacked_message_survives_a_redis_restart(
    personas: Personas, pipeline: Workflow, llm_server: Any
) -> None:
    """The worker that died on reconnect held a message it had not acknowledged: with one run
    per process, the second run's message waits, unacked, while the first run executes. Runs'
    own queues are read without acknowledgements, so that message goes where every other
    task's does, and where runs' went before: Celery's default queue, acknowledged late."""
    import redis

    from a2a_site.celery import app
    from workflows.services.runs import run_start
    from workflows.tasks import run_execute

    llm_server.set_script({"rules": [{"reply": "Slow and sure.", "delay_ms": 1500}]})
    with outage_stack(llm_server.url, name="outage-unacked", A2A_RUNS_PER_PROCESS="1") as stack:
        cookie = browser_cookie(personas.owner)
        run_ids = [launch(stack, pipeline, cookie, "topic 0")[1]["run_id"]]
        wait_for(
            lambda: (stack.assert_running(), Run.objects.filter(status="running").count() == 1)[1],
            timeout=30,
            what="the first run to execute",
        )
        second = run_start(
            workflow=pipeline, user=personas.owner, inputs={"topic": "topic 1"}, dispatch=False
        )
        run_ids.append(str(second.pk))
        with app.connection_for_write(stack.redis.url()) as connection:
            run_execute.apply_async((str(second.pk),), queue="celery", connection=connection)
        broker = redis.Redis.from_url(stack.redis.url())
        unacked = f"{settings.CELERY_BROKER_TRANSPORT_OPTIONS['global_keyprefix']}unacked"
        try:
            wait_for(
                lambda: broker.hlen(unacked) == 1,
                timeout=30,
                what="the second run's message to wait, unacknowledged, in the worker",
            )
        finally:
            broker.close()
        stack.redis.stop()
        # The first run finishes without Redis; the worker then has to ack, and reconnect.
        wait_for(
            lambda: Run.objects.filter(pk=run_ids[0], status=RunStatus.SUCCEEDED).exists(),
            timeout=30,
            what="the first run to finish while Redis is down",
        )
        # The second run's task returns once the first run's slot is free, and its ack must meet
        # the dead broker (else nothing is left unacknowledged): Redis comes back only after that.
        wait_for(
            lambda: "Couldn't ack" in stack.worker.log_path.read_text(errors="replace"),
            timeout=30,
            what="the worker to fail to acknowledge the second run's message",
        )
        stack.redis.start()

        def finished() -> list[Run] | None:
            stack.assert_running()  # the worker did not die on reconnect
            runs = list(Run.objects.filter(pk__in=run_ids))
            return runs if all(run.status in TERMINAL_STATUSES for run in runs) else None

        runs = wait_for(finished, timeout=50, interval=0.1, what="both runs to finish")
        log = stack.worker.log_path.read_text(errors="replace")
    assert [run.status for run in runs] == [RunStatus.SUCCEEDED] * 2, [r.reason for r in runs]
    assert "Unrecoverable error" not in log
    # It lost the broker, gave back what it held, and connected again.
    assert "Restoring 1 unacknowledged message(s)" in log
    assert "Connected to" in log.split("Restoring 1 unacknowledged", 1)[1]
