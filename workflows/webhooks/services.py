"""Writes to webhook subscriptions (the page and the API both call these)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from a2a_site.accounts.models import User, Workspace
from agents.crypto import credential_encrypt, credential_rotate_token
from agents.urlpolicy import OutboundHostUnresolved, OutboundURLRefused
from workflows.models import Workflow
from workflows.webhooks.delivery import webhook_redeliver
from workflows.webhooks.events import test_event_record
from workflows.webhooks.models import WebhookDelivery, WebhookEvent, WebhookSubscription
from workflows.webhooks.signing import webhook_secret_new, webhook_url_check


def subscription_clean(
    *, workspace: Workspace, name: str, url: str, events: list[str], workflow_id: Any
) -> dict[str, Any]:
    """The fields checked, or a ValidationError naming each wrong one."""
    errors: dict[str, str] = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = "Name it after what receives it, e.g. “Deploy bot”."
    elif len(name) > 120:
        errors["name"] = "At most 120 characters."
    url = (url or "").strip()
    if not url:
        errors["url"] = "Give the URL that receives the events."
    elif len(url) > 500:
        errors["url"] = "At most 500 characters."
    else:
        try:
            url = webhook_url_check(url)
        except OutboundHostUnresolved:
            pass  # DNS may be down or not set up yet; each send checks again
        except OutboundURLRefused as refused:
            errors["url"] = str(refused)
    known = set(WebhookEvent.values)
    chosen = list(dict.fromkeys(events or []))
    unknown = [event for event in chosen if event not in known]
    if unknown:
        errors["events"] = f"Unknown event {unknown[0]!r}; choose among {', '.join(known)}."
    elif not chosen:
        errors["events"] = "Choose at least one event."
    workflow = None
    if workflow_id:
        workflow = Workflow.objects.filter(pk=workflow_id, workspace=workspace).first()
        if workflow is None:
            errors["workflow"] = "No such workflow in this workspace."
    if errors:
        raise ValidationError(errors)
    ordered = [event for event in WebhookEvent.values if event in chosen]
    return {"name": name, "url": url, "events": ordered, "workflow": workflow}


def subscription_create(
    *, workspace: Workspace, user: User | None, data: dict[str, Any], enabled: bool = True
) -> tuple[WebhookSubscription, str]:
    """`data` as `subscription_clean` gives it. Returns the subscription and its signing secret,
    this once only."""
    secret = webhook_secret_new()
    subscription = WebhookSubscription.objects.create(
        workspace=workspace,
        created_by=user,
        enabled=enabled,
        secret_encrypted=credential_encrypt(secret),
        **data,
    )
    return subscription, secret


def subscription_update(
    *, subscription: WebhookSubscription, data: dict[str, Any], enabled: bool
) -> WebhookSubscription:
    for name, value in data.items():
        setattr(subscription, name, value)
    subscription.enabled = enabled
    subscription.save()
    return subscription


def subscription_secret_rotate(*, subscription: WebhookSubscription) -> str:
    """A new signing secret, returned this once; pending retries are signed with it too."""
    secret = webhook_secret_new()
    subscription.secret_encrypted = credential_encrypt(secret)
    subscription.save(update_fields=["secret_encrypted", "updated_at"])
    return secret


def subscription_secrets_rotate() -> int:
    """Re-encrypts every subscription's signing secret with the first credential key (called by
    `rotate_credential_keys`, inside its transaction)."""
    rotated = 0
    for subscription in WebhookSubscription.objects.select_for_update():
        subscription.secret_encrypted = credential_rotate_token(subscription.secret_encrypted)
        subscription.save(update_fields=["secret_encrypted"])
        rotated += 1
    return rotated


def subscription_delete(*, subscription: WebhookSubscription) -> None:
    """Deletes it with its delivery log; pending deliveries are not sent."""
    subscription.delete()


def subscription_test(*, subscription: WebhookSubscription, user: User) -> WebhookDelivery:
    return test_event_record(subscription=subscription, user=user)


def delivery_redeliver(*, delivery: WebhookDelivery) -> None:
    webhook_redeliver(delivery=delivery)
