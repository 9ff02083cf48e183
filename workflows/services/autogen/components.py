"""AutoGen agents, model clients and tools as A2A Studio agent configs.

Every choice that changes what a team does is written to the report; a tool from a file is
never run, and a FunctionTool is mapped onto a built-in tool only when the built-in takes the same
arguments — otherwise the model would call it in a shape the built-in refuses.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

from a2a_site.accounts.models import User, Workspace
from agents.tools.registry import builtin_registry
from workflows.graph.nodes import PERSON_PREFIX
from workflows.services.transfer import ProviderChooser, model_on

MODEL_CLIENTS = {
    "OpenAIChatCompletionClient": "openai",
    "AzureOpenAIChatCompletionClient": "azure",
    "AnthropicChatCompletionClient": "anthropic",
    "OllamaChatCompletionClient": "ollama",
}
# AutoGen's own defaults, used when a file leaves them out.
AUTOGEN_DEFAULT_SYSTEM_MESSAGE = (
    "You are a helpful AI assistant. Solve tasks using your tools. Reply with TERMINATE when the "
    "task has been completed."
)
AUTOGEN_DEFAULT_DESCRIPTION = "An agent that provides assistance with ability to use tools."
AUTOGEN_USER_DESCRIPTION = "A human user"
_AGENT_KEYS_MAPPED = {
    "name",
    "description",
    "system_message",
    "model_client",
    "tools",
    "workbench",
    "handoffs",
    "max_tool_iterations",
    "reflect_on_tool_use",
    "tool_call_summary_format",
    # Streaming is how a reply travels, not what it says; runs here always stream.
    "model_client_stream",
    "model_context",
    "metadata",
}
_CLIENT_KEYS_MAPPED = {"model", "temperature", "max_tokens", "top_p", "seed"}
# Where a client keeps its endpoint or credentials: set on the provider, never taken from a file.
_CLIENT_KEYS_PROVIDER = {"api_key", "base_url", "azure_endpoint", "api_version", "azure_deployment"}
_WORKBENCHES = {"StaticWorkbench", "StaticStreamWorkbench"}


def short(provider: Any) -> str:
    """'autogen_agentchat.teams.Swarm' → 'Swarm'; AutoGen also accepts the short names."""
    return str(provider or "").rsplit(".", 1)[-1]


def obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@dataclass
class Notes:
    # Choices made for the user (providers substituted, keys not imported).
    warnings: list[str] = field(default_factory=list)
    # Each way the imported team differs from the team in the file.
    report: list[str] = field(default_factory=list)


@dataclass
class Participant:
    ref: str
    name: str
    description: str
    config: dict[str, Any]
    handoffs: list[str]
    # Hand-offs to someone outside the team, such as "user"; the team importer decides.
    outside: list[str] = field(default_factory=list)
    # A UserProxyAgent: a person member of a group chat, not an agent.
    person: bool = False


def function_parameters(source: Any) -> list[str] | None:
    """The parameter names of the function a FunctionTool's source defines, or None."""
    try:
        tree = ast.parse(str(source or ""))
    except (SyntaxError, ValueError, RecursionError):
        return None
    for statement in tree.body:
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
            arguments = statement.args
            return [
                argument.arg
                for argument in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs)
            ]
    return None


class ComponentImporter:
    def __init__(self, *, workspace: Workspace, user: User | None, notes: Notes) -> None:
        self.notes = notes
        self.chooser = ProviderChooser(workspace=workspace, user=user, warnings=notes.warnings)
        self.registry = builtin_registry()

    # --- Model clients --------------------------------------------------------------------------

    def model(self, client: Any, who: str) -> tuple[dict[str, str], dict[str, Any]]:
        """The agent's model choice and the parameters kept from an AutoGen model client."""
        report = self.notes.report
        if not isinstance(client, dict):
            report.append(f"{who}: no model client; the workspace's provider is used.")
            client = {}
        config = obj(client.get("config"))
        kind = MODEL_CLIENTS.get(short(client.get("provider")))
        if client and kind is None:
            report.append(
                f"{who}: the model client “{client.get('provider')}” is not supported; "
                "another provider is used."
            )
        if config.get("api_key"):
            self.notes.warnings.append(
                f"{who}: the API key in the file was not imported; enter keys in the provider "
                "(Providers page), where they are stored encrypted."
            )
        for key in sorted((_CLIENT_KEYS_PROVIDER - {"api_key", "azure_deployment"}) & set(config)):
            report.append(
                f"{who}: the model client's {key} was not imported; set it on the provider."
            )
        for key in sorted(set(config) - _CLIENT_KEYS_MAPPED - _CLIENT_KEYS_PROVIDER):
            report.append(f"{who}: the model client's {key} is not supported and was left out.")
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
                    report.append(f"{who}: {key} {value} is out of range and was left out.")
        for key in ("max_tokens", "seed"):
            value = config.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                params[key] = value
        return {"provider_id": str(provider.pk), "model": model_on(provider, model)}, params

    # --- Tools ----------------------------------------------------------------------------------

    def tool_components(self, config: dict[str, Any], who: str) -> list[Any]:
        """The tools listed directly and those inside static workbenches (AutoGen ≥ 0.6)."""
        found = list(config.get("tools") or []) if isinstance(config.get("tools"), list) else []
        benches = config.get("workbench")
        for bench in benches if isinstance(benches, list) else [benches] if benches else []:
            kind = short(obj(bench).get("provider"))
            if kind in _WORKBENCHES:
                found += list(obj(obj(bench).get("config")).get("tools") or [])
            else:
                self.notes.report.append(
                    f"{who}: the workbench {kind or 'without a provider'} (an MCP server or "
                    "another tool source) was not imported; add its tools to the agent here."
                )
        return found

    def tools(self, components: list[Any], who: str) -> list[str]:
        found: list[str] = []
        for tool in components:
            tool = obj(tool)
            config = obj(tool.get("config"))
            name = str(config.get("name") or tool.get("label") or "unnamed")
            kind = short(tool.get("provider")) or "a tool"
            mapped = self.builtin_for(name, kind, config, who)
            if mapped and mapped not in found:
                found.append(mapped)
        return found

    def builtin_for(self, name: str, kind: str, config: dict[str, Any], who: str) -> str | None:
        report = self.notes.report
        if name not in self.registry:
            report.append(
                f"{who}: the tool “{name}” ({kind}) was not imported: A2A Studio does not run "
                f"tool code from a file, and has no built-in tool of that name. Built-in tools "
                f"are {', '.join(self.registry.names())}."
            )
            return None
        parameters = self.registry.get(name).spec.parameters
        accepted = set(parameters.get("properties") or {})
        required = set(parameters.get("required") or [])
        wanted = function_parameters(config.get("source_code")) if kind == "FunctionTool" else None
        if wanted is None or not (required <= set(wanted) <= accepted):
            theirs = ", ".join(wanted) if wanted else "unknown"
            ours = ", ".join(sorted(accepted)) or "none"
            report.append(
                f"{who}: the tool “{name}” ({kind}) was not imported: its arguments ({theirs}) "
                f"differ from those of the built-in {name} ({ours}), so calls written for it "
                "would fail. Give the agent a built-in tool here instead."
            )
            return None
        report.append(
            f"{who}: the tool “{name}” runs as the built-in {name}, which takes the same "
            "arguments; the code in the file is not run."
        )
        return name

    # --- Agents ---------------------------------------------------------------------------------

    def participant(self, component: Any, index: int, names: set[str]) -> Participant | None:
        report = self.notes.report
        if not isinstance(component, dict) or not isinstance(component.get("config"), dict):
            report.append(f"Participant {index} is not an agent component and was skipped.")
            return None
        config = component["config"]
        name = str(config.get("name") or component.get("label") or f"agent_{index}")
        kind = short(component.get("provider"))
        if kind == "UserProxyAgent":
            # A person in the chat: the run waits for their answer on their turn.
            description = str(config.get("description") or AUTOGEN_USER_DESCRIPTION)
            report.append(
                f"Participant “{name}” (UserProxyAgent) is a person here: on its turn the run "
                "waits for an answer given on the run page (AutoGen asks at its console or in "
                "AutoGen Studio's chat)."
            )
            return Participant(PERSON_PREFIX + name, name, description, {}, [], person=True)
        if kind != "AssistantAgent":
            why = {
                "MultimodalWebSurfer": "browsing with a web browser is not supported here",
                "CodeExecutorAgent": "A2A Studio does not run code from a team",
            }.get(kind, "only AssistantAgent is supported")
            report.append(
                f"Participant “{name}” is a {kind or 'component without a provider'}, which was "
                f"skipped ({why}); the team runs without it."
            )
            return None
        who = f"Agent “{name}”"
        model, params = self.model(config.get("model_client"), who)
        if "system_message" not in config:
            system_message = AUTOGEN_DEFAULT_SYSTEM_MESSAGE
        else:
            system_message = str(config.get("system_message") or "")
        tools = self.tools(self.tool_components(config, who), who)
        agent_config: dict[str, Any] = {
            "system_message": system_message,
            "model": model,
            **params,
            "tools": tools,
        }
        if not system_message.strip():
            agent_config["role"] = "a helpful assistant"
            report.append(f"{who}: no system message; the role “a helpful assistant” is used.")
        iterations = config.get("max_tool_iterations")
        if isinstance(iterations, int) and 1 <= iterations <= 50:
            agent_config["max_tool_iterations"] = iterations
        if tools and not config.get("reflect_on_tool_use"):
            # reflect_on_tool_use False: AutoGen's message is the formatted tool result itself.
            report.append(
                f"{who}: after a tool call AutoGen answers with the tool's result as written "
                f"(tool_call_summary_format “{config.get('tool_call_summary_format') or '{result}'}"
                "”); here the agent writes its answer from the result."
            )
        context = obj(config.get("model_context"))
        if context and short(context.get("provider")) != "UnboundedChatCompletionContext":
            report.append(
                f"{who}: the model context {short(context.get('provider'))} is not supported; "
                "the agent sees the whole conversation."
            )
        handoffs: list[str] = []
        outside: list[str] = []
        for handoff in config.get("handoffs") or []:
            target = handoff.get("target") if isinstance(handoff, dict) else handoff
            if isinstance(target, str) and target in names and target != name:
                handoffs.append(target)
            else:
                outside.append(str(target))
        agent_config["handoff_targets"] = handoffs
        for key in sorted(set(config) - _AGENT_KEYS_MAPPED):
            if config[key] not in (None, False, [], {}, ""):
                report.append(f"{who}: {key} is not supported and was left out.")
        description = str(config.get("description") or AUTOGEN_DEFAULT_DESCRIPTION)
        return Participant(name, name, description, agent_config, handoffs, outside)
