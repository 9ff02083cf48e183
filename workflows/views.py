"""Workflow and run pages: look up through the access seam, call one service, render."""

from __future__ import annotations

from json import dumps as json_dumps
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from a2a_site.accounts.decorators import workspace_required
from a2a_site.accounts.models import Role
from a2a_site.forms import form_add_errors
from a2a_site.http import AuthedRequest
from a2a_site.json_input import JsonInputError, json_body
from a2a_site.refusals import json_endpoint
from agents.models import LedgerEntry, Provider
from workflows.api_snippets import api_snippets
from workflows.forms import run_form_class, run_form_with_priority, run_inputs, run_priority
from workflows.graph import GraphError, graph_dump, graph_load
from workflows.mcp.catalog import mcp_offer_context
from workflows.models import TERMINAL_STATUSES, LaunchedVia, Run, RunEvent, Step
from workflows.selectors import (
    builder_catalog,
    get_run_for_user,
    get_workflow_for_user,
    run_capacity_wait,
    run_decisions,
    run_node_states,
    run_roots_of_descendants,
    run_steps_shown,
    runs_of,
    workflows_of,
)
from workflows.services import runs as run_services
from workflows.services.team_chat import chat_input_field, team_chat_start
from workflows.services.transfer import workflow_export
from workflows.spend_gate import LaunchRefused
from workflows.templates_catalog import TEMPLATES, template_instantiate, template_provider


@workspace_required()
@require_GET
def workflow_list(request: AuthedRequest) -> HttpResponse:
    assert request.membership is not None
    workspace_id = request.membership.workspace_id
    return render(
        request,
        "workflows/workflow_list.html",
        {
            "workflows": list(workflows_of(workspace_id)),
            "templates": TEMPLATES.values(),
            "can_edit": request.membership.allows(Role.EDITOR),
            "has_provider": Provider.objects.filter(workspace_id=workspace_id).exists(),
        },
    )


@workspace_required(Role.EDITOR)
@require_POST
def workflow_from_template(request: AuthedRequest) -> HttpResponse:
    assert request.membership is not None
    workspace = request.membership.workspace
    key = request.POST.get("template", "")
    if key not in TEMPLATES:
        messages.error(request, "Choose one of the templates.")
        return redirect("workflow_list")
    provider, _ = template_provider(workspace)
    if provider is None:
        messages.error(request, "Add a model provider first — the offline demo model needs no key.")
        return redirect("provider_list")
    try:
        workflow = template_instantiate(
            key=key, workspace=workspace, user=request.user, provider=provider
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("workflow_list")
    messages.success(request, f"“{workflow.name}” is ready, with its agents on {provider.name}.")
    return redirect("workflow_detail", workflow_id=workflow.pk)


def _run_form(workflow: Any, data: Any = None, initial: Any = None) -> Any:
    version = run_services.workflow_latest_version(workflow)
    if version is None:
        return None
    graph = graph_load(version.graph)
    form_class = run_form_with_priority(run_form_class(graph.inputs), graph.settings.priority)
    return form_class(data, initial=initial)


def _detail(workflow: Any, membership: Any, form: Any, *, base_url: str = "") -> dict[str, Any]:
    versions = list(workflow.versions.select_related("created_by")[:20])
    try:
        fields = graph_load(versions[0].graph).inputs.fields if versions else []
    except GraphError:
        fields = []
    from workflows.a2a.views import a2a_panel

    return {
        "a2a": a2a_panel(workflow, base_url),
        "snippets": api_snippets(base_url=base_url, workflow_id=workflow.pk, fields=fields),
        "workflow": workflow,
        "versions": versions,
        "latest": versions[0] if versions else None,
        "form": form,
        "runs": runs_of(workflow.workspace_id, workflow_id=workflow.pk, limit=20),
        "can_edit": membership.allows(Role.EDITOR),
        "mcp": mcp_offer_context(workflow, base_url),
    }


def workflow_detail_context(request: AuthedRequest, workflow: Any) -> dict[str, Any]:
    _, membership = get_workflow_for_user(request.user, workflow.pk)
    return _detail(
        workflow, membership, _run_form(workflow), base_url=request.build_absolute_uri("/")
    )


@login_required
@require_GET
def workflow_detail(request: AuthedRequest, workflow_id: UUID) -> HttpResponse:
    workflow, _ = get_workflow_for_user(request.user, workflow_id)
    return render(
        request, "workflows/workflow_detail.html", workflow_detail_context(request, workflow)
    )


@login_required
@require_http_methods(["GET", "POST"])
def workflow_run(request: AuthedRequest, workflow_id: UUID) -> HttpResponse:
    """Starts a run of the latest published version. From the builder (htmx) the form and the
    started run are partials, so the run is watched without leaving the canvas."""
    workflow, membership = get_workflow_for_user(request.user, workflow_id, role=Role.EDITOR)
    if request.method == "GET":
        if not request.htmx:
            return redirect("workflow_detail", workflow_id=workflow.pk)
        return render(request, "workflows/_run_form.html", _run_form_context(workflow))
    form = _run_form(workflow, request.POST)
    if form is not None and form.is_valid():
        try:
            run = run_services.run_start(
                workflow=workflow,
                user=request.user,
                inputs=run_inputs(form),
                priority=run_priority(form),
            )
        except ValidationError as error:
            form_add_errors(form, error)
        else:
            if request.htmx:
                return render(request, "workflows/_builder_run.html", {"run": run})
            return redirect("run_detail", run_id=run.pk)
    if form is None:
        if request.htmx:
            return render(request, "workflows/_run_form.html", _run_form_context(workflow))
        messages.error(request, "Publish the workflow before running it.")
        return redirect("workflow_detail", workflow_id=workflow.pk)
    if request.htmx:
        return render(
            request, "workflows/_run_form.html", _run_form_context(workflow, form), status=400
        )
    return render(
        request,
        "workflows/workflow_detail.html",
        _detail(workflow, membership, form, base_url=request.build_absolute_uri("/")),
        status=400,
    )


def _run_form_context(workflow: Any, form: Any = None) -> dict[str, Any]:
    latest = run_services.workflow_latest_version(workflow)
    return {
        "workflow": workflow,
        "latest": latest,
        "form": form if form is not None else _run_form(workflow),
        "draft_changed": latest is not None and not _draft_is(latest.graph, workflow.draft),
    }


def _draft_is(published: Any, draft: Any) -> bool:
    """Whether the draft is the published graph (published graphs are stored normalized)."""
    try:
        return bool(graph_dump(graph_load(draft)) == published)
    except GraphError:
        return False


@json_endpoint
@login_required
@require_http_methods(["GET", "POST"])
def workflow_run_api(request: AuthedRequest, workflow_id: UUID) -> JsonResponse:
    """JSON in, JSON out: `{"inputs": {...}}` starts a run of the latest published version;
    a GET lists the inputs that version asks for."""
    if request.method == "GET":
        workflow, _ = get_workflow_for_user(request.user, workflow_id)
        version = run_services.workflow_latest_version(workflow)
        if version is None:
            return JsonResponse({"error": "Nothing is published yet."}, status=404)
        fields = graph_load(version.graph).inputs.fields
        return JsonResponse(
            {"version": version.number, "inputs": [item.model_dump(mode="json") for item in fields]}
        )
    workflow, _ = get_workflow_for_user(request.user, workflow_id, role=Role.EDITOR)
    try:
        payload = json_body(request, expect=None, empty={})
    except JsonInputError as error:
        return JsonResponse({"error": str(error)}, status=error.status)
    inputs = payload.get("inputs", {}) if isinstance(payload, dict) else None
    if not isinstance(inputs, dict):
        return JsonResponse({"error": 'Send {"inputs": {...}}.'}, status=400)
    priority = payload.get("priority")
    if priority is not None and priority not in ("low", "normal", "high"):
        return JsonResponse({"error": 'priority: send "low", "normal" or "high".'}, status=400)
    try:
        run = run_services.run_start(
            workflow=workflow,
            user=request.user,
            inputs=inputs,
            launched_via=LaunchedVia.API,
            priority=priority,
        )
    except LaunchRefused as refused:
        # Not the inputs' fault: a budget over the run is spent (409: retry once it is raised).
        return JsonResponse({"error": refused.messages[0], "refused_by": "budget"}, status=409)
    except ValidationError as error:
        errors = error.message_dict if hasattr(error, "error_dict") else {"__all__": error.messages}
        return JsonResponse({"error": "The inputs are not valid.", "fields": errors}, status=400)
    return JsonResponse(
        {
            "run_id": str(run.pk),
            "status": run.status,
            "version": run.version.number,
            "url": request.build_absolute_uri(reverse("run_detail", args=[run.pk])),
        },
        status=201,
    )


@json_endpoint
@login_required
@require_GET
def workflow_export_view(request: AuthedRequest, workflow_id: UUID) -> HttpResponse:
    workflow, _ = get_workflow_for_user(request.user, workflow_id)
    draft = workflow.latest_version == 0 or request.GET.get("draft") == "1"
    document = workflow_export(workflow=workflow, draft=draft)
    response = JsonResponse(document, json_dumps_params={"indent": 2})
    filename = "".join(c if c.isalnum() or c in "-_" else "-" for c in workflow.name)
    response["Content-Disposition"] = f'attachment; filename="{filename}.json"'
    return response


def _inputs_shown(run: Run) -> list[tuple[str, str]]:
    """The run's inputs as the run form labelled them, for the reader of the run page."""
    try:
        fields = {field.name: field for field in graph_load(run.version.graph).inputs.fields}
    except GraphError:
        fields = {}
    shown = []
    for name, value in (run.inputs or {}).items():
        field = fields.get(name)
        label = (field.label if field and field.label else name.replace("_", " ")).capitalize()
        text = value if isinstance(value, str) else json_dumps(value, ensure_ascii=False)
        shown.append((label, text))
    return shown


def _elapsed(run: Run) -> str:
    if run.started_at is None:
        return "not started yet"
    seconds = ((run.finished_at or timezone.now()) - run.started_at).total_seconds()
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{int(seconds // 60)} min {int(seconds % 60)} s"


@json_endpoint
@login_required
@require_GET
def run_nodes_json(request: AuthedRequest, run_id: UUID) -> JsonResponse:
    """Each node's state, for canvases that follow a run (the run page and the builder)."""
    run, _ = get_run_for_user(request.user, run_id)
    return JsonResponse(
        {
            "status": run.status,
            "states": {node["id"]: node["state"] for node in run_node_states(run)},
        }
    )


@login_required
@require_GET
def run_detail(request: AuthedRequest, run_id: UUID) -> HttpResponse:
    run, membership = get_run_for_user(request.user, run_id)
    settings = run.version.graph.get("settings") or {}
    capacity_wait = run_capacity_wait(run)
    nodes = run_node_states(run, capacity_wait=capacity_wait)
    return render(
        request,
        "workflows/run_detail.html",
        {
            "run": run,
            "nodes": nodes,
            "graph": run.version.graph,
            "states": {node["id"]: node["state"] for node in nodes},
            "catalog": builder_catalog(run.workspace_id, can_edit=False),
            "can_edit": membership.allows(Role.EDITOR),
            "is_terminal": run.status in TERMINAL_STATUSES,
            "token_budget": settings.get("token_budget"),
            "cost_budget": settings.get("cost_budget_usd"),
            "children": list(
                run.children.only("id", "status", "workflow__name").select_related("workflow")
            ),
            "forks": list(run.forks.only("id", "status", "fork_step_key", "created_at")[:20]),
            "decisions": run_decisions(run),
            "steps": run_steps_shown(
                run, can_fork=membership.allows(Role.EDITOR) and run.parent_id is None
            ),
            "elapsed": _elapsed(run),
            "inputs_shown": _inputs_shown(run),
            "capacity_wait": capacity_wait,
            **_unpriced(run),
        },
    )


def _unpriced(run: Run) -> dict[str, Any]:
    """How many of the run's calls have no known price, and where to set the first one's."""
    # Its sub-runs' calls are in its totals, so their unknown prices are in its cost too.
    unpriced = LedgerEntry.objects.filter(
        run_id__in=list(run_roots_of_descendants([run.pk])),
        price_source=LedgerEntry.PriceSource.UNKNOWN,
    ).order_by()
    count = unpriced.count()
    first = unpriced.values("provider_id", "model").first() if count else None
    where = reverse("provider_list")
    if first is not None and first["provider_id"] is not None:
        query = urlencode({"model": first["model"]})
        where = f"{reverse('provider_detail', args=[first['provider_id']])}?{query}#prices"
    # Remote A2A agents' tasks have no price unless the remote agent reported its usage.
    # Those still in flight have no price yet either.
    runs = list(run_roots_of_descendants([run.pk]))
    remote = RunEvent.objects.filter(run_id__in=runs, kind="remote_call", data__usage=None).count()
    remote += Step.objects.filter(
        run_id__in=runs,
        node_type="remote_agent",
        key__contains="/call-",
        status=Step.Status.RUNNING,
    ).count()
    return {"unpriced_calls": count, "unpriced_where": where, "remote_unpriced": remote}


@login_required
@require_POST
def run_cancel(request: AuthedRequest, run_id: UUID) -> HttpResponse:
    run, _ = get_run_for_user(request.user, run_id, role=Role.EDITOR)
    run_services.run_cancel(run=run, user=request.user)
    messages.info(request, "Cancelling: the run stops within a second or two.")
    return redirect("run_detail", run_id=run.pk)


@login_required
@require_http_methods(["POST"])
def run_answer(request: AuthedRequest, run_id: UUID) -> HttpResponse:
    run, _ = get_run_for_user(request.user, run_id, role=Role.EDITOR)
    key = request.POST.get("step_key", "")
    decision = request.POST.get("decision")
    answer: Any
    if decision in ("approved", "rejected"):
        answer = {"approved": decision == "approved", "comment": request.POST.get("comment", "")}
    else:
        answer = request.POST.get("answer", "")
        if not str(answer).strip():
            messages.error(request, "Write an answer first.")
            return redirect("run_detail", run_id=run.pk)
    try:
        run_services.run_answer(run=run, step_key=key, answer=answer, user=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    return redirect("run_detail", run_id=run.pk)


@login_required
@require_POST
def run_retry(request: AuthedRequest, run_id: UUID) -> HttpResponse:
    run, _ = get_run_for_user(request.user, run_id, role=Role.EDITOR)
    try:
        run_services.run_retry(run=run, user=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.info(request, "Retrying from the failed step; finished steps are kept.")
    return redirect("run_detail", run_id=run.pk)


@login_required
@require_POST
def run_rerun(request: AuthedRequest, run_id: UUID) -> HttpResponse:
    run, _ = get_run_for_user(request.user, run_id, role=Role.EDITOR)
    try:
        again = run_services.run_again(run=run, user=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("run_detail", run_id=run.pk)
    return redirect("run_detail", run_id=again.pk)


@login_required
@require_GET
def workflow_playground(request: AuthedRequest, workflow_id: UUID) -> HttpResponse:
    """Chat with the whole workflow as a team; each message starts a run, watched live here."""
    workflow, _ = get_workflow_for_user(request.user, workflow_id, role=Role.EDITOR)
    latest = run_services.workflow_latest_version(workflow)
    field = chat_input_field(graph_load(latest.graph).inputs) if latest else None
    return render(
        request,
        "workflows/workflow_playground.html",
        {"workflow": workflow, "latest": latest, "chat_field": field},
    )


@json_endpoint
@login_required
@require_POST
def workflow_playground_send(request: AuthedRequest, workflow_id: UUID) -> HttpResponse:
    """`{"messages": [...]}` starts the turn's run; the answer is the turn, ready to follow."""
    workflow, _ = get_workflow_for_user(request.user, workflow_id, role=Role.EDITOR)
    try:
        payload = json_body(request, empty={})
    except JsonInputError as error:
        return JsonResponse({"error": str(error)}, status=400)
    messages_ = payload.get("messages")
    try:
        run = team_chat_start(workflow=workflow, user=request.user, messages=messages_)
    except ValidationError as error:
        if hasattr(error, "error_dict"):
            problems = "; ".join(f"{k}: {' '.join(v)}" for k, v in error.message_dict.items())
            text = f"The workflow's inputs refused the message ({problems})."
        else:
            text = " ".join(error.messages)
        return JsonResponse({"error": text}, status=400)
    assert isinstance(messages_, list)  # team_chat_start checked the conversation
    return render(
        request,
        "workflows/_team_turn.html",
        {"run": run, "message": messages_[-1]["content"]},
        status=201,
    )
