"""The remote agents page: the A2A agents a workspace's workflows call, and their tokens."""

from __future__ import annotations

from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from a2a_site.accounts.decorators import workspace_required
from a2a_site.accounts.models import Role
from a2a_site.api.problems import problem_response
from a2a_site.forms import form_add_errors
from a2a_site.http import AuthedRequest
from agents.models import RemoteAgent
from agents.remote import services
from agents.remote.card import RemoteCardError, remote_card_fetch
from agents.remote.forms import RemoteAgentForm
from agents.selectors import get_remote_agent_for_user


@workspace_required()
@require_http_methods(["GET", "POST"])
def remote_agent_list(request: AuthedRequest) -> HttpResponse:
    assert request.membership is not None
    can_edit = request.membership.allows(Role.EDITOR)
    form = RemoteAgentForm(request.POST or None)
    if request.method == "POST":
        if not can_edit:
            return HttpResponse("Viewers cannot add remote agents.", status=403)
        if form.is_valid():
            try:
                agent = services.remote_agent_create(
                    workspace=request.membership.workspace,
                    user=request.user,
                    name=form.cleaned_data["name"],
                    url=form.cleaned_data["url"],
                    credential=form.cleaned_data["credential"],
                )
            except ValidationError as error:
                form_add_errors(form, error)
            else:
                if agent.card_error:
                    messages.warning(request, f"“{agent.name}” saved, but {agent.card_error}")
                else:
                    messages.success(
                        request,
                        f"“{agent.name}” saved. Choose it on a Remote agent (A2A) step of a "
                        "workflow.",
                    )
                return redirect("remote_agent_list")
    agents = RemoteAgent.objects.filter(workspace_id=request.membership.workspace_id)
    return render(
        request,
        "agents/remote_agent_list.html",
        {"remote_agents": agents, "form": form, "can_edit": can_edit},
        status=422 if form.errors else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def remote_agent_edit(request: AuthedRequest, remote_agent_id: UUID) -> HttpResponse:
    agent, membership = get_remote_agent_for_user(request.user, remote_agent_id)
    can_edit = membership.allows(Role.EDITOR)
    initial = {"name": agent.name, "url": agent.url}
    form = RemoteAgentForm(request.POST or None, agent=agent, initial=initial)
    if request.method == "POST":
        if not can_edit:
            return HttpResponse("Viewers cannot change remote agents.", status=403)
        if form.is_valid():
            try:
                services.remote_agent_update(
                    agent=agent,
                    name=form.cleaned_data["name"],
                    url=form.cleaned_data["url"],
                    credential=form.cleaned_data["credential"],
                    clear_credential=bool(form.cleaned_data.get("clear_credential")),
                )
            except ValidationError as error:
                agent.refresh_from_db()
                form_add_errors(form, error)
            else:
                messages.success(request, f"“{agent.name}” saved.")
                return redirect("remote_agent_edit", remote_agent_id=agent.pk)
    return render(
        request,
        "agents/remote_agent_edit.html",
        {"agent": agent, "form": form, "can_edit": can_edit},
        status=422 if form.errors else 200,
    )


@login_required
@require_POST
def remote_agent_refresh(request: AuthedRequest, remote_agent_id: UUID) -> HttpResponse:
    agent, _ = get_remote_agent_for_user(request.user, remote_agent_id, role=Role.EDITOR)
    services.remote_agent_card_refresh(agent=agent)
    if agent.card_error:
        messages.error(request, agent.card_error)
    else:
        messages.success(request, "Card fetched again.")
    return redirect("remote_agent_edit", remote_agent_id=agent.pk)


@login_required
@require_POST
def remote_agent_delete(request: AuthedRequest, remote_agent_id: UUID) -> HttpResponse:
    agent, _ = get_remote_agent_for_user(request.user, remote_agent_id, role=Role.EDITOR)
    services.remote_agent_delete(agent=agent)
    messages.success(
        request, f"“{agent.name}” deleted. Steps that used it fail until another is chosen."
    )
    return redirect("remote_agent_list")


@workspace_required()
@require_GET
def remote_agent_card(request: AuthedRequest) -> HttpResponse:
    """The card of the agent at ?url=, as the builder shows it; problem+json when refused."""
    url = request.GET.get("url", "").strip()
    if not url:
        return problem_response("malformed", "Give the agent's URL in ?url=.")
    try:
        card = remote_card_fetch(url)
    except RemoteCardError as error:
        return problem_response("validation", str(error))
    return JsonResponse(card.as_dict())
