"""Every view, as every persona: one table, checked against the URLconf.

A new view without a row here fails `test_every_view_has_a_row`, so nobody can add a page and
forget to decide who may see it. Outsiders get 404 for another workspace's objects (its existence
is not revealed); members whose role is too low get 403; anonymous visitors go to the login page.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from agents.models import OllamaNode
from tests.agents.factories import make_agent, make_provider
from tests.conftest import Personas

ANON, OUTSIDER, VIEWER, EDITOR, OWNER = "anonymous", "outsider", "viewer", "editor", "owner"
PERSONAS = (ANON, OUTSIDER, VIEWER, EDITOR, OWNER)
LOGIN = "login"  # expected: a redirect to the login page


def _ws(p: Personas) -> dict[str, Any]:
    return {"workspace_id": p.workspace.id}


def _editor_membership(p: Personas) -> dict[str, Any]:
    return {"workspace_id": p.workspace.id, "membership_id": p.membership(p.editor).id}


def _provider(p: Personas) -> dict[str, Any]:
    return {"provider_id": make_provider(p.workspace).pk}


def _ollama(p: Personas) -> dict[str, Any]:
    return {"provider_id": make_provider(p.workspace, kind="ollama", name="Fleet").pk}


def _node(p: Personas) -> dict[str, Any]:
    provider = make_provider(p.workspace, kind="ollama", name="Fleet")
    node = OllamaNode.objects.create(provider=provider, name="n1", base_url="http://10.0.0.5:11434")
    return {"provider_id": provider.pk, "node_id": node.pk}


def _remote_agent(p: Personas) -> dict[str, Any]:
    from agents.models import RemoteAgent

    # A private address: refreshing its card is refused by the URL policy, with no network.
    agent = RemoteAgent.objects.create(workspace=p.workspace, name="Desk", url="http://10.0.0.9")
    return {"remote_agent_id": agent.pk}


def _agent(p: Personas) -> dict[str, Any]:
    return {"agent_id": make_agent(p.workspace).pk}


def _mcp_server(p: Personas) -> dict[str, Any]:
    from agents.mcp.models import McpServer

    server = McpServer.objects.create(
        workspace=p.workspace,
        name="Tools",
        key="tools",
        transport="http",
        url="http://127.0.0.1:9/mcp",
        tools=[{"name": "echo", "description": "", "input_schema": {"type": "object"}}],
    )
    return {"server_id": server.pk}


def _mcp_tool(p: Personas) -> dict[str, Any]:
    return {**_mcp_server(p), "tool": "echo"}


def _published(p: Personas) -> Any:
    from workflows.services.workflows import EMPTY_GRAPH, workflow_create, workflow_publish

    workflow = workflow_create(workspace=p.workspace, user=p.owner, name="Flow", graph=EMPTY_GRAPH)
    workflow_publish(workflow=workflow, user=p.owner)
    return workflow


def _workflow(p: Personas) -> dict[str, Any]:
    return {"workflow_id": _published(p).pk}


def _run(p: Personas, status: str = "succeeded") -> dict[str, Any]:
    from workflows.models import Run

    workflow = _published(p)
    run = Run.objects.create(
        workspace=p.workspace,
        workflow=workflow,
        version=workflow.versions.get(),
        status=status,
    )
    return {"run_id": run.pk}


def _two_runs(p: Personas) -> list[Any]:
    from workflows.models import Run

    workflow = _published(p)
    return [
        Run.objects.create(
            workspace=p.workspace, workflow=workflow, version=workflow.versions.get()
        ).pk
        for _ in range(2)
    ]


def _budget(p: Personas) -> dict[str, Any]:
    from agents.budgets.models import Budget

    budget = Budget.objects.create(workspace=p.workspace, name="Lab", hard_limit=5)
    return {"budget_id": budget.pk}


def _alert_rule(p: Personas) -> Any:
    from monitoring.alerts.models import AlertRule

    return AlertRule.objects.create(
        workspace=p.workspace, name="Errors", kind="error_rate", threshold=10
    )


def _incident(p: Personas) -> dict[str, Any]:
    from django.utils import timezone

    from monitoring.alerts.models import AlertIncident

    rule = _alert_rule(p)
    incident = AlertIncident.objects.create(
        workspace=p.workspace, rule=rule, summary="Errors", threshold=10, opened_at=timezone.now()
    )
    return {"incident_id": incident.pk}


def _channel_object(p: Personas) -> Any:
    from monitoring.alerts.services import alert_channel_create

    channel, _ = alert_channel_create(
        workspace=p.workspace,
        kind="webhook",
        data={"name": "Hook", "enabled": True, "url": "https://hooks.example.com/a2a"},
    )
    return channel


def _channel(p: Personas) -> dict[str, Any]:
    return {"channel_id": _channel_object(p).pk}


def _delivery(p: Personas) -> dict[str, Any]:
    from django.utils import timezone

    from monitoring.alerts.models import AlertDelivery

    delivery = AlertDelivery.objects.create(
        channel=_channel_object(p),
        event="alert.test",
        message_id=AlertDelivery.new_message_id(),
        body="{}",
        status="failed",
        next_attempt_at=timezone.now(),
    )
    return {"delivery_id": delivery.pk}


def _hook_object(p: Personas) -> Any:
    from workflows.webhooks.services import subscription_create

    subscription, _ = subscription_create(
        workspace=p.workspace,
        user=p.owner,
        data={"name": "Bot", "url": "https://hooks.example.com/a2a", "events": ["run.failed"]},
    )
    return subscription


def _hook(p: Personas) -> dict[str, Any]:
    return {"subscription_id": _hook_object(p).pk}


def _hook_delivery_object(p: Personas) -> Any:
    from django.utils import timezone

    from workflows.webhooks.models import WebhookDelivery

    now = timezone.now()
    return WebhookDelivery.objects.create(
        subscription=_hook_object(p),
        event="webhook.test",
        event_id=WebhookDelivery.new_event_id(),
        body="{}",
        status="failed",
        next_attempt_at=now,
        retry_since=now,
    )


def _hook_delivery(p: Personas) -> dict[str, Any]:
    return {"delivery_id": _hook_delivery_object(p).pk}


def _hook_and_delivery(p: Personas) -> dict[str, Any]:
    delivery = _hook_delivery_object(p)
    return {"subscription_id": delivery.subscription_id, "delivery_id": delivery.pk}


def _owner_token(p: Personas) -> dict[str, Any]:
    from a2a_site.api.tokens import token_create

    return {"token_id": token_create(user=p.owner, name="CI", scope="read").token.pk}


@dataclass
class Row:
    method: str
    expect: dict[str, int | str]
    kwargs: Callable[[Personas], dict[str, Any]] = lambda p: {}
    data: dict[str, Any] = field(default_factory=dict)
    # Query parameters naming objects made for the test (such as two runs to compare).
    query: Callable[[Personas], dict[str, Any]] | None = None
    # Sent as a JSON body (the public API), not as a form.
    json: bool = False


def everyone(status: int | str) -> dict[str, int | str]:
    return dict.fromkeys(PERSONAS, status)


def members(status: int, *, anon: int | str = LOGIN) -> dict[str, Any]:
    """Every signed-in persona gets `status` (outsiders too: they have a workspace of their own)."""
    return {ANON: anon, OUTSIDER: status, VIEWER: status, EDITOR: status, OWNER: status}


# Pages about "the current workspace": an outsider sees their own workspace's page.
CURRENT = members(200)
# Pages about one workspace named in the URL.
OWNER_ONLY_POST = {ANON: LOGIN, OUTSIDER: 404, VIEWER: 403, EDITOR: 403, OWNER: 400}
# Creating in the current workspace: viewers may not; an outsider creates in their own.
EDITORS_HERE = {ANON: LOGIN, OUTSIDER: 200, VIEWER: 403, EDITOR: 200, OWNER: 200}
# An object of the workspace: members see it, outsiders do not learn it exists.
SEE_OBJECT = {ANON: LOGIN, OUTSIDER: 404, VIEWER: 200, EDITOR: 200, OWNER: 200}


def edit_object(status: int) -> dict[str, int | str]:
    return {ANON: LOGIN, OUTSIDER: 404, VIEWER: 403, EDITOR: status, OWNER: status}


# The public API (/api/v1/, signed in with the session here): anonymous callers get 401.
API_MEMBERS = members(200, anon=401)
API_SEE = {**SEE_OBJECT, ANON: 401}


def api_edit(status: int) -> dict[str, int | str]:
    return {**edit_object(status), ANON: 401}


TABLE: dict[str, Row] = {
    "home": Row("get", CURRENT),
    "agent_list": Row("get", CURRENT),
    "workflow_list": Row("get", CURRENT),
    "run_list": Row("get", CURRENT),
    "run_export_csv": Row("get", CURRENT),
    "run_export_json": Row("get", CURRENT),
    "run_bulk": Row("post", {**EDITORS_HERE, OUTSIDER: 302, EDITOR: 302, OWNER: 302}),
    "run_pin": Row("post", edit_object(302), _run, {"pinned": "yes"}),
    "workflow_runs": Row("get", SEE_OBJECT, _workflow),
    "workspace_retention": Row(
        "post", {**OWNER_ONLY_POST, OWNER: 302}, _ws, {"mode": "days", "days": "30"}
    ),
    "monitoring_overview": Row("get", CURRENT),
    "monitoring_fleet": Row("get", CURRENT),
    "monitoring_capacity": Row("get", CURRENT),
    # With nothing to plan, editors are told so; viewers may not pull models.
    "monitoring_capacity_apply": Row(
        "post", {**EDITORS_HERE, OUTSIDER: 400, EDITOR: 400, OWNER: 400}
    ),
    "dashboards": Row("get", CURRENT),
    "dashboard_report": Row("get", CURRENT, lambda p: {"fmt": "csv"}),
    "agent_dashboard": Row("get", SEE_OBJECT, _agent),
    "workflow_dashboard": Row("get", SEE_OBJECT, _workflow),
    # Read by the page's script: anonymous callers get a JSON 403, not a login page; a query
    # that names no measure is refused with the reason.
    "metrics_query": Row("get", {**members(400), ANON: 403}),
    "budget_list": Row("get", CURRENT),
    "budget_create": Row("get", EDITORS_HERE),
    "budget_detail": Row("get", SEE_OBJECT, _budget),
    "budget_edit": Row("get", edit_object(200), _budget),
    "budget_delete": Row("post", edit_object(302), _budget),
    "healthz": Row("get", everyone(200)),
    # For Prometheus: refused to every persona until a token or an allow-list is configured
    # (tests/monitoring/test_prometheus.py covers both).
    "metrics": Row("get", everyone(403)),
    "signup": Row("get", {ANON: 200, OUTSIDER: 302, VIEWER: 302, EDITOR: 302, OWNER: 302}),
    "signup_sent": Row("get", everyone(200)),
    "signup_confirm": Row(
        "get",
        {ANON: 400, OUTSIDER: 302, VIEWER: 302, EDITOR: 302, OWNER: 302},
        lambda p: {"token": "not-a-signed-token"},
    ),
    "login": Row("get", {ANON: 200, OUTSIDER: 302, VIEWER: 302, EDITOR: 302, OWNER: 302}),
    "logout": Row("post", everyone(302)),
    "password_change": Row("get", members(200)),
    "password_change_done": Row("get", members(200)),
    "password_reset": Row("get", everyone(200)),
    "password_reset_done": Row("get", everyone(200)),
    "password_reset_confirm": Row(
        "get", everyone(200), lambda p: {"uidb64": "MQ", "token": "set-password"}
    ),
    "password_reset_complete": Row("get", everyone(200)),
    "workspace_list": Row("get", members(200)),
    "workspace_create": Row("get", members(200)),
    "workspace_settings_current": Row("get", members(302)),
    "workspace_settings": Row("get", {**members(200), OUTSIDER: 404}, _ws),
    "workspace_switch": Row("post", {**members(302), OUTSIDER: 404}, _ws),
    "workspace_rename": Row("post", OWNER_ONLY_POST, _ws),
    "workspace_delete": Row("post", OWNER_ONLY_POST, _ws),
    "workspace_leave": Row(
        # Leaving works for any member; the owner is the last owner, so is refused (redirect).
        "post",
        {ANON: LOGIN, OUTSIDER: 404, VIEWER: 302, EDITOR: 302, OWNER: 302},
        _ws,
    ),
    "member_invite": Row("post", OWNER_ONLY_POST, _ws),
    "member_role": Row(
        "post", {**OWNER_ONLY_POST, OWNER: 302}, _editor_membership, {"role": "viewer"}
    ),
    "member_remove": Row("post", {**OWNER_ONLY_POST, OWNER: 302}, _editor_membership),
    "provider_list": Row("get", CURRENT),
    "tool_host_policy": Row("get", EDITORS_HERE),
    "remote_agent_list": Row("get", CURRENT),
    # Without ?url= the card cannot be fetched: a problem, for every member.
    "remote_agent_card": Row("get", members(400)),
    "remote_agent_edit": Row("get", SEE_OBJECT, _remote_agent),
    "remote_agent_refresh": Row("post", edit_object(302), _remote_agent),
    "remote_agent_delete": Row("post", edit_object(302), _remote_agent),
    "agent_mcp_servers": Row("get", CURRENT),
    "agent_mcp_server_create": Row("get", EDITORS_HERE),
    "agent_mcp_server_detail": Row("get", SEE_OBJECT, _mcp_server),
    "agent_mcp_server_edit": Row("get", edit_object(200), _mcp_server),
    "agent_mcp_server_delete": Row("post", edit_object(302), _mcp_server),
    # Loopback is refused to tools here, so the listing fails at once: back to the page.
    "agent_mcp_server_tools": Row("post", edit_object(302), _mcp_server),
    "agent_mcp_tool_test": Row("get", edit_object(200), _mcp_tool),
    "gateway_middleware": Row("get", CURRENT),
    "provider_create": Row("get", EDITORS_HERE),
    "provider_detail": Row("get", SEE_OBJECT, _provider),
    "provider_edit": Row("get", edit_object(200), _provider),
    "provider_delete": Row("post", edit_object(302), _provider),
    "provider_check": Row("post", edit_object(302), _provider),
    # Refused with a reason (nothing posted) or saved: back to the prices card either way.
    "provider_price_set": Row("post", edit_object(302), _provider),
    "provider_price_remove": Row("post", edit_object(302), _provider),
    # The settings as entered are tested; a form with no name is refused (200 with the form).
    "provider_test_new": Row("post", {**EDITORS_HERE, OUTSIDER: 404, EDITOR: 404, OWNER: 404}),
    "provider_test": Row("post", edit_object(200), _provider),
    "node_create": Row("post", edit_object(400), _ollama),
    "node_delete": Row("post", edit_object(302), _node),
    "node_pull": Row("post", edit_object(400), _node),
    "node_memory": Row("post", edit_object(302), _node, {"memory_gb": "24"}),
    "node_pull_status": Row("get", SEE_OBJECT, _node),
    "agent_create": Row("get", EDITORS_HERE),
    "agent_detail": Row("get", SEE_OBJECT, _agent),
    "agent_edit": Row("get", edit_object(200), _agent),
    "agent_duplicate": Row("post", edit_object(302), _agent),
    "agent_delete": Row("post", edit_object(302), _agent),
    "agent_playground": Row("get", edit_object(200), _agent),
    "workflow_from_template": Row("post", {**EDITORS_HERE, OUTSIDER: 302, EDITOR: 302, OWNER: 302}),
    "workflow_detail": Row("get", SEE_OBJECT, _workflow),
    "workflow_run": Row("post", edit_object(302), _workflow),
    "workflow_a2a": Row("post", edit_object(302), _workflow),
    "workflow_mcp_offer": Row("post", edit_object(302), _workflow, {"offered": "on"}),
    "workflow_run_api": Row("post", edit_object(400), _workflow, {"inputs": "[]"}),
    "workflow_export": Row("get", SEE_OBJECT, _workflow),
    "workflow_playground": Row("get", edit_object(200), _workflow),
    # Nothing was said: refused with a reason.
    "workflow_playground_send": Row("post", edit_object(400), _workflow),
    "workflow_new": Row("get", EDITORS_HERE),
    "workflow_builder": Row("get", SEE_OBJECT, _workflow),
    "workflow_draft_save": Row("post", edit_object(400), _workflow),
    "workflow_publish": Row("post", edit_object(302), _workflow),
    # Viewers may look at a node's properties (read only); nothing was posted, hence 400.
    "workflow_node_form": Row(
        "post", {**SEE_OBJECT, VIEWER: 400, EDITOR: 400, OWNER: 400}, _workflow
    ),
    # The inputs and variables editor, the same way: nothing was posted, hence 400.
    "workflow_interface_form": Row(
        "post", {**SEE_OBJECT, VIEWER: 400, EDITOR: 400, OWNER: 400}, _workflow
    ),
    # The run settings editor, the same way.
    "workflow_settings_form": Row(
        "post", {**SEE_OBJECT, VIEWER: 400, EDITOR: 400, OWNER: 400}, _workflow
    ),
    "workflow_version_json": Row("get", SEE_OBJECT, lambda p: {**_workflow(p), "number": 1}),
    "workflow_diff": Row("get", SEE_OBJECT, _workflow),
    "workflow_import_graph": Row("post", edit_object(400), _workflow),
    "workflow_template_graph": Row("post", edit_object(400), _workflow),
    "workflow_agent_new": Row("get", edit_object(200), _workflow),
    "run_nodes_json": Row("get", SEE_OBJECT, _run),
    "run_detail": Row("get", SEE_OBJECT, _run),
    "run_cancel": Row("post", edit_object(302), _run),
    "run_answer": Row("post", edit_object(302), _run),
    "run_retry": Row("post", edit_object(302), _run),
    "run_rerun": Row("post", edit_object(302), _run),
    "run_trace": Row("get", SEE_OBJECT, _run),
    "run_compare": Row(
        "get", SEE_OBJECT, query=lambda p: dict(zip("ab", _two_runs(p), strict=True))
    ),
    # The run has no such step: refused with the reason (the fork tests cover the form itself).
    "run_fork": Row("get", edit_object(400), _run, {"step": "research"}),
    "alert_list": Row("get", CURRENT),
    "alert_acknowledge": Row("post", edit_object(302), _incident),
    "alert_resolve": Row("post", edit_object(302), _incident),
    "alert_rule_list": Row("get", CURRENT),
    "alert_rule_create": Row("get", EDITORS_HERE),
    "alert_rule_edit": Row("get", edit_object(200), lambda p: {"rule_id": _alert_rule(p).pk}),
    "alert_rule_delete": Row("post", edit_object(302), lambda p: {"rule_id": _alert_rule(p).pk}),
    "alert_channel_list": Row("get", CURRENT),
    "alert_channel_create": Row("get", EDITORS_HERE),
    "alert_channel_detail": Row("get", SEE_OBJECT, _channel),
    # Renders the new secret once, in the answer itself.
    "alert_channel_rotate": Row("post", edit_object(200), _channel),
    "alert_channel_delete": Row("post", edit_object(302), _channel),
    "alert_channel_test": Row("post", edit_object(302), _channel),
    "alert_delivery_redeliver": Row("post", edit_object(302), _delivery),
    "webhook_list": Row("get", CURRENT),
    "webhook_create": Row("get", EDITORS_HERE),
    "webhook_detail": Row("get", SEE_OBJECT, _hook),
    "webhook_rotate": Row("post", edit_object(200), _hook),
    "webhook_delete": Row("post", edit_object(302), _hook),
    "webhook_test": Row("post", edit_object(302), _hook),
    "webhook_redeliver": Row("post", edit_object(302), _hook_delivery),
    "api_tokens": Row("get", members(200)),
    # Nothing posted: the form comes back with its errors.
    "api_token_create": Row("post", members(400)),
    # Only its creator sees a personal token.
    "api_token_revoke": Row(
        "post", {ANON: LOGIN, OUTSIDER: 404, VIEWER: 404, EDITOR: 404, OWNER: 200}, _owner_token
    ),
    "api_reference": Row("get", everyone(200)),
    "api:openapi-json": Row("get", everyone(200)),
    "api:api-root": Row("get", everyone(404)),
    "api:me": Row("get", API_MEMBERS),
    "api:workspace_list": Row("get", API_MEMBERS),
    "api:workspace_detail": Row("get", {**API_MEMBERS, OUTSIDER: 404}, _ws),
    "api:workflow_list": Row("get", API_MEMBERS),
    "api:workflow_detail": Row("get", API_SEE, _workflow),
    "api:workflow_create": Row(
        "post", {**api_edit(201), OUTSIDER: 201}, data={"name": "From a script"}, json=True
    ),
    # Not an exported document: refused with the reason.
    "api:workflow_import": Row(
        "post", {**api_edit(422), OUTSIDER: 422}, data={"document": {}}, json=True
    ),
    "api:workflow_export": Row("get", API_SEE, _workflow),
    "api:workflow_update": Row("patch", api_edit(200), _workflow, {"name": "Renamed"}, json=True),
    "api:workflow_delete": Row("delete", api_edit(204), _workflow, json=True),
    "api:workflow_draft": Row("get", API_SEE, _workflow),
    "api:workflow_draft_save": Row(
        "put", api_edit(200), _workflow, {"graph": {"nodes": []}, "force": True}, json=True
    ),
    "api:workflow_validate": Row("post", API_SEE, _workflow, {}, json=True),
    "api:workflow_publish": Row("post", api_edit(201), _workflow, {}, json=True),
    "api:workflow_versions": Row("get", API_SEE, _workflow),
    "api:workflow_version": Row("get", API_SEE, lambda p: {**_workflow(p), "number": 1}),
    "api:run_launch": Row("post", api_edit(201), _workflow, {"inputs": {}}, json=True),
    "api:run_list": Row("get", API_MEMBERS),
    "api:run_detail": Row("get", API_SEE, _run),
    "api:run_cancel": Row("post", api_edit(200), _run, {}, json=True),
    "api:run_events": Row("get", API_SEE, _run),
    # The run is finished: it waits for no answer and did not fail (409); no such step (422).
    "api:run_answer": Row(
        "post", api_edit(409), _run, {"step_key": "ask", "answer": "yes"}, json=True
    ),
    "api:run_retry": Row("post", api_edit(409), _run, {}, json=True),
    "api:run_fork": Row("post", api_edit(422), _run, {"step_key": "research"}, json=True),
    # No measure named: refused with the reason (422), as the dashboards' query is.
    "api:metrics": Row("get", members(422, anon=401)),
    "api:provider_list": Row("get", API_MEMBERS),
    # Outsiders add to their own (current) workspace.
    "api:provider_create": Row(
        "post", {**api_edit(201), OUTSIDER: 201}, data={"kind": "demo", "name": "Local"}, json=True
    ),
    "api:provider_detail": Row("get", API_SEE, _provider),
    "api:provider_update": Row(
        "put", api_edit(200), _provider, {"kind": "demo", "name": "Renamed"}, json=True
    ),
    "api:provider_delete": Row("delete", api_edit(204), _provider, json=True),
    # The demo model is not running here: the test answers, and says it failed.
    "api:provider_test": Row("post", api_edit(200), _provider, json=True),
    "api:agent_list": Row("get", API_MEMBERS),
    "api:agent_create": Row(
        "post", {**api_edit(422), OUTSIDER: 422}, data={"name": "A", "config": {}}, json=True
    ),
    "api:agent_detail": Row("get", API_SEE, _agent),
    "api:agent_update": Row("put", api_edit(422), _agent, {"name": "A", "config": {}}, json=True),
    "api:agent_delete": Row("delete", api_edit(204), _agent, json=True),
    "api:agent_versions": Row("get", API_SEE, _agent),
    "api:webhook_list": Row("get", API_MEMBERS),
    # Outsiders add to their own (current) workspace.
    "api:webhook_create": Row(
        "post",
        {**api_edit(201), OUTSIDER: 201},
        data={"name": "Bot", "url": "https://hooks.example.com/a", "events": ["run.failed"]},
        json=True,
    ),
    "api:webhook_detail": Row("get", API_SEE, _hook),
    "api:webhook_update": Row("patch", api_edit(200), _hook, {"name": "Renamed"}, json=True),
    "api:webhook_delete": Row("delete", api_edit(204), _hook, json=True),
    "api:webhook_secret_rotate": Row("post", api_edit(200), _hook, json=True),
    "api:webhook_test": Row("post", api_edit(202), _hook, json=True),
    "api:webhook_deliveries": Row("get", API_SEE, _hook),
    "api:webhook_redeliver": Row("post", api_edit(202), _hook_and_delivery, json=True),
    # An async endpoint read by fetch(): anonymous callers get 403, not a login page.
    "agent_playground_stream": Row("post", {**edit_object(400), ANON: 403}, _agent),
}


def _named_patterns(resolver: URLResolver, namespace: str = "") -> set[str]:
    names: set[str] = set()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            names |= _named_patterns(entry, inner)
        elif isinstance(entry, URLPattern) and entry.name:
            names.add(f"{namespace}{entry.name}")
    return names


def test_every_view_has_a_row() -> None:
    # The admin guards itself (staff only); it is checked once in test_admin_needs_staff.
    names = {name for name in _named_patterns(get_resolver()) if not name.startswith("admin:")}
    missing = sorted(names - TABLE.keys())
    stale = sorted(TABLE.keys() - names)
    assert not missing, f"Add these views to TABLE with the status each persona gets: {missing}"
    assert not stale, f"These rows name views that no longer exist: {stale}"


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("name", sorted(TABLE))
def test_view_answers_each_persona(name: str, persona: str, personas: Personas, client_for) -> None:
    row = TABLE[name]
    user = None if persona == ANON else getattr(personas, persona)
    client = client_for(user)
    url = reverse(name, kwargs=row.kwargs(personas))
    data = row.query(personas) if row.query is not None else row.data
    if row.json:
        response = getattr(client, row.method)(url, json.dumps(data), "application/json")
    else:
        response = getattr(client, row.method)(url, data)
    expected = row.expect[persona]
    if expected == LOGIN:
        assert response.status_code == 302, f"{name} as {persona}"
        assert response["Location"].startswith(reverse("login")), f"{name} as {persona}"
    else:
        assert response.status_code == expected, f"{name} as {persona}"


def test_admin_needs_staff(personas: Personas, client_for) -> None:
    response = client_for(personas.owner).get(reverse("admin:index"))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
