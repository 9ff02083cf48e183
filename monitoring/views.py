from __future__ import annotations

import csv
import io
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from a2a_site.accounts.access import get_membership_for_user
from a2a_site.accounts.decorators import workspace_required
from a2a_site.accounts.models import Role
from a2a_site.http import AuthedRequest
from a2a_site.refusals import json_endpoint, refusal
from agents.models import OllamaNode
from agents.selectors import get_agent_for_user
from agents.services.pull import node_pull_start
from monitoring import health
from monitoring.dashboards import (
    FILTERS,
    STACK_CHOICES,
    DashboardScope,
    agent_report,
    agent_report_csv,
    agent_report_markdown,
    dashboard_scope,
    filter_options,
    headline,
    range_choices,
    top_lists,
)
from monitoring.fleet import fleet_overview
from monitoring.metrics import MetricsQueryError, metrics_answer, metrics_query_parse
from monitoring.planner import (
    CONTEXT_CHOICES,
    PlannerInputError,
    agent_choices,
    capacity_plan,
    planner_inputs,
)
from monitoring.selectors import workers_overview
from workflows.selectors import get_workflow_for_user

SPANS = {"hour": "last hour", "day": "last day"}


@workspace_required()
def overview(request: AuthedRequest) -> HttpResponse:
    span = request.GET.get("span", "hour")
    if span not in SPANS:
        return refusal(request, "The history spans the last hour (span=hour) or day (span=day).")
    context = {
        "probes": [health.probe_database(), health.probe_redis(), health.probe_execution()],
        "queues": health.celery_queues(),
        "process": health.this_process(),
        "workers": workers_overview(span=span),
        "span": span,
        "spans": SPANS,
        "span_label": SPANS[span],
        "keep_days": settings.WORKER_KEEP_DAYS,
    }
    template = "monitoring/_health.html" if request.htmx else "monitoring/overview.html"
    return render(request, template, context)


@workspace_required()
@require_GET
def fleet(request: AuthedRequest) -> HttpResponse:
    assert request.membership is not None
    span = request.GET.get("span", "hour")
    if span not in SPANS:
        return refusal(request, "The history spans the last hour (span=hour) or day (span=day).")
    context = {
        "fleet": fleet_overview(request.membership.workspace_id, span=span),
        "probe_seconds": settings.OLLAMA_PROBE_SECONDS,
        "span": span,
        "spans": SPANS,
        "span_label": SPANS[span],
    }
    template = "monitoring/_fleet.html" if request.htmx else "monitoring/fleet.html"
    return render(request, template, context)


def _planner_context(request: AuthedRequest) -> dict[str, Any] | HttpResponse:
    assert request.membership is not None
    workspace_id = request.membership.workspace_id
    choices = agent_choices(workspace_id)
    source = request.POST if request.method == "POST" else request.GET
    try:
        wanted, parallel, context_length = planner_inputs(source, choices)
    except PlannerInputError as error:
        return refusal(request, f"The planner cannot read that: {error}")
    context: dict[str, Any] = {
        "choices": choices,
        "picked": set(source.getlist("agents")),
        "models_text": source.get("models", ""),
        "parallel": parallel,
        "context_length": context_length,
        "context_choices": CONTEXT_CHOICES,
        "can_apply": request.membership.role in (Role.OWNER, Role.EDITOR),
        "result": None,
    }
    if wanted:
        context["result"] = capacity_plan(
            workspace_id, wanted, parallel=parallel, context=context_length
        )
    return context


@workspace_required()
@require_GET
def capacity(request: AuthedRequest) -> HttpResponse:
    context = _planner_context(request)
    if isinstance(context, HttpResponse):
        return context
    return render(request, "monitoring/capacity.html", context)


@workspace_required(Role.EDITOR)
@require_POST
def capacity_apply(request: AuthedRequest) -> HttpResponse:
    """Pulls each planned model onto each node the plan puts it on and that lacks it."""
    context = _planner_context(request)
    if isinstance(context, HttpResponse):
        return context
    result = context["result"]
    if result is None or result.plan is None or not result.plan.placements:
        return refusal(request, "Nothing to apply: the plan places no model.")
    nodes = {
        node.pk: node
        for node in OllamaNode.objects.filter(
            provider__workspace_id=request.membership.workspace_id,  # type: ignore[union-attr]
            pk__in=[p.node_id for p in result.plan.placements],
        )
    }
    started = []
    for placement in result.plan.placements:
        node = nodes.get(placement.node_id)
        if placement.present or node is None:
            continue
        try:
            node_pull_start(node=node, model=placement.model)
        except ValidationError as error:
            return refusal(request, " ".join(error.messages))
        started.append(f"{placement.model} onto {node.name}")
    if started:
        messages.success(
            request, "Pulling " + "; ".join(started) + ". The fleet page shows them as they land."
        )
    else:
        messages.info(request, "Every node already has the models the plan gives it.")
    return redirect("monitoring_fleet")


def _report_url(fmt: str, workspace_id: Any, scope: DashboardScope) -> str:
    return f"{reverse('dashboard_report', args=[fmt])}?{scope.params(workspace=workspace_id)}"


def _workspace_asked(request: HttpRequest) -> Any:
    """The workspace a dashboard read is about: `workspace=<id>` (an agent's or workflow's tab
    may belong to another of the user's workspaces), or the current one. 404 for non-members."""
    asked = request.GET.get("workspace", "")
    if asked:
        return get_membership_for_user(request.user, asked).workspace_id  # type: ignore[arg-type]
    membership = getattr(request, "membership", None)
    if membership is None:
        raise Http404("No workspace.")
    return membership.workspace_id


def _dashboard(
    request: AuthedRequest,
    workspace_id: Any,
    *,
    title: str,
    fixed: dict[str, str] | None = None,
    subject: Any = None,
) -> HttpResponse:
    try:
        scope = dashboard_scope(request.GET, fixed)
    except MetricsQueryError as error:
        return refusal(request, f"The dashboard cannot show that: {error}")
    context: dict[str, Any] = {
        "title": title,
        "subject": subject,
        "scope": scope,
        "shared": scope.params(),
        "report_csv": _report_url("csv", workspace_id, scope),
        "report_md": _report_url("md", workspace_id, scope),
        "workspace_id": str(workspace_id),
        "api": reverse("metrics_query"),
    }
    region = request.GET.get("region", "")
    if region:
        # Each region of the page is its own request, asked when the page loads and again
        # when the range, a filter or the figures change: none waits for the others.
        if region == "headline":
            context["headline"] = headline(workspace_id, scope)
        elif region == "agents":
            context["report"] = agent_report(workspace_id, scope)
        elif region in ("costs", "slow"):
            context["top"] = top_lists(workspace_id, scope, region)
        else:
            return refusal(request, "Unknown region: ask headline, agents, costs or slow.")
        return render(request, f"monitoring/_dashboard_{region}.html", context)
    context.update(
        options=filter_options(workspace_id, scope),
        ranges=range_choices(),
        stacks=[(value, label) for value, label in STACK_CHOICES if value not in scope.fixed],
        filters=[name for name in FILTERS if name not in scope.fixed],
        regions=("headline", "agents", "costs", "slow"),
    )
    return render(request, "monitoring/dashboards.html", context)


@workspace_required()
@require_GET
def dashboards(request: AuthedRequest) -> HttpResponse:
    assert request.membership is not None
    return _dashboard(request, request.membership.workspace_id, title="Dashboards")


@login_required
@require_GET
def agent_dashboard(request: AuthedRequest, agent_id: UUID) -> HttpResponse:
    agent, _ = get_agent_for_user(request.user, agent_id)
    return _dashboard(
        request,
        agent.workspace_id,
        title=f"{agent.name} · dashboard",
        fixed={"agent": str(agent.pk)},
        subject=agent,
    )


@login_required
@require_GET
def workflow_dashboard(request: AuthedRequest, workflow_id: UUID) -> HttpResponse:
    workflow, _ = get_workflow_for_user(request.user, workflow_id)
    return _dashboard(
        request,
        workflow.workspace_id,
        title=f"{workflow.name} · dashboard",
        fixed={"workflow": str(workflow.pk)},
        subject=workflow,
    )


@workspace_required()
@require_GET
def dashboard_report(request: AuthedRequest, fmt: str) -> HttpResponse:
    """The per-agent report of the dashboard's range and filters, as CSV or Markdown."""
    workspace_id = _workspace_asked(request)
    if fmt not in ("csv", "md"):
        return refusal(request, "The report comes as .csv or .md.", status=404)
    try:
        scope: DashboardScope = dashboard_scope(request.GET)
    except MetricsQueryError as error:
        return refusal(request, f"The report cannot cover that: {error}")
    rows = agent_report(workspace_id, scope)
    stamp = scope.query.end.strftime("%Y%m%d-%H%M")
    if fmt == "csv":
        response = HttpResponse(agent_report_csv(rows), content_type="text/csv; charset=utf-8")
    else:
        title = (
            f"Agents, {scope.query.start:%Y-%m-%d %H:%M} to {scope.query.end:%Y-%m-%d %H:%M} UTC"
        )
        response = HttpResponse(
            agent_report_markdown(rows, title), content_type="text/markdown; charset=utf-8"
        )
    response["Content-Disposition"] = f'attachment; filename="agents-{stamp}.{fmt}"'
    return response


def _answer_csv(answer: dict[str, Any]) -> str:
    query = answer["query"]
    dimensions = query["dimensions"]
    measures = query["measures"]
    out = io.StringIO()
    writer = csv.writer(out)
    timed = query["granularity"] != "total"
    writer.writerow([*(["time"] if timed else []), *dimensions, *measures])
    for row in answer["rows"]:
        labels = [answer["labels"][name].get(row[name], row[name]) for name in dimensions]
        labels = ["'" + text if text[:1] in ("=", "+", "-", "@") else text for text in labels]
        values = ["" if row[name] is None else row[name] for name in measures]
        writer.writerow([*([row["time"]] if timed else []), *labels, *values])
    return out.getvalue()


@json_endpoint
@require_GET
def metrics_query(request: HttpRequest) -> HttpResponse:
    """The metrics query over the current workspace (session auth; API tokens come later).

    Parameters: see `monitoring.metrics.query.metrics_query_parse`; `format=csv` for a file.
    """
    if not request.user.is_authenticated:
        return JsonResponse({"error": "Log in first."}, status=403)
    try:
        workspace_id = _workspace_asked(request)
    except Http404:
        return JsonResponse(
            {"error": "No such workspace of yours; join or create one.", "parameter": "workspace"},
            status=404,
        )
    fmt = request.GET.get("format", "json")
    if fmt not in ("json", "csv"):
        return JsonResponse({"error": "format is json or csv.", "parameter": "format"}, status=400)
    try:
        query = metrics_query_parse(request.GET)
    except MetricsQueryError as error:
        return JsonResponse({"error": str(error), "parameter": error.parameter}, status=400)
    answer = metrics_answer(workspace_id, query)
    if fmt == "csv":
        response = HttpResponse(_answer_csv(answer), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="metrics.csv"'
        return response
    return JsonResponse(answer)
