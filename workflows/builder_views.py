"""The visual builder: its page and the endpoints its canvas island and side panel call.

The island owns the graph while someone edits; the server stays the authority. Every change is
autosaved as the draft (valid or not) and validated; property forms are Django forms rendered
here; publishing validates again and refuses an invalid graph.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import retarget, trigger_client_event
from pydantic import ValidationError as PydanticValidationError

from a2a_site.accounts.decorators import workspace_required
from a2a_site.accounts.models import Role
from a2a_site.forms import form_add_errors
from a2a_site.http import AuthedRequest
from a2a_site.json_input import JsonInputError, json_parse
from a2a_site.refusals import json_endpoint, refusal
from agents.forms import AgentQuickForm
from agents.remote.card import RemoteCardError, remote_base_url, remote_card_fetch
from agents.selectors import providers_of, remote_agent_choices
from agents.services.agents import agent_create
from agents.tools_catalog import tool_choices
from workflows.forms import (
    InputRowForm,
    InputRowFormSet,
    RunSettingsForm,
    VariableRowForm,
    VariableRowFormSet,
    WorkflowCreateForm,
)
from workflows.graph import NODE_TYPES, GraphError, graph_dump, graph_load
from workflows.graph.diff import diff_drawing, graph_diff
from workflows.graph.interface import InterfaceError, interface_apply
from workflows.graph.schema import GraphSettings
from workflows.models import Workflow
from workflows.node_forms import node_form_class
from workflows.selectors import agent_summaries, builder_catalog, get_workflow_for_user
from workflows.services.autogen import autogen_graph_import, is_autogen_team
from workflows.services.transfer import EXPORT_FORMAT, document_graph_import
from workflows.services.workflows import (
    BLANK_GRAPH,
    DraftConflict,
    workflow_create,
    workflow_publish,
    workflow_save_draft,
    workflow_validate,
)
from workflows.templates_catalog import TEMPLATES, template_graph, template_provider

REMOTE_CARD_CACHE_S = 300

MAX_IMPORT_BYTES = 2_000_000


def _token(moment: datetime) -> str:
    return moment.isoformat()


@workspace_required(Role.EDITOR)
@require_http_methods(["GET", "POST"])
def workflow_new(request: AuthedRequest) -> HttpResponse:
    assert request.membership is not None
    form = WorkflowCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            workflow = workflow_create(
                workspace=request.membership.workspace,
                user=request.user,
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
                graph=BLANK_GRAPH,
            )
        except ValidationError as error:
            form_add_errors(form, error)
        else:
            return redirect("workflow_builder", workflow_id=workflow.pk)
    return render(request, "workflows/workflow_new.html", {"form": form})


def _versions(workflow: Workflow) -> list[Any]:
    return list(workflow.versions.select_related("created_by")[:50])


@login_required
@require_GET
def workflow_builder(request: AuthedRequest, workflow_id: UUID) -> HttpResponse:
    workflow, membership = get_workflow_for_user(request.user, workflow_id)
    can_edit = membership.allows(Role.EDITOR)
    report = workflow_validate(workspace_id=workflow.workspace_id, graph=workflow.draft)
    return render(
        request,
        "workflows/builder.html",
        {
            "workflow": workflow,
            "graph": workflow.draft,
            "catalog": builder_catalog(workflow.workspace_id, can_edit=can_edit),
            "report": report,
            "labels": _labels(workflow.draft),
            "issues": _issues(report),
            "versions": _versions(workflow),
            "can_edit": can_edit,
            "draft_token": _token(workflow.draft_updated_at),
            "templates": TEMPLATES.values(),
        },
    )


def _issues(report: Any) -> dict[str, Any]:
    """The report as the island takes it: issues by node and by edge."""
    data = report.as_json()
    by_edge: dict[str, list[dict[str, Any]]] = {}
    for level, items in (("error", report.errors), ("warning", report.warnings)):
        for issue in items:
            if issue.edge_id:
                by_edge.setdefault(issue.edge_id, []).append(
                    {"level": level, "code": issue.code, "message": issue.message}
                )
    return {"by_node": data["by_node"], "by_edge": by_edge, "ok": data["ok"]}


def _posted_graph(request: AuthedRequest) -> dict[str, Any]:
    try:
        graph: dict[str, Any] = json_parse(
            request.POST.get("graph", ""), what="The graph", expect=dict
        )
    except JsonInputError as error:
        raise ValidationError(str(error)) from None
    return graph


def _labels(graph: Any) -> dict[str, str]:
    """Node id → label, so the checklist can name a node as the canvas shows it."""
    nodes = graph.get("nodes") if isinstance(graph, dict) else None
    return {
        node["id"]: str(node["label"])
        for node in (nodes if isinstance(nodes, list) else [])
        if isinstance(node, dict) and isinstance(node.get("id"), str) and node.get("label")
    }


def _checklist(
    request: AuthedRequest, workflow: Workflow, report: Any, *, status: int = 200, **extra: Any
) -> HttpResponse:
    response = render(
        request,
        "workflows/_checklist.html",
        {"workflow": workflow, "report": report, "labels": _labels(workflow.draft), **extra},
        status=status,
    )
    return trigger_client_event(response, "wf:issues", _issues(report))


def _expected(request: AuthedRequest) -> datetime | None:
    """The draft the editor last saw; "Keep mine" after a conflict sends `force` instead."""
    if request.POST.get("force"):
        return None
    base = request.POST.get("base", "")
    try:
        moment = parse_datetime(base)
    except ValueError:  # well formed, but no such moment (month 99)
        moment = None
    if base and (moment is None or moment.tzinfo is None):
        raise ValidationError(
            "The builder sent a draft time that is not a date-time with its time zone; "
            "reload the page."
        )
    return moment


def _conflict(conflict: DraftConflict) -> HttpResponse:
    # Not swapped (see base.html's htmx config): the page shows its conflict banner.
    response = HttpResponse("The draft was changed elsewhere.", status=409)
    return trigger_client_event(response, "wf:conflict", {"current": _token(conflict.current)})


@login_required
@require_POST
def workflow_draft_save(request: AuthedRequest, workflow_id: UUID) -> HttpResponse:
    """Autosave: stores the island's graph as the draft and answers with the checklist."""
    workflow, _ = get_workflow_for_user(request.user, workflow_id, role=Role.EDITOR)
    try:
        graph = _posted_graph(request)
        expected = _expected(request)
    except ValidationError as error:
        return refusal(request, " ".join(error.messages))
    try:
        report = workflow_save_draft(workflow=workflow, graph=graph, expected=expected)
    except DraftConflict as conflict:
        return _conflict(conflict)
    response = _checklist(request, workflow, report)
    return trigger_client_event(response, "wf:saved", {"token": _token(workflow.draft_updated_at)})


@login_required
@require_POST
def workflow_publish_view(request: AuthedRequest, workflow_id: UUID) -> HttpResponse:
    """Publishes the draft; from the builder the graph being edited is saved first."""
    workflow, _ = get_workflow_for_user(request.user, workflow_id, role=Role.EDITOR)
    note = request.POST.get("note", "")
    if "graph" in request.POST:
        try:
            workflow_save_draft(
                workflow=workflow, graph=_posted_graph(request), expected=_expected(request)
            )
        except ValidationError as error:
            return refusal(request, " ".join(error.messages))
        except DraftConflict as conflict:
            return _conflict(conflict)
    try:
        version = workflow_publish(workflow=workflow, user=request.user, note=note)
    except ValidationError as error:
        if not request.htmx:
            messages.error(request, "Not published: " + " ".join(error.messages))
            return redirect("workflow_builder", workflow_id=workflow.pk)
        report = workflow_validate(workspace_id=workflow.workspace_id, graph=workflow.draft)
        response = _checklist(request, workflow, report, status=422, publish_refused=True)
        return trigger_client_event(retarget(response, "#checklist"), "wf:publish-refused", {})
    if not request.htmx:
        messages.success(request, f"Published version {version.number}.")
        return redirect("workflow_detail", workflow_id=workflow.pk)
    response = render(
        request,
        "workflows/_builder_versions.html",
        {
            "workflow": workflow,
            "versions": _versions(workflow),
            "published": version,
            "can_edit": True,
        },
    )
    return trigger_client_event(
        response,
        "wf:published",
        {"number": version.number, "token": _token(workflow.draft_updated_at)},
    )


@json_endpoint
@login_required
@require_GET
def workflow_version_json(request: AuthedRequest, workflow_id: UUID, number: int) -> JsonResponse:
    workflow, _ = get_workflow_for_user(request.user, workflow_id)
    version = workflow.versions.filter(number=number).first()
    if version is None:
        raise Http404("No such version.")
    return JsonResponse({"number": version.number, "note": version.note, "graph": version.graph})


def _normalized(graph: Any) -> Any:
    """Published graphs are stored with every default filled in; a draft is stored as the
    builder sent it. Compared raw, defaults would show as changes nobody made."""
    try:
        return graph_dump(graph_load(graph))
    except GraphError:
        return graph


def _graph_of(workflow: Workflow, which: str) -> tuple[Any, str]:
    if which == "draft":
        return _normalized(workflow.draft), "the draft"
    # ASCII digits only: "²" is a digit to str.isdigit(), and no number to int().
    if not re.fullmatch(r"[0-9]{1,9}", which):
        raise Http404("No such version.")
    version = workflow.versions.filter(number=int(which)).first()
    if version is None:
        raise Http404("No such version.")
    return _normalized(version.graph), f"version {version.number}"


@login_required
@require_GET
def workflow_diff(request: AuthedRequest, workflow_id: UUID) -> HttpResponse:
    workflow, _ = get_workflow_for_user(request.user, workflow_id)
    versions = _versions(workflow)
    if not versions:
        messages.info(request, "Publish a version first; then you can compare versions.")
        return redirect("workflow_builder", workflow_id=workflow.pk)
    default_old = str(versions[1].number) if len(versions) > 1 else str(versions[0].number)
    old_key = request.GET.get("from") or default_old
    new_key = request.GET.get("to") or ("draft" if len(versions) == 1 else str(versions[0].number))
    old, old_name = _graph_of(workflow, old_key)
    new, new_name = _graph_of(workflow, new_key)
    diff = graph_diff(old, new)
    drawing = diff_drawing(old, new, diff)
    return render(
        request,
        "workflows/workflow_diff.html",
        {
            "workflow": workflow,
            "versions": versions,
            "old_key": old_key,
            "new_key": new_key,
            "old_name": old_name,
            "new_name": new_name,
            "diff": diff,
            "edges_added": [diff.describe_edge(key) for key in diff.edges_added],
            "edges_removed": [diff.describe_edge(key) for key in diff.edges_removed],
            "drawing": drawing.graph,
            "marks": {"nodes": drawing.node_marks, "edges": drawing.edge_marks},
            "catalog": builder_catalog(workflow.workspace_id, can_edit=False),
        },
    )


def _remote_card(node: dict[str, Any], data: Any) -> tuple[dict[str, Any] | None, str]:
    """The card of a remote agent step's URL (as posted, else as saved), or why there is none.
    A card read is kept a few minutes: the form is posted again at every keystroke."""
    config = node.get("config") if isinstance(node.get("config"), dict) else {}
    url = str((data.get("url") if data is not None else None) or (config or {}).get("url") or "")
    url = remote_base_url(url)
    if not url:
        return None, ""
    key = "remote-card:" + hashlib.sha256(url.encode()).hexdigest()
    card = cache.get(key)
    if card is None:
        try:
            card = remote_card_fetch(url).as_dict()
        except RemoteCardError as error:
            return None, str(error)
        cache.set(key, card, REMOTE_CARD_CACHE_S)
    return card, ""


def _node_form(
    workflow: Workflow, node: dict[str, Any], data: Any = None, card: dict[str, Any] | None = None
) -> Any:
    node_type = NODE_TYPES.get(str(node.get("type")))
    if node_type is None:
        return None
    workspace_id = workflow.workspace_id
    skills = [(skill["id"], skill["name"]) for skill in (card or {}).get("skills", [])]
    form_class = node_form_class(
        node_type,
        agents=[(agent["id"], agent["name"]) for agent in agent_summaries(workspace_id)],
        tools=tool_choices(),
        workflows=[
            (str(pk), name)
            for pk, name in Workflow.objects.filter(workspace_id=workspace_id)
            .exclude(pk=workflow.pk)
            .values_list("pk", "name")
        ],
        node=node,
        remote_agents=remote_agent_choices(workspace_id)
        if node_type.type == "remote_agent"
        else [],
        skills=skills,
    )
    return form_class(data, node=node)


def _posted_node(request: AuthedRequest) -> dict[str, Any]:
    """The node the island sent; JsonInputError says what is wrong with it."""
    raw = request.POST.get("node", "")
    if not raw.strip():
        raise JsonInputError("Select a node to edit its properties.")
    node: dict[str, Any] = json_parse(raw, what="The node", expect=dict)
    if not isinstance(node.get("id"), str):
        raise JsonInputError("The node has no id; select it again.")
    return node


@login_required
@require_POST
def workflow_node_form(request: AuthedRequest, workflow_id: UUID) -> HttpResponse:
    """The property form of the node the island selected (its JSON is posted: it may be unsaved)."""
    workflow, membership = get_workflow_for_user(request.user, workflow_id)
    try:
        node = _posted_node(request)
    except JsonInputError as error:
        return refusal(request, str(error))
    apply = request.POST.get("apply") == "1"
    if apply and not membership.allows(Role.EDITOR):
        return HttpResponse("Viewers cannot change workflows.", status=403)
    card, card_error = None, ""
    if node.get("type") == "remote_agent":
        card, card_error = _remote_card(node, request.POST if apply else None)
    form = _node_form(workflow, node, request.POST if apply else None, card)
    context = {
        "card": card,
        "card_error": card_error,
        "workflow": workflow,
        "node": node,
        "node_type": NODE_TYPES.get(str(node.get("type"))),
        "form": form,
        "node_json": json.dumps(node),
        "can_edit": membership.allows(Role.EDITOR),
    }
    if not apply or form is None:
        return render(request, "workflows/_node_form.html", context)
    config = form.config()
    if config is None:
        return render(request, "workflows/_node_form.html", context, status=422)
    update = form.node_update(config)
    applied = {**node, "label": update["label"], "config": config}
    # Shown as it now is on the canvas (the label may have taken the agent's name).
    context.update(
        node_json=json.dumps(applied), form=_node_form(workflow, applied, card=card), applied=True
    )
    response = render(request, "workflows/_node_form.html", context)
    return trigger_client_event(response, "wf:node-updated", update)


@json_endpoint
@login_required
@require_POST
def workflow_import_graph(request: AuthedRequest, workflow_id: UUID) -> JsonResponse:
    """A file dropped into the builder: an A2A Studio export or an AutoGen Studio team.

    Its agents are created in this workspace and its graph is returned for the island to load
    into the draft (as one undoable step). What could not be carried over is listed.
    """
    workflow, _ = get_workflow_for_user(request.user, workflow_id, role=Role.EDITOR)
    upload = request.FILES.get("file")
    if upload is None:
        return JsonResponse({"error": "Choose a JSON file to import."}, status=400)
    if upload.size is not None and upload.size > MAX_IMPORT_BYTES:
        return JsonResponse({"error": "The file is larger than 2 MB."}, status=400)
    try:
        document = json_parse(upload.read(), what="The file")
    except JsonInputError as error:
        return JsonResponse({"error": str(error)}, status=400)
    workspace = workflow.workspace
    report: list[str] = []
    try:
        if is_autogen_team(document):
            graph, created, warnings, report = autogen_graph_import(
                workspace=workspace, user=request.user, document=document
            )
        elif isinstance(document, dict) and document.get("format") == EXPORT_FORMAT:
            graph, created, warnings = document_graph_import(
                workspace=workspace, user=request.user, document=document
            )
        elif isinstance(document, dict) and "nodes" in document:
            graph, created, warnings = document, [], []
        else:
            return JsonResponse(
                {
                    "error": "This file is neither an A2A Studio workflow export, a workflow "
                    "graph, nor an AutoGen Studio team."
                },
                status=400,
            )
    except ValidationError as error:
        return JsonResponse({"error": " ".join(error.messages)}, status=400)
    return JsonResponse(
        {
            "graph": graph,
            "agents": agent_summaries(workspace.pk, agent_ids=[agent.pk for agent in created]),
            "warnings": warnings,
            "report": report,
        }
    )


@json_endpoint
@login_required
@require_POST
def workflow_template_graph(request: AuthedRequest, workflow_id: UUID) -> JsonResponse:
    """A template's graph for the draft, with its agents created in the workspace."""
    workflow, _ = get_workflow_for_user(request.user, workflow_id, role=Role.EDITOR)
    key = request.POST.get("template", "")
    if key not in TEMPLATES:
        return JsonResponse({"error": "Choose one of the templates."}, status=400)
    provider, second = template_provider(workflow.workspace)
    if provider is None:
        return JsonResponse(
            {
                "error": "Templates need a model provider for their agents; add one first — "
                "the offline demo model needs no key.",
                "url": reverse("provider_list"),
            },
            status=400,
        )
    try:
        graph = template_graph(
            key=key,
            workspace=workflow.workspace,
            user=request.user,
            provider=provider,
            second_provider=second,
        )
    except ValidationError as error:
        return JsonResponse({"error": " ".join(error.messages)}, status=400)
    return JsonResponse({"graph": graph, "agents": agent_summaries(workflow.workspace_id)})


@login_required
@require_http_methods(["GET", "POST"])
def workflow_agent_new(request: AuthedRequest, workflow_id: UUID) -> HttpResponse:
    """Creates an agent from the builder's palette without leaving the canvas."""
    workflow, _ = get_workflow_for_user(request.user, workflow_id, role=Role.EDITOR)
    providers = list(providers_of(workflow.workspace_id))
    form = AgentQuickForm(request.POST or None, providers=providers)
    if request.method == "POST" and form.is_valid():
        try:
            agent = agent_create(
                workspace=workflow.workspace,
                user=request.user,
                name=form.cleaned_data["name"],
                description="",
                config=form.config_data(),
                known_tools=[name for name, _ in tool_choices()],
                note="Created in the builder",
            )
        except ValidationError as error:
            form_add_errors(form, error)
        else:
            summary = agent_summaries(workflow.workspace_id, agent_ids=[agent.pk])[0]
            response = render(
                request, "workflows/_agent_new.html", {"workflow": workflow, "created": summary}
            )
            return trigger_client_event(response, "wf:agent-created", {"agent": summary})
    status = 422 if request.method == "POST" else 200
    return render(
        request,
        "workflows/_agent_new.html",
        {"workflow": workflow, "form": form, "has_providers": bool(providers)},
        status=status,
    )


def _interface_formsets(graph: Any, data: Any = None) -> tuple[Any, Any]:
    graph = graph if isinstance(graph, dict) else {}
    schema = graph.get("inputs") if isinstance(graph.get("inputs"), dict) else {}
    fields = [item for item in schema.get("fields") or [] if isinstance(item, dict)]
    variables = [item for item in graph.get("variables") or [] if isinstance(item, dict)]
    inputs = InputRowFormSet(
        data, prefix="input", initial=[InputRowForm.initial_of(item) for item in fields]
    )
    declared = VariableRowFormSet(
        data,
        prefix="variable",
        initial=[VariableRowForm.initial_of(item) for item in variables],
    )
    return inputs, declared


def _kept_rows(formset: Any) -> list[Any]:
    return [
        form
        for form in formset.forms
        if form.is_valid() and not form.is_blank() and not form.cleaned_data.get("DELETE")
    ]


@login_required
@require_POST
def workflow_interface_form(request: AuthedRequest, workflow_id: UUID) -> HttpResponse:
    """The editor of the inputs and variables of the graph the island holds (posted: it may be
    unsaved). Applying checks the rows and sends the canvas the new interface as one change."""
    workflow, membership = get_workflow_for_user(request.user, workflow_id)
    try:
        graph = _posted_graph(request)
    except ValidationError as error:
        return HttpResponse(" ".join(error.messages), status=400)
    apply = request.POST.get("apply") == "1"
    if apply and not membership.allows(Role.EDITOR):
        return HttpResponse("Viewers cannot change workflows.", status=403)
    inputs, variables = _interface_formsets(graph, request.POST if apply else None)
    context = {"workflow": workflow, "inputs": inputs, "variables": variables}
    context["can_edit"] = membership.allows(Role.EDITOR)
    if not apply:
        return render(request, "workflows/_interface_form.html", context)
    if not (inputs.is_valid() and variables.is_valid()):
        return render(request, "workflows/_interface_form.html", context, status=422)
    input_rows, variable_rows = _kept_rows(inputs), _kept_rows(variables)
    renames = {
        form.cleaned_data["original"]: form.cleaned_data["name"].strip()
        for form in input_rows
        if form.cleaned_data["original"]
    }
    try:
        interface = interface_apply(
            graph,
            inputs=[form.row() for form in input_rows],
            variables=[form.row() for form in variable_rows],
            renames=renames,
        )
    except InterfaceError as error:
        rows = {"input": input_rows, "variable": variable_rows}
        for (kind, index), fields in error.errors.items():
            form = rows[kind][index]
            for name, message in fields.items():
                form.add_error(name if name in form.fields else None, message)
        return render(request, "workflows/_interface_form.html", context, status=422)
    applied = {
        **graph,
        "inputs": interface.inputs,
        "variables": interface.variables,
        "nodes": [
            {**node, "config": interface.start_configs[node["id"]]}
            if isinstance(node, dict) and node.get("id") in interface.start_configs
            else node
            for node in graph.get("nodes") or []
        ],
    }
    inputs, variables = _interface_formsets(applied)
    context.update(inputs=inputs, variables=variables, applied=True)
    response = render(request, "workflows/_interface_form.html", context)
    return trigger_client_event(
        response,
        "wf:interface-updated",
        {
            "inputs": interface.inputs,
            "variables": interface.variables,
            "configs": interface.start_configs,
        },
    )


@login_required
@require_POST
def workflow_settings_form(request: AuthedRequest, workflow_id: UUID) -> HttpResponse:
    """The editor of the run settings (priority, limits, budgets) of the graph the island holds
    (posted: it may be unsaved). Applying hands the canvas the graph with them, as one change."""
    workflow, membership = get_workflow_for_user(request.user, workflow_id)
    try:
        graph = _posted_graph(request)
    except ValidationError as error:
        return HttpResponse(" ".join(error.messages), status=400)
    apply = request.POST.get("apply") == "1"
    if apply and not membership.allows(Role.EDITOR):
        return HttpResponse("Viewers cannot change workflows.", status=403)
    initial = RunSettingsForm.initial_of(graph.get("settings"))
    form = RunSettingsForm(request.POST if apply else None, initial=initial)
    context = {"workflow": workflow, "form": form, "can_edit": membership.allows(Role.EDITOR)}
    if not apply:
        return render(request, "workflows/_settings_form.html", context)
    if not form.is_valid():
        return render(request, "workflows/_settings_form.html", context, status=422)
    posted = graph.get("settings")
    settings: dict[str, Any] = posted if isinstance(posted, dict) else {}
    try:
        checked = GraphSettings.model_validate({**settings, **form.settings()})
    except PydanticValidationError as error:
        for problem in error.errors():
            field = str(problem["loc"][0]) if problem["loc"] else None
            form.add_error(field if field in form.fields else None, problem["msg"])
        return render(request, "workflows/_settings_form.html", context, status=422)
    applied = {**graph, "settings": checked.model_dump(mode="json")}
    context["applied"] = True
    response = render(request, "workflows/_settings_form.html", context)
    return trigger_client_event(response, "wf:set-graph", {"graph": applied})
