"""The webhooks pages of a workspace's settings: subscriptions (editors and owners change them,
everyone sees them), each with its delivery log, a test message and "redeliver"."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from a2a_site.accounts.decorators import workspace_required
from a2a_site.accounts.models import Membership, Role
from a2a_site.http import AuthedRequest
from workflows.webhooks import selectors, services
from workflows.webhooks.forms import SubscriptionForm
from workflows.webhooks.models import WebhookEvent, WebhookSubscription


@workspace_required()
def webhook_list(request: AuthedRequest) -> HttpResponse:
    assert request.membership is not None
    return render(
        request,
        "workflows/webhooks/list.html",
        {
            "subscriptions": selectors.subscriptions_of(workspace=request.membership.workspace),
            "can_edit": request.membership.allows(Role.EDITOR),
        },
    )


@workspace_required(Role.EDITOR)
@require_http_methods(["GET", "POST"])
def webhook_create(request: AuthedRequest) -> HttpResponse:
    assert request.membership is not None
    workspace = request.membership.workspace
    form = SubscriptionForm(request.POST or None, workspace=workspace)
    if request.method == "POST" and form.is_valid():
        subscription, secret = services.subscription_create(
            workspace=workspace,
            user=request.user,
            data=form.cleaned_data["subscription"],
            enabled=form.cleaned_data["enabled"],
        )
        # Rendered, never redirected: the secret must not wait in a session or a URL.
        return _detail(request, subscription, request.membership, secret=secret)
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "workflows/webhooks/form.html",
        {"form": form, "events": WebhookEvent},
        status=status,
    )


def _detail(
    request: AuthedRequest,
    subscription: WebhookSubscription,
    membership: Membership,
    *,
    form: SubscriptionForm | None = None,
    secret: str = "",
    status: int = 200,
) -> HttpResponse:
    can_edit = membership.allows(Role.EDITOR)
    if form is None and can_edit:
        form = SubscriptionForm(
            workspace=subscription.workspace,
            initial={
                "name": subscription.name,
                "url": subscription.url,
                "events": subscription.events,
                "workflow": str(subscription.workflow_id or ""),
                "enabled": subscription.enabled,
            },
        )
    deliveries = list(
        selectors.deliveries_of(subscription=subscription)[: selectors.DELIVERIES_SHOWN]
    )
    return render(
        request,
        "workflows/webhooks/detail.html",
        {
            "subscription": subscription,
            "form": form,
            "secret": secret,
            "deliveries": deliveries,
            "can_edit": can_edit,
        },
        status=status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def webhook_detail(request: AuthedRequest, subscription_id: int) -> HttpResponse:
    role = Role.EDITOR if request.method == "POST" else Role.VIEWER
    subscription, membership = selectors.get_subscription_for_user(
        request.user, subscription_id, role=role
    )
    if request.method == "POST":
        form = SubscriptionForm(request.POST, workspace=subscription.workspace)
        if form.is_valid():
            services.subscription_update(
                subscription=subscription,
                data=form.cleaned_data["subscription"],
                enabled=form.cleaned_data["enabled"],
            )
            messages.success(request, f"Webhook “{subscription.name}” saved.")
            return redirect("webhook_detail", subscription_id=subscription.pk)
        return _detail(request, subscription, membership, form=form, status=400)
    return _detail(request, subscription, membership)


@login_required
@require_POST
def webhook_rotate(request: AuthedRequest, subscription_id: int) -> HttpResponse:
    subscription, membership = selectors.get_subscription_for_user(
        request.user, subscription_id, role=Role.EDITOR
    )
    secret = services.subscription_secret_rotate(subscription=subscription)
    return _detail(request, subscription, membership, secret=secret)


@login_required
@require_POST
def webhook_delete(request: AuthedRequest, subscription_id: int) -> HttpResponse:
    subscription, _ = selectors.get_subscription_for_user(
        request.user, subscription_id, role=Role.EDITOR
    )
    services.subscription_delete(subscription=subscription)
    messages.success(request, f"Webhook “{subscription.name}” and its delivery log deleted.")
    return redirect("webhook_list")


@login_required
@require_POST
def webhook_test(request: AuthedRequest, subscription_id: int) -> HttpResponse:
    subscription, _ = selectors.get_subscription_for_user(
        request.user, subscription_id, role=Role.EDITOR
    )
    services.subscription_test(subscription=subscription, user=request.user)
    messages.success(request, "Test message queued; its delivery appears below within seconds.")
    return redirect("webhook_detail", subscription_id=subscription.pk)


@login_required
@require_POST
def webhook_redeliver(request: AuthedRequest, delivery_id: int) -> HttpResponse:
    delivery, _ = selectors.get_delivery_for_user(request.user, delivery_id, role=Role.EDITOR)
    services.delivery_redeliver(delivery=delivery)
    messages.success(request, "Delivery queued again, with the same webhook-id.")
    return redirect("webhook_detail", subscription_id=delivery.subscription_id)
