"""Writing the outbox: one delivery per subscription that wants an event, in the transaction of
the change the event tells of.

Callers (the run's status changes in `workflows.services`, the alerts' `incident_notify`) call
these inside their transaction, after their conditional UPDATE changed the row: the deliveries
commit with the change or not at all, and are handed to the senders after the commit
(`workflows.webhooks.delivery`). With no subscription wanting the event, the cost is one
indexed read of the workspace's subscriptions.

The body follows Standard Webhooks: `{"type", "timestamp", "data"}`. A run event's `data.run`
has the keys of `GET /api/v1/runs/{id}` plus the workflow's name and the run's page; its output
is left out above OUTPUT_LIMIT characters (`output_omitted: true`; read it from the API).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef, Q, Subquery
from django.urls import reverse
from django.utils import timezone

from a2a_site.db import Columns
from workflows.models import Run, RunPriority
from workflows.webhooks.models import (
    TEST_EVENT,
    WebhookDelivery,
    WebhookEvent,
    WebhookSubscription,
)

OUTPUT_LIMIT = 64_000
STATUS_EVENTS = {
    "waiting": WebhookEvent.RUN_WAITING,
    "succeeded": WebhookEvent.RUN_SUCCEEDED,
    "failed": WebhookEvent.RUN_FAILED,
    "cancelled": WebhookEvent.RUN_CANCELLED,
}


def absolute(path: str) -> str:
    from django.conf import settings

    return f"{settings.SITE_URL.rstrip('/')}{path}" if settings.SITE_URL else path


def _body(event: str, data: dict[str, Any], now: datetime) -> str:
    payload = {"type": event, "timestamp": now.isoformat(), "data": data}
    return json.dumps(payload, separators=(",", ":"), default=str)


def run_payload_data(run: Run) -> dict[str, Any]:
    output: Any = run.output
    omitted = output is not None and len(json.dumps(output, default=str)) > OUTPUT_LIMIT
    return {
        "run": {
            "id": str(run.pk),
            "workspace_id": str(run.workspace_id),
            "workflow_id": str(run.workflow_id),
            "workflow_name": run.workflow.name,
            "parent_id": str(run.parent_id) if run.parent_id else None,
            "version": run.version.number,
            "status": run.status,
            "reason": run.reason,
            "priority": RunPriority(run.priority).label,
            "inputs": run.inputs,
            "output": None if omitted else output,
            "output_omitted": omitted,
            "waiting_for": run.waiting_request,
            "cost": str(run.cost),
            "prompt_tokens": run.prompt_tokens,
            "completion_tokens": run.completion_tokens,
            "last_seq": run.last_seq,
            "launched_via": run.launched_via,
            "attempts": run.attempts,
            "created_at": run.created_at.isoformat(),
            "started_at": run.started_at.isoformat() if run.started_at else None,
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "url": absolute(reverse("run_detail", args=[run.pk])),
        },
        "workspace": {"id": str(run.workspace_id), "name": run.workspace.name},
    }


def _deliveries_create(
    subscriptions: list[WebhookSubscription],
    *,
    event: str,
    body: str,
    now: datetime,
    run_id: Any = None,
) -> list[WebhookDelivery]:
    event_id = WebhookDelivery.new_event_id()
    deliveries = WebhookDelivery.objects.bulk_create(
        WebhookDelivery(
            subscription=subscription,
            event=event,
            event_id=event_id,
            run_id=run_id,
            body=body,
            next_attempt_at=now,
            retry_since=now,
        )
        for subscription in subscriptions
    )
    ids = [delivery.pk for delivery in deliveries]

    def hand_over() -> None:
        from workflows.webhooks.delivery import deliveries_dispatch

        deliveries_dispatch(ids)

    transaction.on_commit(hand_over)
    return deliveries


def run_event_subscribers(run_id: Any, event: str | None) -> list[WebhookSubscription]:
    """The enabled subscriptions of the run's workspace (or its workflow) that want `event`:
    one statement, which an executor makes before the write that changes the run's status, so
    that write needs a transaction only when someone listens."""
    if not event:
        return []
    the_run = Run.objects.filter(pk=run_id)
    return [
        subscription
        for subscription in WebhookSubscription.objects.filter(
            Q(workflow__isnull=True) | Q(workflow_id=Subquery(the_run.values("workflow_id")[:1])),
            workspace_id=Subquery(the_run.values("workspace_id")[:1]),
            enabled=True,
        )
        if subscription.wants(event)
    ]


_SUBSCRIPTION = Columns(WebhookSubscription)


def run_unheard_sql(run_table: str, workspace_column: str) -> str:
    """A condition for a write that changes a run's status: no enabled subscription of the
    run's workspace exists, so the event it tells of has nobody to go to. The write (one
    statement) decides at once; a write it stops goes the way of `run_event_subscribers`.
    `run_table.workspace_column` names the run's workspace in the statement."""
    sub = _SUBSCRIPTION
    return (
        f"NOT EXISTS (SELECT 1 FROM {sub.table} WHERE {sub.table}.{sub['workspace']} = "
        f"{run_table}.{workspace_column} AND {sub.table}.{sub['enabled']})"
    )


def run_unheard() -> Any:
    """`run_unheard_sql` for the ORM, in a filter of runs."""
    return ~Exists(
        WebhookSubscription.objects.filter(workspace_id=OuterRef("workspace_id"), enabled=True)
    )


def run_event_deliveries_create(
    run_id: Any,
    event: str,
    subscriptions: list[WebhookSubscription],
    *,
    now: datetime | None = None,
) -> int:
    """Inside the transaction that changed the run's status: a delivery of `event` to each of
    `subscriptions` (from `run_event_subscribers`). Returns how many.

    `run.started` is recorded for a run's first execution only (not when it resumes after a
    wait or a lost worker), which `attempts == 1` tells after the lease was taken."""
    if not subscriptions:
        return 0
    run = Run.objects.select_related("workflow", "workspace", "version").get(pk=run_id)
    if event == WebhookEvent.RUN_STARTED and run.attempts != 1:
        return 0
    if event == WebhookEvent.RUN_WAITING and (run.waiting_request or {}).get("kind") == "subrun":
        return 0  # waiting on its sub-workflow's work, not on a person
    now = now or timezone.now()
    body = _body(event, run_payload_data(run), now)
    return len(_deliveries_create(subscriptions, event=event, body=body, now=now, run_id=run.pk))


def run_event_record(run_id: Any, event: str, *, now: datetime | None = None) -> int:
    """Inside the transaction that changed the run's status: a delivery of `event` for each
    enabled subscription of its workspace (or its workflow) that wants it. Returns how many."""
    subscriptions = run_event_subscribers(run_id, event)
    return run_event_deliveries_create(run_id, event, subscriptions, now=now)


def run_status_event(status: str) -> str | None:
    """The webhook event of a run that just took `status` (None: a status without one)."""
    return STATUS_EVENTS.get(str(status))


def run_status_event_record(run_id: Any, status: str) -> int:
    """`run_event_record` for a run that just took `status` (a status without an event: none)."""
    event = run_status_event(status)
    return run_event_record(run_id, event) if event else 0


def alert_event_record(*, workspace_id: Any, event: str, payload: dict[str, Any]) -> int:
    """Inside the transaction that changed an incident: its event (`payload` as the alert
    channels get it) to each enabled subscription of the workspace that wants it."""
    subscriptions = [
        subscription
        for subscription in WebhookSubscription.objects.filter(
            workspace_id=workspace_id, enabled=True
        )
        if subscription.wants(event)
    ]
    if not subscriptions:
        return 0
    now = timezone.now()
    body = json.dumps(payload, separators=(",", ":"), default=str)
    return len(_deliveries_create(subscriptions, event=event, body=body, now=now))


def test_event_record(*, subscription: WebhookSubscription, user: Any) -> WebhookDelivery:
    """A test message to one subscription, sent like any event."""
    now = timezone.now()
    body = _body(
        TEST_EVENT,
        {
            "summary": f"A test message sent by {user.get_username()}.",
            "subscription": {"id": subscription.pk, "name": subscription.name},
            "workspace": {
                "id": str(subscription.workspace_id),
                "name": subscription.workspace.name,
            },
        },
        now,
    )
    with transaction.atomic():
        (delivery,) = _deliveries_create([subscription], event=TEST_EVENT, body=body, now=now)
    return delivery
