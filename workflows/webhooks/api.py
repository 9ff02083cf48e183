"""The public API's webhook subscriptions (`/api/v1/webhooks`): a thin edge over the same
services and access seam as the webhooks page.

Reading needs the `read` scope. Creating, changing, deleting, testing and redelivering need
`admin` (and the editor role): a subscription sends every run's inputs and outputs to a URL of
the caller's choosing and mints a signing secret — as much reach as a provider's key, which is
what `admin` guards; a CI token that publishes workflows (`write`) should not be able to add one.
"""

import json
from datetime import datetime
from typing import Any
from uuid import UUID

from django.http import Http404, HttpRequest, HttpResponse
from ninja import Field, Query, Router, Schema, Status

from a2a_site.api.auth import caller_of
from a2a_site.api.idempotency import idempotent
from a2a_site.api.models import Scope
from a2a_site.api.pagination import cursor_decode, cursor_encode
from a2a_site.api.problems import ApiError, FieldError
from a2a_site.api.routes import workspace_of_request, workspace_to_change
from workflows.webhooks import services
from workflows.webhooks.models import TEST_EVENT, WebhookDelivery, WebhookSubscription
from workflows.webhooks.queue import DeliveryStatus
from workflows.webhooks.selectors import (
    get_delivery_for_user,
    get_subscription_for_user,
    subscriptions_of,
)

router = Router(tags=["webhooks"])

EVENTS_DESCRIPTION = (
    "Any of run.started, run.waiting, run.succeeded, run.failed, run.cancelled, alert.fired, "
    "alert.resolved"
)


class SubscriptionOut(Schema):
    id: int
    workspace_id: UUID
    workflow_id: UUID | None = Field(description="Only this workflow's runs; null: every run")
    name: str
    url: str
    events: list[str]
    enabled: bool
    created_at: datetime
    updated_at: datetime


class SubscriptionCreated(Schema):
    subscription: SubscriptionOut
    secret: str = Field(description="`whsec_…`: shown this once; verify signatures with it")


class SubscriptionPage(Schema):
    items: list[SubscriptionOut]
    next_cursor: str | None


class SubscriptionIn(Schema):
    name: str = Field(max_length=120)
    url: str = Field(max_length=500, description="Receives a signed POST per event")
    events: list[str] = Field(description=EVENTS_DESCRIPTION)
    workflow_id: UUID | None = Field(None, description="Only this workflow's runs")
    enabled: bool = True


class SubscriptionPatch(Schema):
    name: str | None = Field(None, max_length=120)
    url: str | None = Field(None, max_length=500)
    events: list[str] | None = Field(None, description=EVENTS_DESCRIPTION)
    workflow_id: UUID | None = Field(None, description="Send null to take every workflow's")
    enabled: bool | None = None


class AttemptOut(Schema):
    at: datetime
    status_code: int | None
    error: str
    ms: int


class DeliveryOut(Schema):
    id: int
    subscription_id: int
    event: str
    event_id: str = Field(description="The `webhook-id` header, the same on every attempt")
    run_id: UUID | None
    status: str = Field(description="pending, delivered, failed or refused")
    attempts: int
    last_status_code: int | None
    last_error: str
    next_attempt_at: datetime | None = Field(description="When pending: the next attempt")
    created_at: datetime
    delivered_at: datetime | None
    log: list[AttemptOut]
    payload: Any = Field(description="The body sent, parsed")


class DeliveryPage(Schema):
    items: list[DeliveryOut]
    next_cursor: str | None


def subscription_out(subscription: WebhookSubscription) -> SubscriptionOut:
    return SubscriptionOut(
        id=subscription.pk,
        workspace_id=subscription.workspace_id,
        workflow_id=subscription.workflow_id,
        name=subscription.name,
        url=subscription.url,
        events=list(subscription.events),
        enabled=subscription.enabled,
        created_at=subscription.created_at,
        updated_at=subscription.updated_at,
    )


def delivery_out(delivery: WebhookDelivery) -> DeliveryOut:
    return DeliveryOut(
        id=delivery.pk,
        subscription_id=delivery.subscription_id,
        event=delivery.event,
        event_id=delivery.event_id,
        run_id=delivery.run_id,
        status=delivery.status,
        attempts=delivery.attempts,
        last_status_code=delivery.last_status_code,
        last_error=delivery.last_error,
        next_attempt_at=(
            delivery.next_attempt_at if delivery.status == DeliveryStatus.PENDING else None
        ),
        created_at=delivery.created_at,
        delivered_at=delivery.delivered_at,
        log=[AttemptOut(**entry) for entry in delivery.log],
        payload=json.loads(delivery.body),
    )


def _page_after(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    (last,) = cursor_decode(cursor, 1)
    if not last.isdigit() or len(last) > 18:
        raise ApiError(
            "validation",
            "This cursor is damaged; start again from the first page.",
            errors=[FieldError("cursor", "Not a cursor this list gave.")],
        )
    return int(last)


class ListQuery(Schema):
    workspace: UUID | None = Field(None, description="Default: the token's workspace")
    cursor: str | None = None
    limit: int = Field(50, ge=1, le=200)


@router.get("", response=SubscriptionPage, url_name="webhook_list", summary="Subscriptions")
def webhook_list(request: HttpRequest, query: Query[ListQuery]) -> SubscriptionPage:
    caller_of(request).require(Scope.READ)
    membership = workspace_of_request(request, query.workspace)
    rows = subscriptions_of(workspace=membership.workspace_id).order_by("id")
    after = _page_after(query.cursor)
    if after is not None:
        rows = rows.filter(id__gt=after)
    items = list(rows[: query.limit + 1])
    more = len(items) > query.limit
    items = items[: query.limit]
    return SubscriptionPage(
        items=[subscription_out(s) for s in items],
        next_cursor=cursor_encode(str(items[-1].pk)) if more else None,
    )


@router.post(
    "",
    response={201: SubscriptionCreated},
    url_name="webhook_create",
    summary="Subscribe a URL to events (its signing secret is in the answer, once)",
)
@idempotent
def webhook_create(
    request: HttpRequest, payload: SubscriptionIn, workspace: UUID | None = None
) -> Any:
    caller, membership = workspace_to_change(request, workspace, Scope.ADMIN)
    data = services.subscription_clean(
        workspace=membership.workspace,
        name=payload.name,
        url=payload.url,
        events=payload.events,
        workflow_id=payload.workflow_id,
    )
    subscription, secret = services.subscription_create(
        workspace=membership.workspace, user=caller.user, data=data, enabled=payload.enabled
    )
    return Status(
        201, SubscriptionCreated(subscription=subscription_out(subscription), secret=secret)
    )


@router.get(
    "/{int:subscription_id}",
    response=SubscriptionOut,
    url_name="webhook_detail",
    summary="A subscription",
)
def webhook_detail(request: HttpRequest, subscription_id: int) -> SubscriptionOut:
    subscription, _ = caller_of(request).lookup(get_subscription_for_user, subscription_id)
    return subscription_out(subscription)


@router.patch(
    "/{int:subscription_id}",
    response=SubscriptionOut,
    url_name="webhook_update",
    summary="Change a subscription (the fields sent)",
)
def webhook_update(
    request: HttpRequest, subscription_id: int, payload: SubscriptionPatch
) -> SubscriptionOut:
    subscription, membership = caller_of(request).lookup(
        get_subscription_for_user, subscription_id, Scope.ADMIN
    )
    sent = payload.model_fields_set
    data = services.subscription_clean(
        workspace=membership.workspace,
        name=payload.name if "name" in sent and payload.name is not None else subscription.name,
        url=payload.url if "url" in sent and payload.url is not None else subscription.url,
        events=(
            payload.events
            if "events" in sent and payload.events is not None
            else list(subscription.events)
        ),
        workflow_id=payload.workflow_id if "workflow_id" in sent else subscription.workflow_id,
    )
    enabled = subscription.enabled if payload.enabled is None else payload.enabled
    services.subscription_update(subscription=subscription, data=data, enabled=enabled)
    return subscription_out(subscription)


@router.delete(
    "/{int:subscription_id}",
    response={204: None},
    url_name="webhook_delete",
    summary="Delete a subscription and its delivery log",
)
def webhook_delete(request: HttpRequest, subscription_id: int) -> Any:
    subscription, _ = caller_of(request).lookup(
        get_subscription_for_user, subscription_id, Scope.ADMIN
    )
    services.subscription_delete(subscription=subscription)
    return HttpResponse(status=204)


class SecretOut(Schema):
    secret: str = Field(description="The new `whsec_…`, shown this once; the old one stops now")


@router.post(
    "/{int:subscription_id}/secret",
    response=SecretOut,
    url_name="webhook_secret_rotate",
    summary="Replace the signing secret",
)
def webhook_secret_rotate(request: HttpRequest, subscription_id: int) -> SecretOut:
    subscription, _ = caller_of(request).lookup(
        get_subscription_for_user, subscription_id, Scope.ADMIN
    )
    return SecretOut(secret=services.subscription_secret_rotate(subscription=subscription))


@router.post(
    "/{int:subscription_id}/test",
    response={202: DeliveryOut},
    url_name="webhook_test",
    summary=f"Send a test event ({TEST_EVENT})",
)
@idempotent
def webhook_test(request: HttpRequest, subscription_id: int) -> Any:
    caller = caller_of(request)
    subscription, _ = caller.lookup(get_subscription_for_user, subscription_id, Scope.ADMIN)
    delivery = services.subscription_test(subscription=subscription, user=caller.user)
    return Status(202, delivery_out(delivery))


class DeliveryQuery(Schema):
    status: DeliveryStatus | None = None
    run_id: UUID | None = Field(None, description="Only this run's events")
    cursor: str | None = None
    limit: int = Field(50, ge=1, le=200)


@router.get(
    "/{int:subscription_id}/deliveries",
    response=DeliveryPage,
    url_name="webhook_deliveries",
    summary="A subscription's deliveries, newest first: response codes, attempts, next attempt",
)
def webhook_deliveries(
    request: HttpRequest, subscription_id: int, query: Query[DeliveryQuery]
) -> DeliveryPage:
    subscription, _ = caller_of(request).lookup(get_subscription_for_user, subscription_id)
    rows = subscription.deliveries.order_by("-id")
    if query.status is not None:
        rows = rows.filter(status=query.status)
    if query.run_id is not None:
        rows = rows.filter(run_id=query.run_id)
    before = _page_after(query.cursor)
    if before is not None:
        rows = rows.filter(id__lt=before)
    items = list(rows[: query.limit + 1])
    more = len(items) > query.limit
    items = items[: query.limit]
    return DeliveryPage(
        items=[delivery_out(d) for d in items],
        next_cursor=cursor_encode(str(items[-1].pk)) if more else None,
    )


@router.post(
    "/{int:subscription_id}/deliveries/{int:delivery_id}/redeliver",
    response={202: DeliveryOut},
    url_name="webhook_redeliver",
    summary="Send a delivery again, with the same webhook-id and body",
)
@idempotent
def webhook_redeliver(request: HttpRequest, subscription_id: int, delivery_id: int) -> Any:
    caller = caller_of(request)
    delivery, _ = caller.lookup(get_delivery_for_user, delivery_id, Scope.ADMIN)
    if delivery.subscription_id != subscription_id:
        raise Http404("Not found.")
    services.delivery_redeliver(delivery=delivery)
    delivery.refresh_from_db()
    return Status(202, delivery_out(delivery))
