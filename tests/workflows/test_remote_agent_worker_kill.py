"""A real Celery worker SIGKILLed while a remote A2A agent works on the run's task: the second
worker follows the remembered task instead of sending the message again (the remote agent is a
real process counting what it receives)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.utils import timezone

from tests.conftest import Personas
from tests.support.processes import A2APeer, ServerProcess, start_celery_worker
from tests.support.waiting import wait_for
from tests.workflows.test_remote_agent_run import events, remote_workflow
from workflows.models import RemoteTask, Run, RunStatus
from workflows.services.reaper import runs_reap
from workflows.services.runs import run_start

pytestmark = [
    pytest.mark.services,
    pytest.mark.slow,
    pytest.mark.serial,
    pytest.mark.django_db(transaction=True),
]

LEASE = {"A2A_RUN_LEASE_SECONDS": "3", "A2A_RUN_HEARTBEAT_SECONDS": "1"}


@pytest.fixture
def peer() -> Iterator[A2APeer]:
    server = A2APeer()
    yield server
    server.stop()


def _worker(label: str) -> ServerProcess:
    return start_celery_worker(
        f"{label}-{uuid.uuid4().hex[:6]}", A2A_OUTBOUND_ALLOWED_HOSTS="127.0.0.1", **LEASE
    )


def test_a_worker_killed_mid_call_leaves_the_remote_task_to_be_followed_not_sent_again(
    personas: Personas, peer: A2APeer, settings: Any
) -> None:
    settings.EXECUTION_MODE = "celery"
    workflow = remote_workflow(personas, peer.url)
    first = _worker("first")
    second: ServerProcess | None = None
    try:
        run = run_start(workflow=workflow, user=personas.owner, inputs={"request": "hold"})
        remembered = wait_for(
            lambda: (first.assert_running(), RemoteTask.objects.filter(run=run).first())[1],
            timeout=60,
            what="the remote task to be remembered",
        )
        first.process.kill()
        first.process.wait(10)
        assert peer.calls()["messages"] == 1

        second = _worker("second")
        wait_for(
            lambda: Run.objects.get(pk=run.pk).lease_until < timezone.now(),
            timeout=30,
            what="the dead worker's lease to expire",
        )
        assert runs_reap().resumed == [run.pk]
        # The resumed step asks for the task (GetTask), then follows it (SubscribeToTask).
        wait_for(
            lambda: len(peer.calls()["authorization"]) >= 3,
            timeout=60,
            what="the second worker to follow the remembered task",
        )
        peer.release()
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
    assert run.output == "Released: hold"
    assert peer.calls()["messages"] == 1, "the message reached the remote agent once"
    assert peer.calls()["cancels"] == 0
    [call] = events(run, "remote_call")
    assert call["task_id"] == remembered.task_id and call["resumed"] is True
