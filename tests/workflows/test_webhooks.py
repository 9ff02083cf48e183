"""Webhook subscriptions to run and alert events: the outbox written with the status change,
deliveries signed, retried with backoff for a day, one accepted delivery per event, in order per
run, under the outbound policy, redelivered on request. Deliveries reach a real HTTP receiver
on loopback; the sender is called as the round calls it, with the clock given."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from tests.conftest import Personas
from tests.monitoring.alerts.conftest import (  # noqa: F401 - the fixture
    WebhookReceiver,
    standard_webhook_verify,
    webhook_receiver,
)
from tests.workflows.conftest import research_agents
from workflows.graph import examples
from workflows.models import Run, RunStatus, Workflow
from workflows.services.lease import run_cancel_unattended, run_finish, run_lease_acquire
from workflows.services.runs import run_start
from workflows.services.workflows import workflow_create, workflow_publish
from workflows.webhooks.delivery import webhooks_send_due
from workflows.webhooks.models import WebhookDelivery, WebhookSubscription
from workflows.webhooks.queue import DeliveryStatus
from workflows.webhooks.services import (
    delivery_redeliver,
    subscription_clean,
    subscription_create,
)

ALL_RUN_EVENTS = ["run.started", "run.waiting", "run.succeeded", "run.failed", "run.cancelled"]


@pytest.fixture
def allow_loopback_hooks(settings: Any) -> None:
    """An administrator allow-listed this machine, as for a local receiver."""
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]


@pytest.fixture
def workflow(personas: Personas) -> Workflow:
    researcher, analyst, writer = research_agents(personas)
    graph = examples.research_pipeline(str(researcher.pk), str(analyst.pk), str(writer.pk))
    made = workflow_create(
        workspace=personas.workspace, user=personas.owner, name="Research", graph=graph
    )
    workflow_publish(workflow=made, user=personas.owner)
    return made


def subscribe(
    personas: Personas,
    url: str,
    events: list[str] | None = None,
    workflow: Workflow | None = None,
    allow: bool = True,
) -> tuple[WebhookSubscription, str]:
    data = {
        "name": "Deploy bot",
        "url": url,
        "events": events or ALL_RUN_EVENTS,
        "workflow": workflow,
    }
    return subscription_create(workspace=personas.workspace, user=personas.owner, data=data)


def queued(workflow: Workflow, personas: Personas) -> Run:
    return run_start(
        workflow=workflow, user=personas.owner, inputs={"topic": "tides"}, dispatch=False
    )


def run_to(run: Run, status: str, owner: str = "worker-1") -> None:
    """What an executor does: take the lease, then end the run with `status`."""
    assert run_lease_acquire(run.pk, owner=owner)
    assert run_finish(run.pk, owner=owner, status=status, output={"text": "Done."})


def events_of(subscription: WebhookSubscription) -> list[str]:
    return list(subscription.deliveries.order_by("id").values_list("event", flat=True))


def test_each_status_change_writes_one_delivery_per_subscription(
    personas: Personas, workflow: Workflow
) -> None:
    everything, _ = subscribe(personas, "https://hooks.example.com/all")
    endings, _ = subscribe(personas, "https://hooks.example.com/ends", ["run.succeeded"])
    other = workflow_create(workspace=personas.workspace, user=personas.owner, name="Other")
    elsewhere, _ = subscribe(personas, "https://hooks.example.com/other", workflow=other)
    off, _ = subscribe(personas, "https://hooks.example.com/off")
    WebhookSubscription.objects.filter(pk=off.pk).update(enabled=False)

    run = queued(workflow, personas)
    run_to(run, RunStatus.WAITING)
    Run.objects.filter(pk=run.pk).update(status=RunStatus.QUEUED)  # answered
    run_to(run, RunStatus.SUCCEEDED, owner="worker-2")

    # Resuming after the wait is no second start.
    assert events_of(everything) == ["run.started", "run.waiting", "run.succeeded"]
    assert events_of(endings) == ["run.succeeded"]
    assert events_of(elsewhere) == [] and events_of(off) == []
    started, waiting, succeeded = everything.deliveries.order_by("id")
    assert {started.run_id, succeeded.run_id} == {run.pk}
    body = json.loads(succeeded.body)
    assert body["type"] == "run.succeeded"
    assert body["data"]["run"]["id"] == str(run.pk)
    assert body["data"]["run"]["status"] == "succeeded"
    assert body["data"]["run"]["output"] == {"text": "Done."}
    assert body["data"]["run"]["workflow_name"] == "Research"
    # One event, one id: the two subscriptions' deliveries of it share their webhook-id.
    assert endings.deliveries.get().event_id == succeeded.event_id
    assert len({started.event_id, waiting.event_id, succeeded.event_id}) == 3


def test_a_lease_taken_with_the_runs_read_is_a_start_event_too(
    personas: Personas, workflow: Workflow
) -> None:
    """With a subscription listening, the take that would read the run in the same trip
    takes nothing; the lease is then taken with its run.started event, and the caller reads
    the run itself."""
    from a2a_site.db import Columns
    from workflows.services.lease import run_lease_acquire_reading

    subscription, _ = subscribe(personas, "https://hooks.example.com/all")
    run = queued(workflow, personas)
    read = (
        "SELECT status, lease_owner FROM workflows_run WHERE id = %s",
        [Columns(Run).value("id", run.pk)],
    )
    assert run_lease_acquire_reading(run.pk, owner="worker-1", read=read) == (True, None)
    assert events_of(subscription) == ["run.started"]
    run.refresh_from_db()
    assert (run.status, run.lease_owner) == ("running", "worker-1")
    assert run_lease_acquire_reading(run.pk, owner="worker-2", read=read) == (False, None)
    assert events_of(subscription) == ["run.started"]


def test_a_status_change_rolled_back_sends_nothing(personas: Personas, workflow: Workflow) -> None:
    subscription, _ = subscribe(personas, "https://hooks.example.com/all")
    run = queued(workflow, personas)
    assert run_lease_acquire(run.pk, owner="worker-1")

    with pytest.raises(RuntimeError), transaction.atomic():
        run_finish(run.pk, owner="worker-1", status=RunStatus.FAILED, reason="boom")
        raise RuntimeError("the transaction fails after the change")

    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING
    assert events_of(subscription) == ["run.started"]


def test_cancel_and_failure_by_the_reaper_are_events_too(
    personas: Personas, workflow: Workflow, settings: Any
) -> None:
    from workflows.services.reaper import runs_reap

    subscription, _ = subscribe(personas, "https://hooks.example.com/all")
    cancelled = queued(workflow, personas)
    assert run_cancel_unattended(cancelled.pk, reason="Cancelled by olivia.")

    settings.RUN_MAX_RESUMES = 0
    lost = queued(workflow, personas)
    assert run_lease_acquire(lost.pk, owner="dead-worker")
    Run.objects.filter(pk=lost.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    runs_reap()

    by_run = {(delivery.run_id, delivery.event) for delivery in subscription.deliveries.all()}
    assert by_run == {
        (cancelled.pk, "run.cancelled"),
        (lost.pk, "run.started"),
        (lost.pk, "run.failed"),
    }


def test_a_receiver_failing_twice_gets_one_accepted_delivery_per_event_in_order(
    personas: Personas,
    workflow: Workflow,
    webhook_receiver: WebhookReceiver,  # noqa: F811
    allow_loopback_hooks: None,
    settings: Any,
) -> None:
    settings.WEBHOOKS_BACKOFF_SECONDS = 30
    subscription, secret = subscribe(personas, webhook_receiver.url)
    webhook_receiver.answers = [500, 503]
    run = queued(workflow, personas)
    run_to(run, RunStatus.SUCCEEDED)
    now = timezone.now()

    # run.started fails; run.succeeded waits for it (it is held back, not attempted).
    assert webhooks_send_due(now=now) == 1
    assert webhooks_send_due(now=now + timedelta(seconds=29)) == 0
    assert webhooks_send_due(now=now + timedelta(seconds=30)) == 1  # fails again
    started = subscription.deliveries.get(event="run.started")
    assert started.next_attempt_at == now + timedelta(seconds=30 + 60)  # doubled
    assert webhooks_send_due(now=now + timedelta(seconds=90)) == 2  # accepted, then the next

    accepted = [r for r in webhook_receiver.requests if r is not None]
    assert [json.loads(r.body)["type"] for r in accepted] == [
        "run.started",
        "run.started",
        "run.started",
        "run.succeeded",
    ]
    assert all(standard_webhook_verify(secret, r) for r in accepted)
    assert not standard_webhook_verify("whsec_" + "A" * 44, accepted[0])
    ids = [r.headers["webhook-id"] for r in accepted]
    assert ids[0] == ids[1] == ids[2] != ids[3]
    for delivery in subscription.deliveries.all():
        assert delivery.status == DeliveryStatus.DELIVERED
        assert [entry["status_code"] for entry in delivery.log][-1] == 200
    assert [e["status_code"] for e in started.log] == [500, 503]
    started.refresh_from_db()
    assert started.attempts == 3
    # Nothing more to send: each event was accepted once.
    assert webhooks_send_due(now=now + timedelta(days=1)) == 0
    assert len(webhook_receiver.requests) == 4


def test_retries_stop_a_day_after_the_event(
    personas: Personas,
    workflow: Workflow,
    webhook_receiver: WebhookReceiver,  # noqa: F811
    allow_loopback_hooks: None,
    settings: Any,
) -> None:
    settings.WEBHOOKS_BACKOFF_SECONDS = 3600
    settings.WEBHOOKS_BACKOFF_CAP_SECONDS = 8 * 3600
    settings.WEBHOOKS_RETRY_HOURS = 24
    subscription, _ = subscribe(personas, webhook_receiver.url, ["run.started"])
    webhook_receiver.answers = [500] * 50
    run_lease_acquire(queued(workflow, personas).pk, owner="w")
    delivery = subscription.deliveries.get()
    made = []
    now = delivery.retry_since
    while True:
        delivery.refresh_from_db()
        if delivery.status != DeliveryStatus.PENDING:
            break
        now = max(now, delivery.next_attempt_at)
        assert webhooks_send_due(now=now) == 1
        made.append(now - delivery.retry_since)
    # 0, 1, 2, 4 and 8 h later the waits are capped at 8 h: 0 h, 1 h, 3 h, 7 h, 15 h, 23 h.
    assert [round(m.total_seconds() / 3600) for m in made] == [0, 1, 3, 7, 15, 23]
    assert delivery.status == DeliveryStatus.FAILED


def test_a_private_address_is_refused_when_subscribing_and_when_sending(
    personas: Personas,
    workflow: Workflow,
    webhook_receiver: WebhookReceiver,  # noqa: F811
) -> None:
    with pytest.raises(ValidationError) as refused:
        subscription_clean(
            workspace=personas.workspace,
            name="Local",
            url=webhook_receiver.url,
            events=["run.started"],
            workflow_id=None,
        )
    assert "A2A_OUTBOUND_ALLOWED_HOSTS" in str(refused.value.message_dict["url"])
    # Allowed once (then the administrator took the host off the list): refused at send time.
    subscription, _ = subscribe(personas, webhook_receiver.url, ["run.started"])
    run_lease_acquire(queued(workflow, personas).pk, owner="w")

    webhooks_send_due(now=timezone.now())

    delivery = subscription.deliveries.get()
    assert delivery.status == DeliveryStatus.REFUSED
    assert "loopback" in delivery.last_error
    assert webhook_receiver.requests == []
    assert webhooks_send_due(now=timezone.now() + timedelta(hours=1)) == 0


def test_redeliver_sends_the_same_message_again(
    personas: Personas,
    workflow: Workflow,
    webhook_receiver: WebhookReceiver,  # noqa: F811
    allow_loopback_hooks: None,
) -> None:
    subscription, secret = subscribe(personas, webhook_receiver.url, ["run.started"])
    run_lease_acquire(queued(workflow, personas).pk, owner="w")
    webhooks_send_due(now=timezone.now())
    delivery = subscription.deliveries.get()

    delivery_redeliver(delivery=delivery)  # no Celery here: the round sends it
    assert webhooks_send_due(now=timezone.now() + timedelta(seconds=1)) == 1

    first, again = webhook_receiver.requests[:2]
    assert first.body == again.body
    assert first.headers["webhook-id"] == again.headers["webhook-id"] == delivery.event_id
    assert standard_webhook_verify(secret, again)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED and len(delivery.log) == 2


def test_alerts_reach_the_subscriptions_that_want_them(
    personas: Personas, now: datetime, settings: Any
) -> None:
    from tests.monitoring.alerts.test_deliveries import fire_error_alert

    alerts, _ = subscribe(personas, "https://hooks.example.com/a", ["alert.fired"])
    runs_only, _ = subscribe(personas, "https://hooks.example.com/r")

    fire_error_alert(personas, now)

    (delivery,) = WebhookDelivery.objects.all()
    assert delivery.subscription_id == alerts.pk and delivery.event == "alert.fired"
    assert json.loads(delivery.body)["data"]["rule"]["name"] == "Error rate above 10 %"
    assert events_of(runs_only) == []


@pytest.fixture
def now() -> datetime:
    return timezone.now().replace(second=30, microsecond=0)


def test_the_readmes_verification_snippet_accepts_a_delivery_and_refuses_a_forgery(
    personas: Personas,
    workflow: Workflow,
    webhook_receiver: WebhookReceiver,  # noqa: F811
    allow_loopback_hooks: None,
) -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("Verifying a delivery, in Python") :]
    code = section[section.index("```python") + len("```python") : section.index("```\n", 10)]
    namespace: dict[str, Any] = {}
    exec(code, namespace)  # noqa: S102 - our own README's snippet
    verify = namespace["verify"]
    _, secret = subscribe(personas, webhook_receiver.url, ["run.started"])
    run_lease_acquire(queued(workflow, personas).pk, owner="w")
    webhooks_send_due(now=timezone.now())

    (received,) = webhook_receiver.requests
    body = received.body.encode()
    assert verify(secret, received.headers, body)
    assert not verify(secret, received.headers, body.replace(b"run.started", b"run.stopped"))
    assert not verify("whsec_" + "A" * 44, received.headers, body)


def test_finished_deliveries_are_forgotten_after_a_month_pending_ones_kept(
    personas: Personas, workflow: Workflow, settings: Any
) -> None:
    from workflows.webhooks.delivery import webhook_deliveries_forget

    settings.WEBHOOKS_KEEP_DAYS = 30
    subscription, _ = subscribe(personas, "https://hooks.example.com/all")
    run_to(queued(workflow, personas), RunStatus.SUCCEEDED)
    started, succeeded = subscription.deliveries.order_by("id")
    WebhookDelivery.objects.filter(pk=started.pk).update(status=DeliveryStatus.DELIVERED)
    now = timezone.now()

    assert webhook_deliveries_forget(now=now + timedelta(days=29)) == 0
    assert webhook_deliveries_forget(now=now + timedelta(days=31)) == 1
    assert list(subscription.deliveries.values_list("pk", flat=True)) == [succeeded.pk]


def test_a_parent_waiting_on_its_sub_workflow_is_no_waiting_event(
    personas: Personas, workflow: Workflow
) -> None:
    subscription, _ = subscribe(personas, "https://hooks.example.com/all", ["run.waiting"])
    run = queued(workflow, personas)
    assert run_lease_acquire(run.pk, owner="w")
    Run.objects.filter(pk=run.pk).update(waiting_request={"kind": "subrun", "step_key": "child"})
    assert run_finish(run.pk, owner="w", status=RunStatus.WAITING)
    assert events_of(subscription) == []
