"""A2A tasks in the distributed mode: a Celery worker process executes the run, one daphne
process takes the message, another streams the task and cancels it — the streams come from the
run's event log over Redis, not from any one process's memory."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from a2a.types.a2a_pb2 import (
    CancelTaskRequest,
    SendMessageRequest,
    SubscribeToTaskRequest,
    TaskState,
)

from agents.fakellm import start_in_thread
from tests.api.conftest import make_token
from tests.conftest import Personas
from tests.support.processes import start_celery_worker, start_daphne
from tests.workflows.test_a2a_serving import client_for, reviewed_workflow, user_message
from workflows.models import Run, RunStatus

pytestmark = [pytest.mark.services, pytest.mark.slow]


@pytest.fixture(scope="module")
def model() -> Iterator[Any]:
    with start_in_thread(name="a2a-dist-model") as server:
        yield server


@pytest.fixture(scope="module")
def cluster(django_db_setup: None, django_db_blocker: Any, model: Any) -> Iterator[list[str]]:
    env = {"A2A_DEMO_MODEL_URL": model.url, "A2A_OUTBOUND_ALLOWED_HOSTS": "127.0.0.1"}
    started: list[Any] = []
    try:
        with django_db_blocker.unblock():
            first, first_url = start_daphne("daphne-a2a-1", A2A_EXECUTION_MODE="celery", **env)
            started.append(first)
            second, second_url = start_daphne("daphne-a2a-2", A2A_EXECUTION_MODE="celery", **env)
            started.append(second)
            started.append(start_celery_worker(f"a2a-{uuid.uuid4().hex[:6]}", **env))
        yield [first_url, second_url]
    finally:  # also when one of them failed to start: none is left behind
        for process in reversed(started):
            process.stop()


def test_a_task_sent_to_one_process_is_followed_and_cancelled_on_another(
    cluster: list[str], model: Any, personas: Personas, transactional_db: None
) -> None:
    # The writer takes its time: the task is working while the other process watches.
    model.set_script({"rules": [{"reply": "Tides rise.", "delay_ms": 8000}]})
    workflow = reviewed_workflow(personas)
    token = make_token(personas.editor, "run")
    first, second = (f"{url}/a2a/{workflow.pk}/" for url in cluster)

    async def scenario() -> tuple[Any, list[Any], Any]:
        sender = await client_for(first, token, streaming=False)
        watcher = await client_for(second, token)
        try:
            request = SendMessageRequest(message=user_message("tides"))
            request.configuration.return_immediately = True
            [answer] = [event async for event in sender.send_message(request)]
            task = answer.task
            seen: list[Any] = []
            stream = watcher.subscribe(SubscribeToTaskRequest(id=task.id))
            async for event in stream:
                seen.append(event)
                if event.WhichOneof("payload") == "status_update" and (
                    event.status_update.status.state == TaskState.TASK_STATE_WORKING
                ):
                    break
            cancelled = await watcher.cancel_task(CancelTaskRequest(id=task.id))
            async for event in stream:  # the cancel comes through the same stream
                seen.append(event)
            return task, seen, cancelled
        finally:
            await sender.close()
            await watcher.close()

    task, seen, cancelled = asyncio.run(scenario())
    assert seen[0].WhichOneof("payload") == "task"
    assert cancelled.status.state == TaskState.TASK_STATE_CANCELED
    assert seen[-1].status_update.status.state == TaskState.TASK_STATE_CANCELED
    run = Run.objects.get(pk=task.id)
    assert run.status == RunStatus.CANCELLED
    assert run.lease_owner or run.attempts >= 1, "a worker process executed it"
