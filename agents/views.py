"""Pages for providers, Ollama nodes and agents: look up, authorize, call a service, render."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from a2a_site.accounts.decorators import workspace_required
from a2a_site.accounts.models import Role
from a2a_site.forms import form_add_errors
from a2a_site.http import AuthedRequest
from a2a_site.refusals import refusal
from agents.connection import ConnectionCheck
from agents.forms import AgentForm, NodeForm, ProviderForm, ToolHostPolicyForm
from agents.ledger import breaker_states
from agents.llm.kinds import KINDS, ProviderKind, provider_kind
from agents.models import Agent, OllamaNode, Provider, ToolHostPolicy
from agents.prices import model_price_rows
from agents.selectors import (
    agent_latest_version,
    agents_of,
    get_agent_for_user,
    get_provider_for_user,
    latest_versions,
    providers_of,
    tool_hosts_for,
)
from agents.services import agents as agent_services
from agents.services import nodes as node_services
from agents.services import providers as provider_services
from agents.services import pull as pull_services
from agents.services import tool_hosts as tool_host_services
from agents.tools_catalog import tool_choices

# --- Providers ------------------------------------------------------------------------------------


@workspace_required()
@require_GET
def provider_list(request: AuthedRequest) -> HttpResponse:
    assert request.membership is not None
    providers = list(providers_of(request.membership.workspace_id))
    return render(
        request,
        "agents/provider_list.html",
        {"providers": providers, "can_edit": request.membership.allows(Role.EDITOR)},
    )


@workspace_required(Role.EDITOR)
@require_http_methods(["GET", "POST"])
def provider_create(request: AuthedRequest) -> HttpResponse:
    assert request.membership is not None
    kind_value = request.GET.get("kind", "")
    if kind_value not in KINDS:
        return render(request, "agents/provider_kinds.html", {"kinds": KINDS.values()})
    kind = provider_kind(kind_value)
    form = ProviderForm(request.POST or None, kind=kind, initial={"name": kind.label})
    if request.method == "POST" and form.is_valid():
        try:
            provider = provider_services.provider_create(
                workspace=request.membership.workspace, user=request.user, data=form.to_input()
            )
        except ValidationError as error:
            form_add_errors(form, error)
        else:
            messages.success(
                request,
                f"Provider “{provider.name}” saved. Test its connection, then create an agent "
                "that uses it.",
            )
            return redirect("provider_detail", provider_id=provider.pk)
    return render(
        request,
        "agents/provider_form.html",
        {"form": form, "kind": kind, "loopback_allowed": settings.OUTBOUND_ALLOW_LOOPBACK},
    )


@login_required
@require_GET
def provider_detail(request: AuthedRequest, provider_id: UUID) -> HttpResponse:
    provider, membership = get_provider_for_user(request.user, provider_id)
    nodes = list(provider.nodes.all())
    model_holders: dict[str, list[str]] = {}
    for node in nodes:
        for model in node.available_models:
            model_holders.setdefault(model, []).append(node.name)
    node_names = {str(node.pk): node.name for node in nodes}
    breakers = []
    for deployment_id, state in sorted(breaker_states(provider.pk).items()):
        parts = deployment_id.split(":")
        where = f"{node_names.get(parts[1], 'removed node')} / " if len(parts) == 3 else ""
        breakers.append((f"{where}{parts[-1]}", state))
    return render(
        request,
        "agents/provider_detail.html",
        {
            "provider": provider,
            "kind": provider.kind_info,
            "nodes": nodes,
            "model_holders": sorted(model_holders.items()),
            "node_form": NodeForm(),
            "can_edit": membership.allows(Role.EDITOR),
            "effective_base_url": provider_services.provider_effective_base_url(provider),
            "breakers": breakers,
            "loopback_allowed": settings.OUTBOUND_ALLOW_LOOPBACK,
            "model_prices": model_price_rows(provider),
            "price_model": request.GET.get("model", "")[:200],
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def provider_edit(request: AuthedRequest, provider_id: UUID) -> HttpResponse:
    provider, _ = get_provider_for_user(request.user, provider_id, role=Role.EDITOR)
    kind = provider.kind_info
    form = ProviderForm(
        request.POST or None,
        kind=kind,
        provider=provider,
        initial=ProviderForm.initial_for(provider),
    )
    if request.method == "POST" and form.is_valid():
        try:
            provider_services.provider_update(provider=provider, data=form.to_input())
        except ValidationError as error:
            provider.refresh_from_db()
            form_add_errors(form, error)
        else:
            messages.success(request, "Provider saved.")
            return redirect("provider_detail", provider_id=provider.pk)
    return render(
        request,
        "agents/provider_form.html",
        {
            "form": form,
            "kind": kind,
            "provider": provider,
            "loopback_allowed": settings.OUTBOUND_ALLOW_LOOPBACK,
        },
    )


@login_required
@require_POST
def provider_delete(request: AuthedRequest, provider_id: UUID) -> HttpResponse:
    provider, _ = get_provider_for_user(request.user, provider_id, role=Role.EDITOR)
    try:
        provider_services.provider_delete(provider=provider)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("provider_detail", provider_id=provider.pk)
    messages.success(request, f"Provider “{provider.name}” deleted.")
    return redirect("provider_list")


def _provider_tested(
    request: AuthedRequest, kind: ProviderKind, provider: Provider | None
) -> HttpResponse:
    form = ProviderForm(request.POST, kind=kind, provider=provider)
    check = None
    if form.is_valid():
        check = provider_services.provider_settings_check(data=form.to_input(), provider=provider)
    if request.htmx:
        if check is None:
            problems = "; ".join(
                f"{form.fields[name].label if name in form.fields else name}: {message}"
                for name, messages_ in form.errors.items()
                for message in messages_
            )
            check = ConnectionCheck(False, f"Correct the form first — {problems}")
        return render(request, "agents/_provider_test.html", {"check": check})
    return render(
        request,
        "agents/provider_form.html",
        {"form": form, "kind": kind, "provider": provider, "check": check},
    )


@workspace_required(Role.EDITOR)
@require_POST
def provider_test_new(request: AuthedRequest) -> HttpResponse:
    """“Test connection” before the first save: the settings as entered; nothing is stored."""
    kind_value = request.GET.get("kind", "")
    if kind_value not in KINDS:
        raise Http404("Unknown provider kind.")
    return _provider_tested(request, provider_kind(kind_value), None)


@login_required
@require_POST
def provider_test(request: AuthedRequest, provider_id: UUID) -> HttpResponse:
    """“Test connection” on the edit form: the changed settings, with the stored key when none
    is entered (towards its own URL only); nothing is stored."""
    provider, _ = get_provider_for_user(request.user, provider_id, role=Role.EDITOR)
    return _provider_tested(request, provider.kind_info, provider)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


@login_required
@require_POST
def provider_check(request: AuthedRequest, provider_id: UUID) -> HttpResponse:
    provider, membership = get_provider_for_user(request.user, provider_id, role=Role.EDITOR)
    result = provider_services.provider_check(provider=provider)
    if request.htmx:
        return render(
            request,
            "agents/_provider_check.html",
            {"provider": provider, "can_edit": membership.allows(Role.EDITOR)},
        )
    if result.ok:
        listed = f" {_count(len(result.models), 'model')} available." if result.models else ""
        messages.success(request, result.message + listed)
    else:
        messages.error(request, result.message)
    return redirect("provider_detail", provider_id=provider.pk)


# --- Tool hosts -----------------------------------------------------------------------------------


@workspace_required(Role.EDITOR)
@require_http_methods(["GET", "POST"])
def tool_host_policy_edit(request: AuthedRequest) -> HttpResponse:
    assert request.membership is not None
    workspace = request.membership.workspace
    policy = ToolHostPolicy.objects.filter(workspace=workspace).first()
    initial = {
        "public_hosts": policy.public_hosts if policy else True,
        "hosts": "\n".join(policy.hosts) if policy else "",
    }
    form = ToolHostPolicyForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        tool_host_services.tool_host_policy_update(
            workspace=workspace,
            user=request.user,
            public_hosts=form.cleaned_data["public_hosts"],
            hosts=form.cleaned_data["hosts"],
        )
        messages.success(request, "Tool hosts saved; runs started from now on use them.")
        return redirect("tool_host_policy")
    return render(
        request,
        "agents/tool_hosts.html",
        {
            "form": form,
            "admin_hosts": list(settings.TOOL_ALLOWED_HOSTS),
            "effective": tool_hosts_for(workspace.pk),
            "policy": policy,
        },
    )


# --- Ollama nodes ---------------------------------------------------------------------------------


@login_required
@require_POST
def node_create(request: AuthedRequest, provider_id: UUID) -> HttpResponse:
    provider, _ = get_provider_for_user(request.user, provider_id, role=Role.EDITOR)
    if provider.kind != "ollama":
        raise Http404("Only Ollama providers have nodes.")
    form = NodeForm(request.POST, instance=OllamaNode(provider=provider))
    if form.is_valid():
        try:
            node_services.node_save(node=form.instance, labels=form.cleaned_data["labels_text"])
        except ValidationError as error:
            form_add_errors(form, error)
        else:
            messages.success(request, f"Node “{form.instance.name}” added; probing it now.")
            node_services.provider_nodes_probe(provider)
            return redirect("provider_detail", provider_id=provider.pk)
    return render(
        request,
        "agents/provider_detail.html",
        {
            "provider": provider,
            "kind": provider.kind_info,
            "nodes": list(provider.nodes.all()),
            "node_form": form,
            "can_edit": True,
            "loopback_allowed": settings.OUTBOUND_ALLOW_LOOPBACK,
        },
        status=400,
    )


@login_required
@require_POST
def node_delete(request: AuthedRequest, provider_id: UUID, node_id: int) -> HttpResponse:
    provider, _ = get_provider_for_user(request.user, provider_id, role=Role.EDITOR)
    node = get_object_or_404(OllamaNode, pk=node_id, provider=provider)
    node_services.node_delete(node=node)
    messages.success(request, f"Node “{node.name}” removed.")
    return redirect("provider_detail", provider_id=provider.pk)


@login_required
@require_POST
def node_memory(request: AuthedRequest, provider_id: UUID, node_id: int) -> HttpResponse:
    provider, _ = get_provider_for_user(request.user, provider_id, role=Role.EDITOR)
    node = get_object_or_404(OllamaNode, pk=node_id, provider=provider)
    try:
        node_services.node_memory_set(node=node, memory_gb=request.POST.get("memory_gb", ""))
    except ValidationError as error:
        return refusal(request, " ".join(error.messages))
    if node.memory_gb is None:
        messages.info(request, f"The memory of “{node.name}” is unknown again.")
    else:
        messages.success(
            request, f"“{node.name}” gives models {node.memory_gb:g} GB; the planner counts it."
        )
    return redirect("provider_detail", provider_id=provider.pk)


@login_required
@require_POST
def node_pull(request: AuthedRequest, provider_id: UUID, node_id: int) -> HttpResponse:
    provider, _ = get_provider_for_user(request.user, provider_id, role=Role.EDITOR)
    node = get_object_or_404(OllamaNode, pk=node_id, provider=provider)
    model = request.POST.get("model", "")
    try:
        progress = pull_services.node_pull_start(node=node, model=model)
    except ValidationError as error:
        return render(
            request,
            "agents/_pull.html",
            {"provider": provider, "node": node, "error": " ".join(error.messages)},
            status=400,
        )
    if not request.htmx:
        messages.info(request, f"Pulling {progress.model} onto {node.name}.")
        return redirect("provider_detail", provider_id=provider.pk)
    return render(
        request, "agents/_pull.html", {"provider": provider, "node": node, "progress": progress}
    )


@login_required
@require_GET
def node_pull_status(request: AuthedRequest, provider_id: UUID, node_id: int) -> HttpResponse:
    provider, _ = get_provider_for_user(request.user, provider_id)
    node = get_object_or_404(OllamaNode, pk=node_id, provider=provider)
    progress = pull_services.pull_progress(node.pk, request.GET.get("model", ""))
    return render(
        request, "agents/_pull.html", {"provider": provider, "node": node, "progress": progress}
    )


# --- Agents ---------------------------------------------------------------------------------------


@workspace_required()
@require_GET
def agent_list(request: AuthedRequest) -> HttpResponse:
    assert request.membership is not None
    workspace_id = request.membership.workspace_id
    search = request.GET.get("q", "")
    agents = list(agents_of(workspace_id, search=search))
    versions = latest_versions([agent.pk for agent in agents])
    providers = {str(p.pk): p for p in providers_of(workspace_id)}
    rows = []
    for agent in agents:
        version = versions.get(agent.pk)
        model = (version.config.get("model") or {}) if version else {}
        rows.append(
            {
                "agent": agent,
                "version": version,
                "model": model.get("model", ""),
                "provider": providers.get(model.get("provider_id", "")),
            }
        )
    context = {
        "rows": rows,
        "search": search,
        "has_agents": bool(rows)
        or bool(search)
        or Agent.objects.filter(workspace_id=workspace_id).exists(),
        "has_providers": bool(providers),
        "can_edit": request.membership.allows(Role.EDITOR),
    }
    template = "agents/_agent_rows.html" if request.htmx.target == "agent-rows" else None
    return render(request, template or "agents/agent_list.html", context)


def _agent_form(request: AuthedRequest, workspace_id: UUID, agent: Agent | None, **kw: Any):
    others = [a for a in agents_of(workspace_id) if agent is None or a.pk != agent.pk]
    return AgentForm(
        request.POST or None,
        providers=list(providers_of(workspace_id)),
        other_agents=others,
        tool_names=tool_choices(workspace_id),
        **kw,
    )


def _provider_models(workspace_id: UUID) -> dict[str, list[str]]:
    return {str(p.pk): list(p.models_available) for p in providers_of(workspace_id)}


@workspace_required(Role.EDITOR)
@require_http_methods(["GET", "POST"])
def agent_create(request: AuthedRequest) -> HttpResponse:
    assert request.membership is not None
    workspace = request.membership.workspace
    initial: dict[str, Any] = {}
    # “Create an agent with this provider” arrives with the provider chosen, and its model too
    # when it has just one.
    chosen = next(
        (p for p in providers_of(workspace.id) if str(p.pk) == request.GET.get("provider")), None
    )
    if chosen is not None:
        initial["provider"] = str(chosen.pk)
        if len(chosen.models_available) == 1:
            initial["model"] = chosen.models_available[0]
    form = _agent_form(request, workspace.id, None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            agent = agent_services.agent_create(
                workspace=workspace,
                user=request.user,
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
                config=form.config_data(),
                known_tools=[name for name, _ in tool_choices(workspace.id)],
                note=form.cleaned_data["note"],
            )
        except ValidationError as error:
            form_add_errors(form, error)
        else:
            messages.success(request, f"Agent “{agent.name}” created.")
            return redirect("agent_detail", agent_id=agent.pk)
    return render(
        request,
        "agents/agent_form.html",
        {"form": form, "provider_models": _provider_models(workspace.id)},
    )


@login_required
@require_GET
def agent_detail(request: AuthedRequest, agent_id: UUID) -> HttpResponse:
    agent, membership = get_agent_for_user(request.user, agent_id)
    versions = list(agent.versions.select_related("created_by")[:50])
    latest = versions[0] if versions else None
    providers = {str(p.pk): p for p in providers_of(agent.workspace_id)}
    config = latest.config if latest else {}
    others = {str(a.pk): a for a in agents_of(agent.workspace_id)}
    return render(
        request,
        "agents/agent_detail.html",
        {
            "agent": agent,
            "versions": versions,
            "latest": latest,
            "config": config,
            "provider": providers.get((config.get("model") or {}).get("provider_id", "")),
            "fallbacks": [
                (providers.get(f.get("provider_id")), f.get("model"))
                for f in config.get("fallbacks", [])
            ],
            "handoffs": [others[t] for t in config.get("handoff_targets", []) if t in others],
            "can_edit": membership.allows(Role.EDITOR),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def agent_edit(request: AuthedRequest, agent_id: UUID) -> HttpResponse:
    agent, _ = get_agent_for_user(request.user, agent_id, role=Role.EDITOR)
    latest = agent_latest_version(agent)
    named = dict(Provider.objects.filter(workspace_id=agent.workspace_id).values_list("pk", "name"))
    providers_named = {str(pk): name for pk, name in named.items()}
    initial = AgentForm.initial_for(agent, latest.config, providers_named) if latest else {}
    form = _agent_form(request, agent.workspace_id, agent, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            version = agent_services.agent_update(
                agent=agent,
                user=request.user,
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
                config=form.config_data(),
                known_tools=[name for name, _ in tool_choices(agent.workspace_id)],
                note=form.cleaned_data["note"],
            )
        except ValidationError as error:
            agent.refresh_from_db()
            form_add_errors(form, error)
        else:
            messages.success(request, f"Saved as version {version.number}.")
            return redirect("agent_detail", agent_id=agent.pk)
    return render(
        request,
        "agents/agent_form.html",
        {"form": form, "agent": agent, "provider_models": _provider_models(agent.workspace_id)},
    )


@login_required
@require_POST
def agent_duplicate(request: AuthedRequest, agent_id: UUID) -> HttpResponse:
    agent, _ = get_agent_for_user(request.user, agent_id, role=Role.EDITOR)
    try:
        copy = agent_services.agent_duplicate(agent=agent, user=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("agent_detail", agent_id=agent.pk)
    messages.success(request, f"Copied as “{copy.name}”.")
    return redirect("agent_detail", agent_id=copy.pk)


@login_required
@require_POST
def agent_delete(request: AuthedRequest, agent_id: UUID) -> HttpResponse:
    agent, _ = get_agent_for_user(request.user, agent_id, role=Role.EDITOR)
    try:
        agent_services.agent_delete(agent=agent)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("agent_detail", agent_id=agent.pk)
    messages.success(request, f"Agent “{agent.name}” deleted.")
    return redirect("agent_list")


@login_required
@require_GET
def agent_playground(request: AuthedRequest, agent_id: UUID) -> HttpResponse:
    agent, _ = get_agent_for_user(request.user, agent_id, role=Role.EDITOR)
    switch_to = request.GET.get("agent")
    if switch_to and switch_to != str(agent.pk):
        # “Switch agent” is a GET form, so it works without JavaScript too.
        other = next((a for a in agents_of(agent.workspace_id) if str(a.pk) == switch_to), None)
        if other is None:
            raise Http404("No such agent in this workspace.")
        return redirect("agent_playground", agent_id=other.pk)
    latest = agent_latest_version(agent)
    config = latest.config if latest else {}
    current = config.get("model") or {}
    # The models to try: each provider's listed models, and the agent's own whatever the list.
    choices = []
    for provider in providers_of(agent.workspace_id):
        models = list(provider.models_available)
        if str(provider.pk) == current.get("provider_id") and current.get("model") not in models:
            models.insert(0, current.get("model"))
        if models:
            choices.append((provider, models))
    return render(
        request,
        "agents/agent_playground.html",
        {
            "agent": agent,
            "latest": latest,
            "config": config,
            "current_model": current,
            "model_choices": choices,
            "agents": list(agents_of(agent.workspace_id)),
        },
    )
