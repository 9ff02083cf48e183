"""The alerts pages: history with acknowledge and resolve, rules, channels and their deliveries."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from a2a_site.accounts.decorators import workspace_required
from a2a_site.accounts.models import Role
from a2a_site.http import AuthedRequest
from a2a_site.refusals import refusal
from monitoring.alerts import selectors, services
from monitoring.alerts.deliveries import delivery_redeliver
from monitoring.alerts.evaluation import (
    alert_defaults_ensure,
    incident_acknowledge,
    incident_resolve,
)
from monitoring.alerts.forms import AlertChannelForm, AlertRuleForm
from monitoring.alerts.kinds import KINDS
from monitoring.alerts.models import AlertChannel, AlertRule, ChannelKind
from monitoring.alerts.notify import deliveries_dispatch


def _every(seconds: int) -> str:
    if seconds % 60:
        return f"{seconds} seconds" if seconds != 1 else "second"
    minutes = seconds // 60
    return "minute" if minutes == 1 else f"{minutes} minutes"


def _int_param(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise ValueError
    return int(raw)


@workspace_required()
def alert_list(request: AuthedRequest) -> HttpResponse:
    assert request.membership is not None
    workspace = request.membership.workspace
    state = request.GET.get("state", "open")
    if state not in selectors.STATE_FILTERS:
        return refusal(
            request, f"Show which alerts? Choose one of: {', '.join(selectors.STATE_FILTERS)}."
        )
    try:
        before = _int_param(request.GET.get("before"))
    except ValueError:
        return refusal(request, "“before” must be an alert number.")
    alert_defaults_ensure(workspace=workspace)
    page = selectors.incidents_page(workspace=workspace, state=state, before=before)
    services.notifications_mark_seen(user=request.user, workspace=workspace)
    context = {
        "page": page,
        "state": state,
        "states": selectors.STATE_FILTERS,
        "counts": selectors.incident_counts(workspace=workspace),
        "rules": selectors.rules_of(workspace=workspace),
        "channels": selectors.channels_of(workspace=workspace),
        "can_edit": request.membership.allows(Role.EDITOR),
        "kinds": KINDS,
        "evaluate_every": _every(settings.ALERTS_EVALUATE_SECONDS),
    }
    template = "monitoring/_alert_incidents.html" if request.htmx else "monitoring/alert_list.html"
    return render(request, template, context)


@login_required
@require_POST
def alert_acknowledge(request: AuthedRequest, incident_id: int) -> HttpResponse:
    incident = selectors.get_incident_for_user(request.user, incident_id, role=Role.EDITOR)
    if incident_acknowledge(incident=incident, user=request.user):
        messages.success(request, f"“{incident.rule.name}” acknowledged.")
    else:
        messages.info(request, "That alert was already acknowledged or resolved.")
    return redirect("alert_list")


@login_required
@require_POST
def alert_resolve(request: AuthedRequest, incident_id: int) -> HttpResponse:
    incident = selectors.get_incident_for_user(request.user, incident_id, role=Role.EDITOR)
    if incident_resolve(incident=incident, user=request.user):
        messages.success(
            request,
            f"“{incident.rule.name}” resolved. If its condition still holds, the next check "
            "opens a new alert.",
        )
    else:
        messages.info(request, "That alert was already resolved.")
    return redirect("alert_list")


# --- rules ----------------------------------------------------------------------------------------


@workspace_required()
def alert_rule_list(request: AuthedRequest) -> HttpResponse:
    assert request.membership is not None
    workspace = request.membership.workspace
    alert_defaults_ensure(workspace=workspace)
    return render(
        request,
        "monitoring/alert_rules.html",
        {
            "rules": selectors.rules_of(workspace=workspace),
            "kinds": KINDS,
            "can_edit": request.membership.allows(Role.EDITOR),
        },
    )


@workspace_required(Role.EDITOR)
@require_http_methods(["GET", "POST"])
def alert_rule_create(request: AuthedRequest) -> HttpResponse:
    assert request.membership is not None
    form = AlertRuleForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        rule = services.alert_rule_create(
            workspace=request.membership.workspace, data=form.cleaned_data
        )
        messages.success(request, f"Rule “{rule.name}” created; it is checked from now on.")
        return redirect("alert_rule_list")
    status = 400 if request.method == "POST" else 200
    return render(
        request, "monitoring/alert_rule_form.html", {"form": form, "kinds": KINDS}, status=status
    )


@login_required
@require_http_methods(["GET", "POST"])
def alert_rule_edit(request: AuthedRequest, rule_id: int) -> HttpResponse:
    rule = selectors.get_rule_for_user(request.user, rule_id, role=Role.EDITOR)
    initial = {name: getattr(rule, name) for name in services.RULE_FIELDS}
    form = AlertRuleForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        services.alert_rule_update(rule=rule, data=form.cleaned_data)
        messages.success(request, f"Rule “{rule.name}” saved.")
        return redirect("alert_rule_list")
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "monitoring/alert_rule_form.html",
        {"form": form, "rule": rule, "kinds": KINDS},
        status=status,
    )


@login_required
@require_POST
def alert_rule_delete(request: AuthedRequest, rule_id: int) -> HttpResponse:
    rule: AlertRule = selectors.get_rule_for_user(request.user, rule_id, role=Role.EDITOR)
    services.alert_rule_delete(rule=rule)
    messages.success(request, f"Rule “{rule.name}” and its alerts deleted.")
    return redirect("alert_rule_list")


# --- channels -------------------------------------------------------------------------------------


@workspace_required()
def alert_channel_list(request: AuthedRequest) -> HttpResponse:
    assert request.membership is not None
    return render(
        request,
        "monitoring/alert_channels.html",
        {
            "channels": selectors.channels_of(workspace=request.membership.workspace),
            "can_edit": request.membership.allows(Role.EDITOR),
        },
    )


@workspace_required(Role.EDITOR)
@require_http_methods(["GET", "POST"])
def alert_channel_create(request: AuthedRequest) -> HttpResponse:
    assert request.membership is not None
    form = AlertChannelForm(request.POST or None, initial={"kind": ChannelKind.WEBHOOK})
    if request.method == "POST" and form.is_valid():
        channel, secret = services.alert_channel_create(
            workspace=request.membership.workspace,
            kind=form.cleaned_data["kind"],
            data=form.cleaned_data,
        )
        if not secret:
            messages.success(request, f"Channel “{channel.name}” created.")
            return redirect("alert_channel_detail", channel_id=channel.pk)
        # Rendered, never redirected: the secret must not wait in a session or a URL.
        return _channel_detail(request, channel, secret=secret)
    status = 400 if request.method == "POST" else 200
    return render(request, "monitoring/alert_channel_form.html", {"form": form}, status=status)


def _channel_detail(
    request: AuthedRequest,
    channel: AlertChannel,
    *,
    form: AlertChannelForm | None = None,
    secret: str = "",
    status: int = 200,
) -> HttpResponse:
    membership = request.membership
    can_edit = (
        membership is not None
        and membership.workspace_id == channel.workspace_id
        and (membership.allows(Role.EDITOR))
    )
    if form is None and can_edit:
        form = AlertChannelForm(
            fixed_kind=channel.kind,
            initial={
                "name": channel.name,
                "enabled": channel.enabled,
                "email_to": channel.email_to,
                "url": channel.url,
            },
        )
    return render(
        request,
        "monitoring/alert_channel_detail.html",
        {
            "channel": channel,
            "form": form,
            "secret": secret,
            "deliveries": selectors.deliveries_of(channel=channel),
            "can_edit": can_edit,
        },
        status=status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def alert_channel_detail(request: AuthedRequest, channel_id: int) -> HttpResponse:
    role = Role.EDITOR if request.method == "POST" else Role.VIEWER
    channel = selectors.get_channel_for_user(request.user, channel_id, role=role)
    if request.method == "POST":
        form = AlertChannelForm(request.POST, fixed_kind=channel.kind)
        if form.is_valid():
            services.alert_channel_update(channel=channel, data=form.cleaned_data)
            messages.success(request, f"Channel “{channel.name}” saved.")
            return redirect("alert_channel_detail", channel_id=channel.pk)
        return _channel_detail(request, channel, form=form, status=400)
    return _channel_detail(request, channel)


@login_required
@require_POST
def alert_channel_rotate(request: AuthedRequest, channel_id: int) -> HttpResponse:
    channel = selectors.get_channel_for_user(request.user, channel_id, role=Role.EDITOR)
    if channel.kind != ChannelKind.WEBHOOK:
        return refusal(request, "Only webhooks have a signing secret.")
    secret = services.alert_channel_secret_rotate(channel=channel)
    return _channel_detail(request, channel, secret=secret)


@login_required
@require_POST
def alert_channel_delete(request: AuthedRequest, channel_id: int) -> HttpResponse:
    channel = selectors.get_channel_for_user(request.user, channel_id, role=Role.EDITOR)
    services.alert_channel_delete(channel=channel)
    messages.success(request, f"Channel “{channel.name}” deleted.")
    return redirect("alert_channel_list")


@login_required
@require_POST
def alert_channel_test(request: AuthedRequest, channel_id: int) -> HttpResponse:
    channel = selectors.get_channel_for_user(request.user, channel_id, role=Role.EDITOR)
    services.alert_channel_test(channel=channel, user=request.user)
    messages.success(request, "Test message queued; its delivery appears below within seconds.")
    return redirect("alert_channel_detail", channel_id=channel.pk)


@login_required
@require_POST
def alert_delivery_redeliver(request: AuthedRequest, delivery_id: int) -> HttpResponse:
    delivery, _ = selectors.get_delivery_for_user(request.user, delivery_id, role=Role.EDITOR)
    delivery_redeliver(delivery=delivery)
    deliveries_dispatch([delivery.pk])
    messages.success(request, "Delivery queued again, with the same webhook-id.")
    return redirect("alert_channel_detail", channel_id=delivery.channel_id)
