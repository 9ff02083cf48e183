"""Importing an AutoGen Studio team (AutoGen AgentChat "component" JSON) as a workflow.

A team becomes start → group chat (round robin or selector) or hand-off swarm → end, with one
agent per participant. What has no equivalent here is listed in `ImportResult.report`, never
dropped silently; API keys in the file are never imported.
"""

from __future__ import annotations

import math
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from pydantic import TypeAdapter
from pydantic import ValidationError as PydanticError

from a2a_site.accounts.models import User, Workspace
from agents.models import Agent
from agents.tools.registry import builtin_registry
from workflows.graph.examples import edge, node, text_variable
from workflows.graph.nodes import Termination, termination_is_bounded
from workflows.models import Workflow
from workflows.services.transfer import (
    ImportResult,
    ProviderChooser,
    agents_create,
    graph_rewrite_agents,
    model_on,
    publish_or_explain,
    unique_name,
)
from workflows.services.workflows import workflow_create, workflow_save_draft

TEAMS = {
    "RoundRobinGroupChat": "round_robin",
    "SelectorGroupChat": "llm_selector",
    "Swarm": "swarm",
}
MODEL_CLIENTS = {
    "OpenAIChatCompletionClient": "openai",
    "AzureOpenAIChatCompletionClient": "azure",
    "AnthropicChatCompletionClient": "anthropic",
    "OllamaChatCompletionClient": "ollama",
}
# AutoGen's own default, used when a participant gives no system message at all.
AUTOGEN_DEFAULT_SYSTEM_MESSAGE = (
    "You are a helpful AI assistant. Solve tasks using your tools. Reply with TERMINATE when the "
    "task has been completed."
)
DEFAULT_MAX_MESSAGES = 20
_TERMINATION: TypeAdapter[Any] = TypeAdapter(Termination)
_AGENT_KEYS_MAPPED = {"name", "description", "system_message", "model_client", "tools", "handoffs"}
_TEAM_KEYS_MAPPED = {
    "participants",
    "termination_condition",
    "max_turns",
    "model_client",
    "selector_prompt",
}
_CLIENT_KEYS_MAPPED = {"model", "temperature", "max_tokens", "top_p", "seed"}
# Where a client keeps its endpoint or credentials: set on the provider, never taken from a file.
_CLIENT_KEYS_PROVIDER = {"api_key", "base_url", "azure_endpoint", "api_version", "azure_deployment"}


def _short(provider: Any) -> str:
    """'autogen_agentchat.teams.Swarm' → 'Swarm'; AutoGen also accepts the short names."""
    return str(provider or "").rsplit(".", 1)[-1]


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def is_autogen_team(document: Any) -> bool:
    return (
        isinstance(document, dict)
        and document.get("component_type") == "team"
        and isinstance(document.get("config"), dict)
    )


class _Importer:
    def __init__(self, *, workspace: Workspace, user: User | None, document: Any) -> None:
        self.workspace = workspace
        self.user = user
        self.document = document
        self.warnings: list[str] = []
        self.report: list[str] = []
        self.chooser = ProviderChooser(workspace=workspace, user=user, warnings=self.warnings)
        self.known_tools = set(builtin_registry().names())

    # --- Agents ---------------------------------------------------------------------------------

    def model(self, client: Any, who: str) -> tuple[dict[str, str], dict[str, Any]]:
        """The agent's model choice and the parameters kept from an AutoGen model client."""
        if not isinstance(client, dict):
            self.report.append(f"{who}: no model client; the workspace's provider is used.")
            client = {}
        config = _obj(client.get("config"))
        name = _short(client.get("provider"))
        kind = MODEL_CLIENTS.get(name)
        if client and kind is None:
            self.report.append(
                f"{who}: the model client “{client.get('provider')}” is not supported; "
                "another provider is used."
            )
        if config.get("api_key"):
            self.warnings.append(
                f"{who}: the API key in the file was not imported; enter keys in the provider "
                "(Providers page), where they are stored encrypted."
            )
        for key in sorted((_CLIENT_KEYS_PROVIDER - {"api_key", "azure_deployment"}) & set(config)):
            self.report.append(
                f"{who}: the model client's {key} was not imported; set it on the provider."
            )
        for key in sorted(set(config) - _CLIENT_KEYS_MAPPED - _CLIENT_KEYS_PROVIDER):
            self.report.append(
                f"{who}: the model client's {key} is not supported and was left out."
            )
        provider = self.chooser.choose(kind=kind or "", name="", for_what=who)
        # Azure calls name the deployment, which is what the model field holds for Azure here.
        model = str(config.get("azure_deployment") or config.get("model") or "")
        params: dict[str, Any] = {}
        for key, low, high in (("temperature", 0, 2), ("top_p", 0, 1)):
            value = config.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                if low <= value <= high:
                    params[key] = value
                else:
                    self.report.append(f"{who}: {key} {value} is out of range and was left out.")
        for key in ("max_tokens", "seed"):
            value = config.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                params[key] = value
        return {"provider_id": str(provider.pk), "model": model_on(provider, model)}, params

    def tools(self, tools: Any, who: str) -> list[str]:
        found: list[str] = []
        for tool in tools if isinstance(tools, list) else []:
            config = tool.get("config") if isinstance(tool, dict) else None
            name = (config or {}).get("name") or (tool or {}).get("label") or "unnamed"
            if name in self.known_tools:
                if name not in found:
                    found.append(name)
                continue
            self.report.append(
                f"{who}: the custom tool “{name}” ({_short((tool or {}).get('provider'))}) was "
                "not imported: A2A Studio does not run tool code from a file. Built-in tools "
                f"are {', '.join(sorted(self.known_tools))}."
            )
        return found

    def participant(
        self, component: Any, index: int, names: set[str]
    ) -> tuple[str, str, str, dict[str, Any], list[str]] | None:
        if not isinstance(component, dict) or not isinstance(component.get("config"), dict):
            self.report.append(f"Participant {index} is not an agent component and was skipped.")
            return None
        config = component["config"]
        name = str(config.get("name") or component.get("label") or f"agent_{index}")
        if _short(component.get("provider")) != "AssistantAgent":
            self.report.append(
                f"Participant “{name}” is a {_short(component.get('provider'))}, which is not "
                "supported (only AssistantAgent is); it was skipped."
            )
            return None
        who = f"Agent “{name}”"
        model, params = self.model(config.get("model_client"), who)
        if "system_message" not in config:
            system_message = AUTOGEN_DEFAULT_SYSTEM_MESSAGE
        else:
            system_message = str(config.get("system_message") or "")
        agent_config: dict[str, Any] = {
            "system_message": system_message,
            "model": model,
            **params,
            "tools": self.tools(config.get("tools"), who),
        }
        if not system_message.strip():
            agent_config["role"] = "a helpful assistant"
            self.report.append(f"{who}: no system message; the role “a helpful assistant” is used.")
        handoffs: list[str] = []
        for handoff in config.get("handoffs") or []:
            target = handoff.get("target") if isinstance(handoff, dict) else handoff
            if isinstance(target, str) and target in names and target != name:
                handoffs.append(target)
            else:
                self.report.append(
                    f"{who}: the hand-off to “{target}” does not name another participant and "
                    "was left out."
                )
        agent_config["handoff_targets"] = handoffs
        for key in sorted(set(config) - _AGENT_KEYS_MAPPED):
            if config[key] not in (None, False, [], {}, ""):
                self.report.append(f"{who}: {key} is not supported and was left out.")
        description = str(config.get("description") or component.get("description") or "")
        return name, name, description, agent_config, handoffs

    # --- Termination ----------------------------------------------------------------------------

    def termination(self, component: Any) -> dict[str, Any] | None:
        if not isinstance(component, dict):
            return None
        kind = _short(component.get("provider"))
        config = _obj(component.get("config"))
        if kind in ("OrTerminationCondition", "AndTerminationCondition"):
            key = "any_of" if kind.startswith("Or") else "all_of"
            parts = [self.termination(part) for part in config.get("conditions") or []]
            kept = [part for part in parts if part is not None]
            if key == "all_of" and len(kept) < len(parts):
                self.report.append(
                    "An AND termination lost a condition it could not map, so it may end the "
                    "chat sooner than in AutoGen."
                )
            if not kept:
                return None
            return kept[0] if len(kept) == 1 else {key: kept}
        if kind == "MaxMessageTermination":
            value = int(config.get("max_messages") or DEFAULT_MAX_MESSAGES)
            if not 1 <= value <= 1000:
                self.report.append(f"max_messages {value} is outside 1–1000; it was clamped.")
                value = min(max(value, 1), 1000)
            return {"max_messages": value}
        if kind == "TextMentionTermination":
            if config.get("sources"):
                self.report.append(
                    "TextMentionTermination's sources are not supported: any speaker's "
                    f"“{config.get('text')}” ends the chat."
                )
            return {"text_mention": str(config.get("text") or "TERMINATE")}
        if kind == "TokenUsageTermination":
            total = config.get("max_total_token")
            for key in ("max_prompt_token", "max_completion_token"):
                if config.get(key):
                    self.report.append(
                        f"TokenUsageTermination's {key} is not supported; only a total budget is."
                    )
            if not total:
                total = sum(
                    int(config.get(key) or 0)
                    for key in ("max_prompt_token", "max_completion_token")
                )
            return {"token_budget": int(total)} if total else None
        if kind == "TimeoutTermination":
            seconds = config.get("timeout_seconds")
            if not isinstance(seconds, int | float) or seconds <= 0:
                self.report.append("TimeoutTermination has no valid timeout_seconds; left out.")
                return None
            return {"timeout_s": min(math.ceil(seconds), 7 * 24 * 3600)}
        if kind == "HandoffTermination":
            target = config.get("target")
            if target != "user":
                self.report.append(
                    f"HandoffTermination to “{target}” is mapped to a hand-off to a human."
                )
            return {"handoff_to_human": True}
        self.report.append(
            f"The termination condition {kind or 'without a provider'} is not "
            "supported and was left out."
        )
        return None

    def bounded(self, condition: dict[str, Any] | None) -> dict[str, Any]:
        max_turns = self.document["config"].get("max_turns")
        if isinstance(max_turns, int) and max_turns >= 1:
            turns: dict[str, Any] = {"max_messages": min(max_turns, 1000)}
            self.report.append(
                f"max_turns {max_turns} is mapped to max_messages {turns['max_messages']}."
            )
            condition = turns if condition is None else {"any_of": [condition, turns]}
        if condition is None or not _is_bounded(condition):
            bound: dict[str, Any] = {"max_messages": DEFAULT_MAX_MESSAGES}
            self.report.append(
                "The team had no termination that is sure to fire, so max_messages "
                f"{DEFAULT_MAX_MESSAGES} was added."
            )
            condition = bound if condition is None else {"any_of": [condition, bound]}
        return condition

    # --- Team -----------------------------------------------------------------------------------

    def run(self) -> ImportResult:
        with transaction.atomic():
            graph, created = self.graph()
            document = self.document
            name = unique_name(
                str(document.get("label") or "AutoGen team"),
                lambda candidate: Workflow.objects.filter(
                    workspace=self.workspace, name=candidate
                ).exists(),
                limit=120,
            )
            workflow = workflow_create(
                workspace=self.workspace,
                user=self.user,
                name=name,
                description=str(document.get("description") or "")[:500],
            )
            workflow_save_draft(workflow=workflow, graph=graph)
            publish_or_explain(
                workflow=workflow,
                user=self.user,
                note="Imported from AutoGen Studio",
                warnings=self.warnings,
            )
        return ImportResult(
            workflow=workflow, agents_created=created, warnings=self.warnings, report=self.report
        )

    def graph(self) -> tuple[dict[str, Any], list[Agent]]:
        """The team as a graph whose agents now exist in the workspace."""
        document = self.document
        if not is_autogen_team(document):
            raise ValidationError(
                "This is not an AutoGen team: expected a component with "
                '"component_type": "team" and a "config" object.'
            )
        team = TEAMS.get(_short(document.get("provider")))
        if team is None:
            raise ValidationError(
                f"The team type “{document.get('provider')}” is not supported; A2A Studio imports "
                "RoundRobinGroupChat, SelectorGroupChat and Swarm."
            )
        config = document["config"]
        participants = config.get("participants")
        if not isinstance(participants, list) or not participants:
            raise ValidationError("The team has no participants.")
        names = {
            str(p["config"].get("name"))
            for p in participants
            if isinstance(p, dict) and isinstance(p.get("config"), dict)
        }
        specs = []
        for index, component in enumerate(participants, start=1):
            spec = self.participant(component, index, names)
            if spec is not None:
                specs.append(spec[:4])
        if len(specs) < 2:
            raise ValidationError(
                "A team needs at least two AssistantAgent participants that can be imported; "
                + " ".join(self.report)
            )
        selector_ref = None
        if team == "llm_selector":
            selector_ref = "__selector__"
            model, params = self.model(config.get("model_client"), "The selector")
            prompt = str(config.get("selector_prompt") or "").strip()
            specs.append(
                (
                    selector_ref,
                    "Selector",
                    "Chooses the next speaker of the imported team.",
                    {
                        "role": "the chair who chooses the next speaker",
                        "system_message": prompt,
                        "model": model,
                        **params,
                    },
                )
            )
            if prompt:
                self.report.append(
                    "The selector_prompt became the Selector agent's system message; its "
                    "{roles}, {participants} and {history} placeholders are not filled in."
                )
        for key in sorted(set(config) - _TEAM_KEYS_MAPPED):
            if config[key] not in (None, False, [], {}, ""):
                self.report.append(f"The team's {key} is not supported and was left out.")
        condition = self.termination(config.get("termination_condition"))
        members = [spec[0] for spec in specs if spec[0] != selector_ref]
        if team == "swarm":
            team_node = self.swarm_node(members, condition)
        else:
            team_node = node(
                "team",
                "group_chat",
                300,
                0,
                members=members,
                speaker_selection=team,
                termination=self.bounded(condition),
                output_variable="transcript",
                **({"selector_agent_id": selector_ref} if selector_ref else {}),
            )
        graph = {
            "schema_version": 1,
            "nodes": [
                node("start", "start", 0, 0, input_mapping={"task": "task"}),
                team_node,
                node("end", "end", 600, 0, output="transcript"),
            ],
            "edges": [edge("start", "team"), edge("team", "end")],
            "variables": [
                text_variable("task", "The task for the team."),
                text_variable("transcript"),
            ],
            "inputs": {"fields": [{"name": "task", "type": "text", "label": "Task"}]},
            "output": "transcript",
        }
        mapping, created = agents_create(
            workspace=self.workspace,
            user=self.user,
            specs=specs,
            warnings=self.warnings,
            note="Imported from AutoGen Studio",
        )
        return graph_rewrite_agents(graph, mapping, warnings=self.warnings), created

    def swarm_node(self, members: list[str], condition: dict[str, Any] | None) -> dict[str, Any]:
        # A hand-off node ends when an agent answers without handing off, or at max_handoffs;
        # of AutoGen's conditions only a message count carries over, as that bound.
        counts = _find(condition, "max_messages")
        max_turns = self.document["config"].get("max_turns")
        if isinstance(max_turns, int) and max_turns >= 1:
            counts.append(max_turns)
        if counts:
            max_handoffs = min(max(min(counts), 1), 100)
            self.report.append(
                f"The swarm's message limit ({min(counts)}) is mapped to max_handoffs "
                f"{max_handoffs}."
            )
        else:
            max_handoffs = 10
            self.report.append(
                "The swarm had no message limit, so max_handoffs 10 bounds the hand-offs."
            )
        others = sorted(
            {key for key in _keys(condition) if key not in ("max_messages", "any_of", "all_of")}
        )
        if others:
            self.report.append(
                "A hand-off swarm has no termination conditions; these were left out: "
                + ", ".join(others)
                + "."
            )
        return node(
            "team",
            "handoff",
            300,
            0,
            agents=members,
            start_agent=members[0],
            max_handoffs=max_handoffs,
            output_variable="transcript",
        )


def _is_bounded(condition: dict[str, Any]) -> bool:
    try:
        return termination_is_bounded(_TERMINATION.validate_python(condition))
    except PydanticError:
        return False


def _find(condition: Any, key: str) -> list[int]:
    if isinstance(condition, dict):
        found = [condition[key]] if isinstance(condition.get(key), int) else []
        for value in condition.values():
            if isinstance(value, list):
                for part in value:
                    found += _find(part, key)
        return found
    return []


def _keys(condition: Any) -> set[str]:
    if not isinstance(condition, dict):
        return set()
    found = set(condition)
    for value in condition.values():
        if isinstance(value, list):
            for part in value:
                found |= _keys(part)
    return found


def autogen_import(*, workspace: Workspace, user: User | None, document: Any) -> ImportResult:
    """Creates the AutoGen team's agents and a workflow for it; see `ImportResult.report`."""
    return _Importer(workspace=workspace, user=user, document=document).run()


def autogen_graph_import(
    *, workspace: Workspace, user: User | None, document: Any
) -> tuple[dict[str, Any], list[Agent], list[str], list[str]]:
    """The AutoGen team's agents created in `workspace`, and its graph: (graph, agents created,
    warnings, what could not be mapped). The builder loads the graph into a draft."""
    importer = _Importer(workspace=workspace, user=user, document=document)
    with transaction.atomic():
        graph, created = importer.graph()
    return graph, created, importer.warnings, importer.report
