"""Run events delivered by a real Celery worker to a real receiver that fails twice: exactly one
accepted delivery per event, signed, in the run's order."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from typing import Any

import pytest

from tests.conftest import Personas
from tests.monitoring.alerts.conftest import (  # noqa: F401 - the fixture
    WebhookReceiver,
    standard_webhook_verify,
    webhook_receiver,
)
from tests.support.processes import start_celery_worker
from tests.support.waiting import wait_for
from tests.workflows.conftest import finished
from workflows.models import RunStatus, Workflow
from workflows.services.runs import run_start
from workflows.webhooks.models import WebhookDelivery
from workflows.webhooks.services import subscription_create

pytestmark = [pytest.mark.services, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_receiver_failing_twice_gets_each_event_once_from_the_worker(
    personas: Personas,
    pipeline: Workflow,
    llm_server: Any,
    settings: Any,
    webhook_receiver: WebhookReceiver,  # noqa: F811
) -> None:
    settings.EXECUTION_MODE = "celery"
    subscription, secret = subscription_create(
        workspace=personas.workspace,
        user=personas.owner,
        data={
            "name": "Back end",
            "url": webhook_receiver.url,
            "events": ["run.started", "run.succeeded", "run.failed"],
            "workflow": pipeline,
        },
    )
    webhook_receiver.answers = [500, 502]
    worker = start_celery_worker(
        f"hooks-{uuid.uuid4().hex[:6]}",
        A2A_DEMO_MODEL_URL=llm_server.url,
        A2A_OUTBOUND_ALLOWED_HOSTS="127.0.0.1",
        A2A_WEBHOOKS_BACKOFF_SECONDS="1",
    )
    try:
        run = finished(
            run_start(workflow=pipeline, user=personas.owner, inputs={"topic": "tides"}),
            timeout=90,
        )
        assert run.status == RunStatus.SUCCEEDED, run.reason

        def all_delivered() -> bool:
            worker.assert_running()
            rows = WebhookDelivery.objects.filter(subscription=subscription)
            return rows.count() == 2 and all(row.status == "delivered" for row in rows)

        wait_for(all_delivered, timeout=60, interval=0.1, what="both events delivered")
    finally:
        worker.stop()

    received = webhook_receiver.requests
    assert len(received) == 4  # two refused, then one accepted per event
    accepted = received[2:]
    assert [json.loads(r.body)["type"] for r in accepted] == ["run.started", "run.succeeded"]
    assert Counter(r.headers["webhook-id"] for r in accepted).most_common(1)[0][1] == 1
    # The refused attempts were run.started's (run.succeeded waited for it), under its id.
    assert {r.headers["webhook-id"] for r in received[:3]} == {accepted[0].headers["webhook-id"]}
    assert all(standard_webhook_verify(secret, r) for r in received)
    body = json.loads(accepted[1].body)
    assert body["data"]["run"]["id"] == str(run.pk)
    assert body["data"]["run"]["status"] == "succeeded"
    started = WebhookDelivery.objects.get(subscription=subscription, event="run.started")
    assert [entry["status_code"] for entry in started.log] == [500, 502, 200]
