"""Providers and agents for tests, made through the same services the pages use."""

from __future__ import annotations

from typing import Any

from a2a_site.accounts.models import Workspace
from agents.models import Agent, Provider
from agents.services.agents import agent_create
from agents.services.providers import ProviderInput, provider_create


def make_provider(
    workspace: Workspace, *, kind: str = "demo", name: str = "", **extra: Any
) -> Provider:
    return provider_create(
        workspace=workspace,
        user=None,
        data=ProviderInput(kind=kind, name=name or kind.title(), **extra),
    )


def make_agent(
    workspace: Workspace,
    *,
    name: str = "Researcher",
    provider: Provider | None = None,
    **config: Any,
) -> Agent:
    provider = provider or Provider.objects.filter(workspace=workspace, kind="demo").first()
    if provider is None:
        provider = make_provider(workspace, name="Demo for agents")
    return agent_create(
        workspace=workspace,
        user=None,
        name=name,
        description=f"{name} for tests",
        config={
            "role": "a careful researcher",
            "model": {"provider_id": str(provider.pk), "model": "demo"},
            **config,
        },
        known_tools=["current_time", "calculator", "http_get", "get_variable"],
    )
