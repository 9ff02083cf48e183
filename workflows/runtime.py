"""What the engine calls out to, on the Django side: agents through the gateway, tools, sub-runs.

Agents run at the version the workflow version pinned when it was published, so a run repeats
what was tested even if someone edits the agent meanwhile.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async

from agents.config import AgentConfig, agent_config_load
from agents.llm import gateway_for_loop
from agents.llm.types import RoutePlan
from agents.models import Agent, AgentVersion
from agents.services.cli_turn import cli_turn
from agents.services.routing import route_plan_for
from agents.services.turn import TurnEvent, agent_turn
from agents.tools.base import ToolContext
from agents.tools.registry import builtin_registry
from workflows.engine.contracts import AgentReply, EventDraft, RunFailed


@dataclass
class _LoadedAgent:
    name: str
    version: int
    config: AgentConfig
    plan: RoutePlan | None
    cli_provider: Any = None


@dataclass
class DjangoAgentRunner:
    run_id: str
    workspace_id: str
    agent_versions: Mapping[str, int]
    ledger: Any = None
    _cache: dict[str, _LoadedAgent] = field(default_factory=dict)

    def _load(self, agent_id: str) -> _LoadedAgent:
        from agents.models import Provider

        agent = Agent.objects.filter(pk=agent_id, workspace_id=self.workspace_id).first()
        if agent is None:
            raise RunFailed(f"Agent {agent_id} no longer exists in this workspace.")
        number = self.agent_versions.get(str(agent_id)) or agent.latest_version
        version = AgentVersion.objects.filter(agent=agent, number=number).first()
        if version is None:
            raise RunFailed(f"Version {number} of agent “{agent.name}” no longer exists.")
        config = agent_config_load(version.config)
        cli = Provider.objects.filter(
            workspace_id=self.workspace_id, pk=config.model.provider_id, kind="cli"
        ).first()
        plan = None if cli else route_plan_for(config, workspace_id=agent.workspace_id)
        return _LoadedAgent(agent.name, number, config, plan, cli)

    async def _get(self, agent_id: str) -> _LoadedAgent:
        loaded = self._cache.get(agent_id)
        if loaded is None:
            loaded = self._cache[agent_id] = await sync_to_async(self._load)(agent_id)
        return loaded

    async def agent_name(self, agent_id: str) -> str:
        return (await self._get(agent_id)).name

    async def turn(
        self,
        *,
        agent_id: str,
        history: list[dict[str, Any]],
        step_key: str,
        instructions: str = "",
        extra_tools: list[dict[str, Any]] | None = None,
        response_schema: dict[str, Any] | None = None,
        on_delta: Callable[[str], Awaitable[None]] | None = None,
    ) -> AgentReply:
        loaded = await self._get(agent_id)
        events: list[EventDraft] = []

        async def on_event(event: TurnEvent) -> None:
            if event.kind == "delta":
                if on_delta is not None:
                    await on_delta(str(event.data["text"]))
            elif event.kind in ("tool_call", "tool_result"):
                events.append(
                    EventDraft(event.kind, {"agent": loaded.name, **event.data}, step_key)
                )

        metadata = {
            "workspace_id": self.workspace_id,
            "run_id": self.run_id,
            "step_key": step_key,
            "agent_id": agent_id,
            "agent_version": loaded.version,
            "source": "run",
        }
        if loaded.cli_provider is not None:
            from agents.ledger import DatabaseLedger

            result = await cli_turn(
                provider=loaded.cli_provider,
                name=loaded.name,
                config=loaded.config,
                history=history,
                ledger=self.ledger or DatabaseLedger(),
                metadata=metadata,
                on_event=on_event,
            )
        else:
            assert loaded.plan is not None
            result = await agent_turn(
                gateway=gateway_for_loop(),
                name=loaded.name,
                config=loaded.config,
                history=history,
                plan=loaded.plan,
                registry=builtin_registry(),
                tool_context=ToolContext(workspace_id=self.workspace_id, run_id=self.run_id),
                metadata=metadata,
                on_event=on_event,
                limit_key=str(agent_id),
                instructions=instructions,
                extra_tools=extra_tools or (),
                response_schema=response_schema,
            )
        new_messages = result.messages[1 + len(history) :]
        last = result.calls[-1] if result.calls else None
        return AgentReply(
            text=result.text,
            messages=new_messages,
            tool_calls=[
                {"id": call.id, "name": call.name, "arguments": call.arguments}
                for call in result.pending_tool_calls
            ],
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
            cost=result.cost,
            model=last.model if last else "",
            deployment=last.deployment_id if last else "",
            events=events,
        )


@dataclass
class RegistryToolRunner:
    run_id: str
    workspace_id: str

    async def call(
        self, name: str, arguments_json: str, *, variables: Mapping[str, Any]
    ) -> tuple[str, bool]:
        context = ToolContext(
            workspace_id=self.workspace_id, run_id=self.run_id, variables=dict(variables)
        )
        result = await builtin_registry().call(name, arguments_json, context)
        return result.content, result.is_error


def tool_arguments(arguments: Any) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(arguments)
