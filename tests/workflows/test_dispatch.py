"""A broker that is down never turns a launch, an answer or a cancel into an error.

The run is committed before it is dispatched; when the dispatch fails the run is marked as due,
and the reaper's next round sends it. (The same on real Redis, stopped by the test:
tests/workflows/test_redis_outage.py.)
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone
from kombu.exceptions import OperationalError

from tests.conftest import Personas
from workflows import live
from workflows.models import Run, RunStatus
from workflows.services import dispatch
from workflows.services.reaper import runs_reap
from workflows.services.runs import run_answer, run_cancel

pytestmark = pytest.mark.django_db(transaction=True)


class Broker:
    """A run's message as a broker would take it: down, or recording what it is sent and to
    which queue."""

    def __init__(self) -> None:
        self.down = True
        self.sent: list[str] = []
        self.queues: list[str] = []

    def send(self, run_id: str, queue: str) -> None:
        if self.down:
            raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        self.sent.append(run_id)
        self.queues.append(queue)


@pytest.fixture
def broker(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Broker:
    settings.EXECUTION_MODE = "celery"
    broker = Broker()
    monkeypatch.setattr(dispatch, "run_message_send", broker.send)
    return broker


def test_a_launch_while_the_broker_is_down_is_accepted_and_sent_by_the_reaper(
    personas: Personas, pipeline: Any, client_for: Any, broker: Broker
) -> None:
    response = client_for(personas.editor).post(
        reverse("workflow_run_api", args=[pipeline.pk]),
        json.dumps({"inputs": {"topic": "moths"}}),
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    run = Run.objects.get(pk=response.json()["run_id"])
    assert run.status == RunStatus.QUEUED
    # Marked as due: the reaper's next round resends it, not a minute later.
    assert runs_reap().redispatched == []  # still down: it stays due
    assert broker.sent == []
    broker.down = False
    report = runs_reap()
    assert report.redispatched == [run.pk]
    assert broker.sent == [str(run.pk)]
    run.refresh_from_db()
    assert run.dispatched_at is not None and run.dispatched_at > timezone.now() - _seconds(5)
    assert runs_reap().redispatched == []  # sent: not again until it goes stale


def test_an_answer_while_the_broker_is_down_is_kept_and_sent_later(
    personas: Personas, pipeline: Any, broker: Broker
) -> None:
    run = Run.objects.create(
        workspace=personas.workspace,
        workflow=pipeline,
        version=pipeline.versions.get(),
        created_by=personas.owner,
        status=RunStatus.WAITING,
        waiting_request={"step_key": "approve", "prompt": "OK?"},
    )
    run_answer(run=run, step_key="approve", answer={"approved": True}, user=personas.owner)
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED
    assert run.answers == {"approve": {"approved": True}}
    broker.down = False
    assert runs_reap().redispatched == [run.pk]


def test_a_cancel_while_the_layer_is_down_still_cancels(
    personas: Personas, pipeline: Any, broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(group: str, message: dict[str, Any]) -> None:
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(live, "_group_send", broken)
    run = Run.objects.create(
        workspace=personas.workspace,
        workflow=pipeline,
        version=pipeline.versions.get(),
        created_by=personas.owner,
    )
    run_cancel(run=run, user=personas.owner)
    assert Run.objects.get(pk=run.pk).status == RunStatus.CANCELLED


def _seconds(n: float) -> Any:
    from datetime import timedelta

    return timedelta(seconds=n)


def test_each_priority_has_its_queue_and_a_bad_one_is_named(
    personas: Personas, pipeline: Any, client_for: Any, broker: Broker
) -> None:
    broker.down = False
    client = client_for(personas.editor)
    url = reverse("workflow_run_api", args=[pipeline.pk])
    for priority in ("high", "low", None):
        body: dict[str, Any] = {"inputs": {"topic": "moths"}}
        if priority is not None:
            body["priority"] = priority
        response = client.post(url, json.dumps(body), content_type="application/json")
        assert response.status_code == 201, response.content
    # The workflow's default is normal: the runs' own queue, not Celery's default one.
    assert broker.queues == ["a2a-runs-high", "a2a-runs-low", "a2a-runs"]
    assert [run.get_priority_display() for run in Run.objects.order_by("created_at")] == [
        "high",
        "low",
        "normal",
    ]

    response = client.post(
        url,
        json.dumps({"inputs": {"topic": "moths"}, "priority": "urgent"}),
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "low" in response.json()["error"] and "high" in response.json()["error"]


def test_the_run_form_offers_the_priority_and_sends_it_to_its_queue(
    personas: Personas, pipeline: Any, client_for: Any, broker: Broker
) -> None:
    broker.down = False
    client = client_for(personas.editor)
    page = client.get(reverse("workflow_detail", args=[pipeline.pk]))
    assert 'name="run_priority"' in page.content.decode()

    response = client.post(
        reverse("workflow_run", args=[pipeline.pk]), {"topic": "moths", "run_priority": "high"}
    )
    assert response.status_code == 302
    run = Run.objects.get()
    assert run.priority == 2 and run.inputs == {"topic": "moths"}
    assert broker.queues == ["a2a-runs-high"]


@pytest.mark.services
def test_a_runs_message_is_the_one_celery_would_send() -> None:
    """On real Redis: the message sent for a run is Celery's own for `run_execute` (headers,
    body, properties), the ids aside, in the same queue."""
    import base64

    import redis
    from django.conf import settings as django_settings

    from workflows.tasks import run_execute

    prefix = django_settings.CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"]
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    key = f"{prefix}a2a-runs-low"
    client.delete(key)
    run_execute.apply_async(("run-a",), queue="a2a-runs-low")
    dispatch.run_message_send("run-a", "a2a-runs-low")
    raw = [json.loads(item) for item in client.lrange(key, 0, -1)]
    client.delete(key)
    assert len(raw) == 2
    celery, ours = raw[1], raw[0]  # LPUSH: the newest first
    ids = {"id", "root_id"}
    assert {k: v for k, v in ours["headers"].items() if k not in ids} == {
        k: v for k, v in celery["headers"].items() if k not in ids
    }
    assert (
        ours["headers"]["id"] == ours["headers"]["root_id"] == ours["properties"]["correlation_id"]
    )
    assert base64.b64decode(ours["body"]) == base64.b64decode(celery["body"])
    varying = {"correlation_id", "delivery_tag", "reply_to"}  # reply_to: no result is kept
    assert {k: v for k, v in ours["properties"].items() if k not in varying} == {
        k: v for k, v in celery["properties"].items() if k not in varying
    }
    assert {k: v for k, v in ours.items() if k not in {"headers", "properties", "body"}} == {
        k: v for k, v in celery.items() if k not in {"headers", "properties", "body"}
    }
