"""Moving a workflow and its agents between installations as one self-contained JSON document.

The document names providers by kind, name and model, never by id and never with a key or base
URL: the importing workspace supplies its own providers, and credentials stay where they were.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from pydantic import ValidationError as PydanticError

from a2a_site.accounts.models import User, Workspace
from agents.config import agent_config_load, config_errors
from agents.models import Agent, AgentVersion, Provider
from agents.services.agents import agent_create, agent_update
from agents.services.providers import ProviderInput, provider_create
from agents.tools.registry import builtin_registry
from workflows.graph import NODE_TYPES
from workflows.models import Workflow, WorkflowVersion
from workflows.services.workflows import (
    workflow_create,
    workflow_publish,
    workflow_save_draft,
    workflow_validate,
)

EXPORT_FORMAT = "a2a-studio.workflow"
EXPORT_FORMAT_VERSION = 1
IMPORT_SUFFIX = " (imported)"
FALLBACK_PROVIDER = "Offline demo model"


@dataclass
class ImportResult:
    workflow: Workflow
    agents_created: list[Agent] = field(default_factory=list)
    # Choices made for the user (providers substituted, a draft left unpublished).
    warnings: list[str] = field(default_factory=list)
    # What the source had that could not be carried over (AutoGen imports).
    report: list[str] = field(default_factory=list)


# --- Shared helpers (also used by the AutoGen import) ------------------------------------------


def unique_name(base: str, taken: Callable[[str], bool], *, limit: int) -> str:
    """`base`, or `base (imported)`, `base (imported 2)`... whichever is free."""
    base = base.strip()[:limit]
    if not taken(base):
        return base
    counter = 1
    while True:
        suffix = IMPORT_SUFFIX if counter == 1 else f" (imported {counter})"
        candidate = base[: limit - len(suffix)] + suffix
        if not taken(candidate):
            return candidate
        counter += 1


class ProviderChooser:
    """Finds a provider of the target workspace for each exported one, and says what it chose."""

    def __init__(
        self,
        *,
        workspace: Workspace,
        user: User | None,
        warnings: list[str],
        provider_map: Mapping[str, Provider] | None = None,
    ) -> None:
        self.workspace = workspace
        self.user = user
        self.warnings = warnings
        self.provider_map = dict(provider_map or {})
        self.chosen: dict[tuple[str, str], Provider] = {}

    def choose(self, *, kind: str, name: str, for_what: str) -> Provider:
        key = (kind, name)
        if key in self.chosen:
            return self.chosen[key]
        provider = self._find(kind, name, for_what)
        self.chosen[key] = provider
        return provider

    def _find(self, kind: str, name: str, for_what: str) -> Provider:
        mapped = self.provider_map.get(name)
        if mapped is not None:
            if mapped.workspace_id != self.workspace.pk:
                raise ValidationError(f"The provider “{mapped.name}” belongs to another workspace.")
            return mapped
        providers = Provider.objects.filter(workspace=self.workspace).order_by("created_at")
        exact = providers.filter(kind=kind, name=name).first()
        if exact is not None:
            return exact
        wanted = f"a {kind} provider" + (f" named “{name}”" if name else "")
        same_kind = providers.filter(kind=kind).first()
        if same_kind is not None:
            self.warnings.append(
                f"{for_what}: this workspace has no {wanted}, so the {kind} provider "
                f"“{same_kind.name}” is used."
            )
            return same_kind
        first = providers.first()
        if first is not None:
            # No kind at all: a client of a kind A2A Studio lacks, reported by the importer.
            reason = f"this workspace has no {kind} provider, so " if kind else ""
            self.warnings.append(
                f"{for_what}: {reason}“{first.name}” ({first.kind}) is used; check the agents' "
                "model names."
            )
            return first
        created = Provider.objects.filter(workspace=self.workspace, name=FALLBACK_PROVIDER).first()
        if created is None:
            created = provider_create(
                workspace=self.workspace,
                user=self.user,
                data=ProviderInput(kind="demo", name=FALLBACK_PROVIDER),
            )
        self.warnings.append(
            f"{for_what}: this workspace had no provider, so the offline demo provider "
            f"“{created.name}” was created and is used; add a real provider and point the "
            "agents at it to call a real model."
        )
        return created


def model_on(provider: Provider, model: str) -> str:
    # The demo provider serves its own model names; a hosted model name would mean nothing there.
    if provider.kind == "demo" and model not in ("demo", "demo-fast"):
        return "demo"
    return model or "demo"


def graph_agent_ids(graph: Any) -> list[str]:
    """Agent ids the graph's nodes reference, in order, found through the node configs."""
    found: list[str] = []
    for node in graph.get("nodes", []) if isinstance(graph, dict) else []:
        if not isinstance(node, dict):
            continue
        for agent_id in _node_agent_ids(node) or []:
            if agent_id not in found:
                found.append(agent_id)
    return found


def _node_agent_ids(node: dict[str, Any]) -> list[str] | None:
    """None when the node's config does not load, so callers can fall back."""
    node_type = NODE_TYPES.get(str(node.get("type")))
    if node_type is None:
        return None
    try:
        config = node_type.config_model.model_validate(node.get("config") or {})
    except PydanticError:
        return None
    return [ref.id for ref in node_type.references(config) if ref.kind == "agent"]


def _replace_strings(value: Any, mapping: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return mapping.get(value, value)
    if isinstance(value, list):
        return [_replace_strings(item, mapping) for item in value]
    if isinstance(value, dict):
        return {key: _replace_strings(item, mapping) for key, item in value.items()}
    return value


def graph_rewrite_agents(
    graph: dict[str, Any], mapping: Mapping[str, str], *, warnings: list[str]
) -> dict[str, Any]:
    """A copy of `graph` whose agent references point at the new agents.

    `references()` says which ids a node refers to; the whole config is then walked, so fields
    that repeat those ids (speaker rules, a hand-off's start agent) follow along.
    """
    rewritten = copy.deepcopy(graph)
    for node in rewritten.get("nodes", []):
        if not isinstance(node, dict) or not isinstance(node.get("config"), dict):
            continue
        referenced = _node_agent_ids(node)
        # A config that does not load still gets its ids rewritten; validation reports the rest.
        ids = set(mapping) if referenced is None else set(referenced)
        for agent_id in sorted(ids - set(mapping)):
            warnings.append(
                f"Node “{node.get('id')}” refers to agent {agent_id}, which the document does not "
                "include; choose an agent for it in the builder."
            )
        node["config"] = _replace_strings(
            node["config"], {k: mapping[k] for k in ids & set(mapping)}
        )
    return rewritten


def publish_or_explain(
    *, workflow: Workflow, user: User | None, note: str, warnings: list[str]
) -> None:
    report = workflow_validate(workspace_id=workflow.workspace_id, graph=workflow.draft)
    if report.ok:
        workflow_publish(workflow=workflow, user=user, note=note)
        return
    problems = "; ".join(issue.message for issue in report.errors[:5])
    more = f" (and {len(report.errors) - 5} more)" if len(report.errors) > 5 else ""
    warnings.append(
        f"The workflow was saved as a draft but not published, because the graph has problems: "
        f"{problems}{more}. Fix them in the builder, then publish."
    )


# --- Export ------------------------------------------------------------------------------------


def _provider_ref(
    provider_id: str, model: str, providers: Mapping[str, Provider]
) -> dict[str, Any]:
    provider = providers.get(provider_id)
    if provider is None:
        return {"model": model, "provider": {"kind": "", "name": "", "model": model}}
    return {
        "model": model,
        "provider": {"kind": provider.kind, "name": provider.name, "model": model},
    }


def _export_config(config: dict[str, Any], providers: Mapping[str, Provider]) -> dict[str, Any]:
    exported = copy.deepcopy(config)
    model = exported.get("model") or {}
    exported["model"] = _provider_ref(
        str(model.get("provider_id", "")), str(model.get("model", "")), providers
    )
    exported["fallbacks"] = [
        _provider_ref(str(item.get("provider_id", "")), str(item.get("model", "")), providers)
        for item in exported.get("fallbacks", [])
    ]
    _policy_models_map(
        exported,
        lambda item: _provider_ref(
            str(item.get("provider_id", "")), str(item.get("model", "")), providers
        ),
    )
    return exported


def _policy_models_map(config: dict[str, Any], convert: Any) -> None:
    """Applies `convert` to every model a model policy names (rules, classifier, complex)."""
    policy = config.get("model_policy")
    if not isinstance(policy, dict):
        return
    for rule in policy.get("rules") or []:
        if isinstance(rule, dict) and isinstance(rule.get("use"), dict):
            rule["use"] = convert(rule["use"])
    for name in ("classifier", "complex_model"):
        if isinstance(policy.get(name), dict):
            policy[name] = convert(policy[name])


def workflow_export(
    *, workflow: Workflow, version: int | WorkflowVersion | None = None, draft: bool = False
) -> dict[str, Any]:
    """The workflow as a self-contained document: one version's graph and its agents.

    Without `version` it exports the latest published version, or the draft when asked with
    `draft=True` or when nothing is published yet.
    """
    pinned: dict[str, int] = {}
    if draft:
        graph, source = workflow.draft, "draft"
    else:
        if isinstance(version, WorkflowVersion):
            chosen: WorkflowVersion | None = version
        elif version is not None:
            chosen = workflow.versions.filter(number=version).first()
            if chosen is None:
                raise ValidationError(f"“{workflow.name}” has no version {version}.")
        else:
            chosen = workflow.versions.order_by("-number").first()
        if chosen is None:
            graph, source = workflow.draft, "draft"
        else:
            graph, source = chosen.graph, f"version {chosen.number}"
            pinned = dict(chosen.agent_versions)
    agents = {
        str(agent.pk): agent for agent in Agent.objects.filter(workspace_id=workflow.workspace_id)
    }
    providers = {
        str(provider.pk): provider
        for provider in Provider.objects.filter(workspace_id=workflow.workspace_id)
    }
    exported_agents: list[dict[str, Any]] = []
    # Hand-off targets are agents too: follow them so the document stands on its own.
    queue = [agent_id for agent_id in graph_agent_ids(graph) if agent_id in agents]
    seen = set(queue)
    while queue:
        agent = agents[queue.pop(0)]
        versions = AgentVersion.objects.filter(agent=agent)
        number = pinned.get(str(agent.pk))
        agent_version = (
            versions.filter(number=number).first() if number else None
        ) or versions.order_by("-number").first()
        if agent_version is None:
            continue
        config = agent_version.config
        exported_agents.append(
            {
                "ref": str(agent.pk),
                "name": agent.name,
                "description": agent.description,
                "config": _export_config(config, providers),
            }
        )
        for target in config.get("handoff_targets", []):
            if target in agents and target not in seen:
                seen.add(target)
                queue.append(target)
    return {
        "format": EXPORT_FORMAT,
        "format_version": EXPORT_FORMAT_VERSION,
        "exported_at": timezone.now().isoformat(),
        "source": source,
        "workflow": {"name": workflow.name, "description": workflow.description},
        "graph": graph,
        "agents": exported_agents,
    }


# --- Import ------------------------------------------------------------------------------------


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValidationError(message)


def _check_document(document: Any) -> None:
    _require(isinstance(document, dict), "The file must hold a JSON object.")
    found = document.get("format")
    _require(
        found == EXPORT_FORMAT,
        f"This is not an A2A Studio workflow export: “format” is {found!r}, "
        f"expected {EXPORT_FORMAT!r}.",
    )
    format_version = document.get("format_version")
    _require(
        isinstance(format_version, int) and not isinstance(format_version, bool),
        "The export has no valid “format_version”.",
    )
    _require(
        format_version <= EXPORT_FORMAT_VERSION,
        f"This export has format_version {format_version}, from a newer A2A Studio; this one "
        f"reads up to {EXPORT_FORMAT_VERSION}. Upgrade A2A Studio to import it.",
    )
    _require(format_version >= 1, f"format_version {format_version} is not valid.")
    workflow = document.get("workflow")
    _require(
        isinstance(workflow, dict) and isinstance(workflow.get("name"), str),
        "The export lacks “workflow” with a “name”.",
    )
    _require(isinstance(document.get("graph"), dict), "The export lacks its “graph” object.")
    agents = document.get("agents")
    _require(isinstance(agents, list), "The export lacks its “agents” list.")
    for index, agent in enumerate(agents, start=1):
        _require(isinstance(agent, dict), f"Agent {index} of the export is not an object.")
        for key, kind in (("ref", str), ("name", str), ("config", dict)):
            _require(
                isinstance(agent.get(key), kind),
                f"Agent {index} of the export lacks its “{key}”.",
            )


def _import_model(choice: Any, chooser: ProviderChooser, agent_name: str) -> dict[str, str]:
    choice = choice if isinstance(choice, dict) else {}
    provider = choice.get("provider") if isinstance(choice.get("provider"), dict) else {}
    model = str(choice.get("model") or provider.get("model") or "")
    chosen = chooser.choose(
        kind=str(provider.get("kind", "")),
        name=str(provider.get("name", "")),
        for_what=f"Agent “{agent_name}”",
    )
    return {"provider_id": str(chosen.pk), "model": model_on(chosen, model)}


def agents_create(
    *,
    workspace: Workspace,
    user: User | None,
    specs: Iterable[tuple[str, str, str, dict[str, Any]]],
    warnings: list[str],
    note: str,
) -> tuple[dict[str, str], list[Agent]]:
    """Creates agents from (ref, name, description, config with handoff refs); returns ref → id.

    Hand-off targets may form cycles, so every agent is created first and the targets are set
    afterwards, as the agents' second version.
    """
    known_tools = builtin_registry().names()
    mapping: dict[str, str] = {}
    created: list[Agent] = []
    pending: list[tuple[Agent, list[str], dict[str, Any]]] = []
    for ref, name, description, config in specs:
        config = dict(config)
        tools = [tool for tool in config.get("tools", []) if tool in known_tools]
        for tool in config.get("tools", []):
            if tool not in known_tools:
                warnings.append(
                    f"Agent “{name}”: the tool “{tool}” does not exist here and was left out."
                )
        config["tools"] = tools
        targets = list(config.pop("handoff_targets", []) or [])
        agent_name = unique_name(
            name,
            lambda candidate: Agent.objects.filter(workspace=workspace, name=candidate).exists(),
            limit=80,
        )
        try:
            agent_config_load(config)
        except (PydanticError, ValueError) as error:
            details = (
                "; ".join(f"{k}: {', '.join(v)}" for k, v in config_errors(error).items())
                if isinstance(error, PydanticError)
                else str(error)
            )
            raise ValidationError(
                f"Agent “{name}” has an invalid configuration: {details}"
            ) from None
        agent = agent_create(
            workspace=workspace,
            user=user,
            name=agent_name,
            description=description[:300],
            config=config,
            known_tools=known_tools,
            note=note,
        )
        if agent_name != name.strip():
            warnings.append(
                f"An agent “{name}” already exists, so it was imported as “{agent_name}”."
            )
        mapping[ref] = str(agent.pk)
        created.append(agent)
        if targets:
            pending.append((agent, targets, config))
    for agent, targets, config in pending:
        mapped = [mapping[target] for target in targets if target in mapping]
        for target in targets:
            if target not in mapping:
                warnings.append(
                    f"Agent “{agent.name}”: the hand-off target {target} is not in the document "
                    "and was left out."
                )
        if mapped:
            agent_update(
                agent=agent,
                user=user,
                name=agent.name,
                description=agent.description,
                config={**config, "handoff_targets": mapped},
                known_tools=known_tools,
                note="Hand-off targets",
            )
    return mapping, created


def document_graph_import(
    *,
    workspace: Workspace,
    user: User | None,
    document: Any,
    provider_map: Mapping[str, Provider] | None = None,
) -> tuple[dict[str, Any], list[Agent], list[str]]:
    """The exported document's agents created in `workspace`, and its graph rewritten to them:
    (graph, agents created, warnings). Shared by `workflow_import` and the builder's import."""
    _check_document(document)
    warnings: list[str] = []
    chooser = ProviderChooser(
        workspace=workspace, user=user, warnings=warnings, provider_map=provider_map
    )
    with transaction.atomic():
        specs = []
        for agent in document["agents"]:
            config = dict(agent["config"])
            config["model"] = _import_model(config.get("model"), chooser, agent["name"])
            config["fallbacks"] = [
                _import_model(item, chooser, agent["name"]) for item in config.get("fallbacks", [])
            ]
            if isinstance(config.get("model_policy"), dict):
                config["model_policy"] = copy.deepcopy(config["model_policy"])
                _policy_models_map(
                    config, lambda item, name=agent["name"]: _import_model(item, chooser, name)
                )
            specs.append((agent["ref"], agent["name"], str(agent.get("description") or ""), config))
        mapping, created = agents_create(
            workspace=workspace, user=user, specs=specs, warnings=warnings, note="Imported"
        )
        graph = graph_rewrite_agents(document["graph"], mapping, warnings=warnings)
    return graph, created, warnings


def workflow_import(
    *,
    workspace: Workspace,
    user: User | None,
    document: Any,
    provider_map: Mapping[str, Provider] | None = None,
    name: str | None = None,
) -> ImportResult:
    """Creates the document's agents and workflow in `workspace`, publishing it when it validates.

    `provider_map` maps an exported provider's name to a provider of `workspace`; others are
    matched by kind and name, then kind, then the workspace's first provider, with a warning.
    """
    with transaction.atomic():
        graph, created, warnings = document_graph_import(
            workspace=workspace, user=user, document=document, provider_map=provider_map
        )
        base = name or document["workflow"]["name"]
        workflow_name = unique_name(
            base,
            lambda candidate: Workflow.objects.filter(workspace=workspace, name=candidate).exists(),
            limit=120,
        )
        workflow = workflow_create(
            workspace=workspace,
            user=user,
            name=workflow_name,
            description=str(document["workflow"].get("description") or "")[:500],
        )
        workflow_save_draft(workflow=workflow, graph=graph)
        publish_or_explain(workflow=workflow, user=user, note="Imported", warnings=warnings)
    return ImportResult(workflow=workflow, agents_created=created, warnings=warnings)
