"""The embedded mode's webhooks: no Celery — the web process runs the run, sends each delivery from
a thread of its own when its event commits, and its housekeeping round makes the retries."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from agents.fakellm import start_in_thread
from tests.api.conftest import make_token
from tests.conftest import Personas
from tests.monitoring.alerts.conftest import (  # noqa: F401 - the fixture
    WebhookReceiver,
    standard_webhook_verify,
    webhook_receiver,
)
from tests.support.processes import start_daphne
from tests.support.waiting import wait_for
from tests.workflows.conftest import research_agents
from workflows.graph import examples
from workflows.services.workflows import workflow_create, workflow_publish
from workflows.webhooks.models import WebhookDelivery
from workflows.webhooks.services import subscription_create

# Two processes writing one SQLite file lock each other out; this runs on PostgreSQL.
pytestmark = [pytest.mark.services, pytest.mark.slow]


@pytest.fixture(scope="module")
def model() -> Iterator[Any]:
    with start_in_thread(name="hooks-embedded-model") as server:
        yield server


@pytest.fixture(scope="module")
def server(django_db_setup: None, django_db_blocker: Any, model: Any) -> Iterator[str]:
    with django_db_blocker.unblock():
        process, url = start_daphne(
            "daphne-hooks-embedded",
            REDIS_URL="",
            A2A_EXECUTION_MODE="embedded",
            A2A_EXECUTOR_AUTOSTART="true",
            A2A_DEMO_MODEL_URL=model.url,
            A2A_OUTBOUND_ALLOWED_HOSTS="127.0.0.1",
            A2A_WEBHOOKS_SEND_AT_ONCE="true",
            A2A_WEBHOOKS_BACKOFF_SECONDS="1",
            A2A_WEBHOOKS_ROUND_SECONDS="1",
        )
    yield url
    process.stop()


def test_the_web_process_sends_and_retries_a_runs_events(
    server: str,
    personas: Personas,
    transactional_db: None,
    webhook_receiver: WebhookReceiver,  # noqa: F811
) -> None:
    researcher, analyst, writer = research_agents(personas)
    graph = examples.research_pipeline(str(researcher.pk), str(analyst.pk), str(writer.pk))
    workflow = workflow_create(
        workspace=personas.workspace, user=personas.owner, name="Research", graph=graph
    )
    workflow_publish(workflow=workflow, user=personas.owner)
    subscription, secret = subscription_create(
        workspace=personas.workspace,
        user=personas.owner,
        data={
            "name": "Back end",
            "url": webhook_receiver.url,
            "events": ["run.started", "run.succeeded"],
            "workflow": None,
        },
    )
    webhook_receiver.answers = [503]
    launcher = make_token(personas.editor, "run")
    with httpx.Client(base_url=server, timeout=60) as http:
        launched = http.post(
            f"/api/v1/workflows/{workflow.pk}/runs",
            json={"inputs": {"topic": "tides"}},
            headers={"Authorization": f"Bearer {launcher}"},
        )
    assert launched.status_code == 201, launched.text

    def delivered() -> bool:
        rows = WebhookDelivery.objects.filter(subscription=subscription)
        return rows.count() == 2 and all(row.status == "delivered" for row in rows)

    wait_for(delivered, timeout=60, interval=0.1, what="both events delivered in-process")
    received = webhook_receiver.requests
    assert [json.loads(r.body)["type"] for r in received] == [
        "run.started",
        "run.started",
        "run.succeeded",
    ]
    assert received[0].headers["webhook-id"] == received[1].headers["webhook-id"]
    assert all(standard_webhook_verify(secret, r) for r in received)
