"""From an agent's model choices to the gateway's route plan: which deployments, in what order.

Keys are decrypted here, just before a call, and only for the base URL they were saved with.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any
from uuid import UUID

from django.db.models import prefetch_related_objects

from agents.config import AgentConfig, ModelChoice
from agents.crypto import credential_decrypt
from agents.llm.types import Deployment, Route, RoutePlan
from agents.models import OllamaNode, Provider
from agents.prices import model_prices_of
from agents.services.providers import provider_effective_base_url


class RoutingError(Exception):
    """The agent's model cannot be reached as configured; the message says what to fix."""


def _ollama_has(node: OllamaNode, model: str) -> bool:
    names = set(node.available_models)
    return not names or model in names or f"{model}:latest" in names


def provider_deployments(provider: Provider, model: str) -> Route:
    """The interchangeable deployments of one model at one provider."""
    if provider.kind == "cli":
        raise RoutingError(
            f"“{provider.name}” is a command-line agent: it runs in workflow steps, not in chat."
        )
    if provider.kind == "ollama":
        nodes = [
            node
            for node in provider.nodes.all()
            if node.enabled and node.status != OllamaNode.Status.DOWN and _ollama_has(node, model)
        ]
        if not nodes:
            raise RoutingError(
                f"No healthy node of “{provider.name}” has the model {model}. Check the nodes on "
                "the provider's page, or pull the model onto one."
            )
        return Route(
            [
                Deployment(
                    id=f"{provider.pk}:{node.pk}:{model}",
                    provider_kind="ollama",
                    model=model,
                    base_url=f"{node.base_url.rstrip('/')}/v1",
                    max_parallel=node.max_parallel,
                    # Nodes say "higher first"; the gateway tries the lowest number first.
                    priority=-node.priority,
                    timeout_s=float(provider.timeout_s),
                    first_byte_timeout_s=float(provider.first_byte_timeout_s),
                    chunk_timeout_s=float(provider.chunk_timeout_s),
                    rpm=provider.rpm_limit,
                    tpm=provider.tpm_limit,
                    input_price_per_1k=provider.input_price_per_1k,
                    output_price_per_1k=provider.output_price_per_1k,
                    model_prices=model_prices_of(provider, model),
                )
                for node in nodes
            ],
            strategy=provider.model_routing.get(model, provider.routing_strategy),
        )
    base_url = provider_effective_base_url(provider)
    api_key = None
    if provider.has_credential:
        if provider.credential_base_url.rstrip("/") != provider.base_url.rstrip("/"):
            raise RoutingError(
                f"The key of “{provider.name}” was saved for another base URL; enter it again."
            )
        api_key = credential_decrypt(provider.credential_ciphertext)
    return Route(
        [
            Deployment(
                id=f"{provider.pk}:{model}",
                provider_kind=provider.kind,
                model=model,
                base_url=base_url,
                api_key=api_key,
                api_version=provider.api_version or None,
                rpm=provider.rpm_limit,
                tpm=provider.tpm_limit,
                timeout_s=float(provider.timeout_s),
                first_byte_timeout_s=float(provider.first_byte_timeout_s),
                chunk_timeout_s=float(provider.chunk_timeout_s),
                input_price_per_1k=provider.input_price_per_1k,
                output_price_per_1k=provider.output_price_per_1k,
                model_prices=model_prices_of(provider, model),
            )
        ]
    )


def route_plan_for(
    config: AgentConfig, *, workspace_id: UUID | str, providers: dict[str, Provider] | None = None
) -> RoutePlan:
    """The plan for an agent's models; pass `providers` (by id) when already loaded."""
    choices: list[ModelChoice] = [config.model, *config.fallbacks]
    if providers is None:
        providers = providers_by_id(workspace_id, (choice.provider_id for choice in choices))
    routes = []
    for index, choice in enumerate(choices):
        provider = providers.get(choice.provider_id)
        if provider is None:
            if index == 0:
                raise RoutingError("The agent's provider was deleted; choose another model.")
            continue  # a deleted fallback is skipped, the primary still runs
        routes.append(_with_agent_limits(provider_deployments(provider, choice.model), config))
    return RoutePlan(routes[0], tuple(routes[1:]))


def _with_agent_limits(route: Route, config: AgentConfig) -> Route:
    """The agent's own call limits, where it sets them, replace its providers' defaults."""
    overrides: dict[str, Any] = {}
    if config.call_timeout_s is not None:
        overrides["timeout_s"] = float(config.call_timeout_s)
    if config.first_byte_timeout_s is not None:
        overrides["first_byte_timeout_s"] = float(config.first_byte_timeout_s)
    if config.chunk_timeout_s is not None:
        overrides["chunk_timeout_s"] = float(config.chunk_timeout_s)
    if not overrides:
        return route
    return Route([replace(dep, **overrides) for dep in route.deployments], route.strategy)


def providers_by_id(workspace_id: UUID | str, ids: Iterable[str]) -> dict[str, Provider]:
    wanted = set(ids)
    found = list(Provider.objects.filter(workspace_id=workspace_id, pk__in=_valid(wanted)))
    # Only Ollama fleets have nodes: other providers cost no second query.
    prefetch_related_objects([p for p in found if p.kind == "ollama"], "nodes")
    return {str(provider.pk): provider for provider in found}


def _valid(ids: set[str]) -> list[UUID]:
    valid = []
    for value in ids:
        try:
            valid.append(UUID(value))
        except ValueError:
            continue
    return valid


def deployment_labels(plan: RoutePlan) -> dict[str, str]:
    """Human names of a plan's deployments: the provider, and the node for Ollama fleets."""
    ids = [d.id for route in (plan.primary, *plan.fallbacks) for d in route.deployments]
    provider_ids = _valid({deployment_id.split(":", 1)[0] for deployment_id in ids})
    providers = {str(p.pk): p.name for p in Provider.objects.filter(pk__in=provider_ids)}
    nodes = {
        str(node.pk): node.name
        for node in OllamaNode.objects.filter(provider_id__in=provider_ids).only("pk", "name")
    }
    labels = {}
    for deployment_id in ids:
        parts = deployment_id.split(":")
        label = providers.get(parts[0], "deleted provider")
        if len(parts) == 3:
            label = f"{label} / {nodes.get(parts[1], 'removed node')}"
        labels[deployment_id] = label
    return labels
