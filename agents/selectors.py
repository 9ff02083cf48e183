"""Reads of providers and agents, always scoped to one workspace."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.db.models import Q, QuerySet

from a2a_site.accounts.access import get_for_member
from a2a_site.accounts.models import Membership, Role, User
from agents.models import Agent, AgentVersion, Provider, RemoteAgent, ToolHostPolicy
from agents.urlpolicy import ToolHosts, tool_hosts


def get_provider_for_user(
    user: User, pk: Any, *, role: Role = Role.VIEWER
) -> tuple[Provider, Membership]:
    return get_for_member(Provider.objects.all(), user, pk, role=role)


def get_agent_for_user(
    user: User, pk: Any, *, role: Role = Role.VIEWER
) -> tuple[Agent, Membership]:
    return get_for_member(Agent.objects.all(), user, pk, role=role)


def providers_of(workspace_id: UUID) -> QuerySet[Provider]:
    return Provider.objects.filter(workspace_id=workspace_id).prefetch_related("nodes")


def agents_of(workspace_id: UUID, *, search: str = "") -> QuerySet[Agent]:
    agents = Agent.objects.filter(workspace_id=workspace_id)
    if search.strip():
        term = search.strip()
        agents = agents.filter(Q(name__icontains=term) | Q(description__icontains=term))
    return agents.order_by("name")


def agent_latest_version(agent: Agent) -> AgentVersion | None:
    return agent.versions.order_by("-number").first()


def latest_versions(agent_ids: list[UUID]) -> dict[UUID, AgentVersion]:
    """The latest version of each agent, in one query."""
    latest: dict[UUID, AgentVersion] = {}
    for version in AgentVersion.objects.filter(agent_id__in=agent_ids).order_by("number"):
        latest[version.agent_id] = version
    return latest


def agents_using_provider(provider: Provider) -> list[Agent]:
    """Agents whose latest version calls the provider, as primary model or fallback."""
    agents = list(Agent.objects.filter(workspace_id=provider.workspace_id))
    versions = latest_versions([agent.pk for agent in agents])
    wanted = str(provider.pk)
    using = []
    for agent in agents:
        version = versions.get(agent.pk)
        if version is None:
            continue
        config = version.config
        choices = [config.get("model") or {}, *(config.get("fallbacks") or [])]
        if any(choice.get("provider_id") == wanted for choice in choices):
            using.append(agent)
    return using


def tool_hosts_for(workspace_id: Any) -> ToolHosts:
    """Where this workspace's tools may connect (its policy under A2A_TOOL_ALLOWED_HOSTS)."""
    policy = ToolHostPolicy.objects.filter(workspace_id=workspace_id).first()
    if policy is None:
        return tool_hosts(workspace_hosts=(), public_hosts=True)
    return tool_hosts(workspace_hosts=policy.hosts, public_hosts=policy.public_hosts)


def get_remote_agent_for_user(
    user: User, pk: Any, *, role: Role = Role.VIEWER
) -> tuple[RemoteAgent, Membership]:
    return get_for_member(RemoteAgent.objects.all(), user, pk, role=role)


def remote_agent_choices(workspace_id: Any) -> list[tuple[str, str]]:
    """(id, "name — host") of the workspace's saved remote agents, for pickers."""
    rows = RemoteAgent.objects.filter(workspace_id=workspace_id).values_list("pk", "name", "url")
    return [(str(pk), f"{name} — {url}") for pk, name, url in rows]
