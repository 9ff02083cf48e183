"""What the engine calls out to, on the Django side: agents through the gateway, tools, sub-runs.

Agents run at the version the workflow version pinned when it was published, so a run repeats
what was tested even if someone edits the agent meanwhile.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from a2a_site.db import in_db_thread
from agents.config import AgentConfig, ModelChoice, agent_config_load
from agents.llm import LLMError, gateway_for_loop
from agents.llm.allowance import Allowance, SpendLimit
from agents.llm.capacity import LINE_POLL_S, Waiting
from agents.llm.errors import BudgetExceeded
from agents.llm.types import LLMRequest, LLMResult, RoutePlan
from agents.mcp.tools import McpServerTools, mcp_registry, mcp_server_tools_of
from agents.model_policy import (
    PolicyChoice,
    classifier_choose,
    classifier_messages,
    policy_input,
    rules_choose,
)
from agents.models import Agent, AgentVersion
from agents.selectors import tool_hosts_for
from agents.services.cli_turn import cli_turn
from agents.services.routing import RoutingError, providers_by_id, route_plan_for
from agents.services.turn import TurnEvent, agent_turn
from agents.tools.base import ToolContext
from agents.tools.registry import builtin_registry
from agents.urlpolicy import ToolHosts
from workflows.engine.contracts import (
    AgentReply,
    EventDraft,
    RouteContext,
    RunFailed,
    SpendRefused,
    SpendStop,
)


@dataclass
class _LoadedAgent:
    name: str
    version: int
    config: AgentConfig
    plan: RoutePlan | None
    cli_provider: Any = None
    labels: dict[str, str] = field(default_factory=dict)  # deployment id → human name


def _labels(plan: RoutePlan, providers: Mapping[str, Any]) -> dict[str, str]:
    """Provider names for the plan's deployments ("Fleet / gpu-1" for an Ollama node)."""
    labels = {}
    for route in (plan.primary, *plan.fallbacks):
        for deployment in route.deployments:
            parts = deployment.id.split(":")
            provider = providers.get(parts[0])
            name = provider.name if provider is not None else parts[0]
            if len(parts) == 3 and provider is not None:
                node = next((n for n in provider.nodes.all() if str(n.pk) == parts[1]), None)
                name = f"{name} / {node.name if node else parts[1]}"
            labels[deployment.id] = name
    return labels


class _TurnClock:
    """An agent turn's time limit, moved on by the time its calls wait in line for capacity."""

    def __init__(self, limit_s: float) -> None:
        self.limit_s = limit_s
        self.timer: asyncio.Timeout | None = None
        self.start = asyncio.get_running_loop().time()
        self.before = 0.0  # waited in the turn's earlier lines
        self.current = 0.0  # waited in the present one

    def waiting(self, waited: float) -> None:
        if waited < self.current:  # a new line (the next call of the turn)
            self.before += self.current
        self.current = waited
        if self.timer is not None:
            # The next report comes within one poll: the limit stays ahead of it.
            total = self.before + self.current + LINE_POLL_S * 2
            self.timer.reschedule(self.start + self.limit_s + total)


class AgentTimeout(Exception):
    """An agent's turn outlasted the agent's timeout; the node's error policy decides next."""


# Agent versions never change once saved, so their parsed configs are shared by every run.
_versions_cache: dict[tuple[str, int], tuple[str, AgentConfig]] = {}


@dataclass
class _Resolved:
    """What runs of one workspace resolved for a set of pinned agent versions."""

    tool_hosts: ToolHosts
    agents: dict[str, _LoadedAgent]
    # The workspace's MCP servers and their listed tools (the agents' tools may name them).
    mcp_servers: list[McpServerTools]


# What runs resolved before their first call (the agents at their pinned versions, their route
# plans, the tool host policy), shared by the runs of this process while their workspace's
# runtime stamp stays the same: every change to what it was resolved from moves the stamp
# (agents/stamps.py), and each run reads the stamp when it loads. Keyed by (workspace, stamp,
# pinned versions); the oldest entries go first. Touched on the executor's loop only.
RESOLVED_LIMIT = 256
_resolved: OrderedDict[tuple[str, int, tuple[tuple[str, int], ...]], _Resolved] = OrderedDict()


def resolved_forget() -> None:
    """Empties the process's cache of resolved agents (tests)."""
    _resolved.clear()


def agent_versions_load(
    wanted: Mapping[str, int], workspace_id: str
) -> dict[str, tuple[str, int, AgentConfig]]:
    """(name, version number, config) per agent id; number 0 means the agent's latest."""
    found: dict[str, tuple[str, int, AgentConfig]] = {}
    missing: dict[str, int] = {}
    for agent_id, number in wanted.items():
        cached = _versions_cache.get((str(agent_id), number)) if number else None
        if cached is not None:
            found[str(agent_id)] = (cached[0], number, cached[1])
        else:
            missing[str(agent_id)] = number
    if missing:
        agents = Agent.objects.filter(workspace_id=workspace_id, pk__in=list(missing))
        latest = {str(agent.pk): (agent.name, agent.latest_version) for agent in agents}
        numbers = {agent_id: missing[agent_id] or latest[agent_id][1] for agent_id in latest}
        rows = AgentVersion.objects.filter(agent_id__in=list(latest)).filter(
            number__in=set(numbers.values())
        )
        for row in rows:
            agent_id = str(row.agent_id)
            if numbers.get(agent_id) != row.number:
                continue
            config = agent_config_load(row.config)
            name = latest[agent_id][0]
            _versions_cache[(agent_id, row.number)] = (name, config)
            found[agent_id] = (name, row.number, config)
    return found


@dataclass
class DjangoAgentRunner:
    run_id: str
    workspace_id: str
    agent_versions: Mapping[str, int]
    ledger: Any = None
    # Who and what the calls were for, recorded on each ledger row for the dashboards.
    workflow_id: str = ""
    user_id: str = ""
    _cache: dict[str, _LoadedAgent] = field(default_factory=dict)
    # Read once per run with the agents: a policy changed meanwhile applies to the next run.
    _tool_hosts: ToolHosts | None = None
    # The workspace's MCP servers and their listed tools, read with the agents.
    _mcp_servers: list[McpServerTools] | None = None
    # The run's priority (0 low, 1 normal, 2 high): its place in a deployment's line.
    priority: int = 1
    # Route plans of the models agents' policies chose, by (agent, provider, model, fallbacks).
    _policy_plans: dict[tuple[str, str, str, bool], RoutePlan] = field(default_factory=dict)
    # Each agent's "cost budget per run", as a limit over its calls in this run.
    _agent_limits: dict[str, SpendLimit] = field(default_factory=dict)
    # The workspace's runtime stamp as the run's load read it; None: resolve for this run only.
    runtime_stamp: int | None = None

    def _agent_spent(self, agent_id: str) -> Decimal:
        """What the agent's calls in this run cost so far (a resumed run counts its past)."""
        from django.db.models import Sum

        from agents.models import LedgerEntry

        total = LedgerEntry.objects.filter(
            run_id=self.run_id, source__agent_id=str(agent_id)
        ).aggregate(total=Sum("cost"))["total"]
        return Decimal(total or 0)

    def _waiting(
        self,
        loaded: _LoadedAgent,
        on_wait: Callable[[str, int, float], Awaitable[None]] | None,
        clock: _TurnClock,
    ) -> Waiting:
        labels = loaded.labels

        async def told(deployment_id: str, position: int, waited: float) -> None:
            clock.waiting(waited)
            if on_wait is not None:
                await on_wait(labels.get(deployment_id, deployment_id), position, waited)

        return Waiting(
            max_wait_s=float(loaded.config.max_queue_wait_s),
            priority=self.priority,
            on_wait=told,
        )

    async def _allowance(
        self, agent_id: str, loaded: _LoadedAgent, allowance: Allowance | None
    ) -> Allowance | None:
        budget = loaded.config.cost_budget_usd
        if budget is None:
            return allowance
        limit = self._agent_limits.get(agent_id)
        if limit is None:
            spent = await in_db_thread(self._agent_spent, agent_id)
            limit = self._agent_limits[agent_id] = SpendLimit(
                f"{loaded.name}'s cost budget per run of ${Decimal(str(budget))}",
                cost=Decimal(str(budget)) - spent,
                key=f"agent-budget:{agent_id}",
            )
        return (allowance or Allowance()).with_limits(limit)

    def _load_all(self) -> None:
        """Every agent the version pinned, with their providers, in a few queries."""
        if self._tool_hosts is None:
            self._tool_hosts = tool_hosts_for(self.workspace_id)
        if self._mcp_servers is None:
            self._mcp_servers = mcp_server_tools_of(self.workspace_id)
        wanted = [agent_id for agent_id in self.agent_versions if agent_id not in self._cache]
        versions = agent_versions_load(
            {agent_id: self.agent_versions[agent_id] for agent_id in wanted}, self.workspace_id
        )
        provider_ids = {
            choice.provider_id
            for _, _, config in versions.values()
            for choice in (config.model, *config.fallbacks)
        }
        providers = providers_by_id(self.workspace_id, provider_ids)
        for agent_id, (name, number, config) in versions.items():
            provider = providers.get(config.model.provider_id)
            if provider is not None and provider.kind == "cli":
                self._cache[agent_id] = _LoadedAgent(name, number, config, None, provider)
                continue
            try:
                plan = route_plan_for(config, workspace_id=self.workspace_id, providers=providers)
            except RoutingError:
                continue  # reported when a step actually needs that agent
            self._cache[agent_id] = _LoadedAgent(
                name, number, config, plan, labels=_labels(plan, providers)
            )

    def _load(self, agent_id: str) -> _LoadedAgent:
        self._load_all()
        loaded = self._cache.get(agent_id)
        if loaded is not None:
            return loaded
        versions = agent_versions_load({agent_id: 0}, self.workspace_id)
        if agent_id not in versions:
            raise RunFailed(f"Agent {agent_id} no longer exists in this workspace.")
        name, number, config = versions[agent_id]
        from agents.models import Provider

        cli = Provider.objects.filter(
            workspace_id=self.workspace_id, pk=config.model.provider_id, kind="cli"
        ).first()
        plan = None if cli else route_plan_for(config, workspace_id=self.workspace_id)
        loaded = self._cache[agent_id] = _LoadedAgent(name, number, config, plan, cli)
        return loaded

    def _resolved_key(self) -> tuple[str, int, tuple[tuple[str, int], ...]] | None:
        if self.runtime_stamp is None:
            return None
        versions = tuple(sorted((str(a), int(n)) for a, n in self.agent_versions.items()))
        return (str(self.workspace_id), self.runtime_stamp, versions)

    async def _get(self, agent_id: str) -> _LoadedAgent:
        loaded = self._cache.get(agent_id)
        if loaded is not None:
            return loaded
        key = self._resolved_key()
        shared = _resolved.get(key) if key is not None else None
        if shared is not None and self._tool_hosts is None:
            _resolved.move_to_end(key)  # type: ignore[arg-type]
            self._tool_hosts = shared.tool_hosts
            self._mcp_servers = shared.mcp_servers
            self._cache.update(shared.agents)
            loaded = self._cache.get(agent_id)
            if loaded is not None:
                return loaded
        first = self._tool_hosts is None
        loaded = await in_db_thread(self._load, agent_id)
        if first and key is not None and self._tool_hosts is not None:
            # What `_load_all` resolved (an agent whose route failed is not kept: its step
            # reports why, each run).
            _resolved[key] = _Resolved(
                self._tool_hosts, dict(self._cache), list(self._mcp_servers or [])
            )
            while len(_resolved) > RESOLVED_LIMIT:
                _resolved.popitem(last=False)
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
        allowance: Allowance | None = None,
        on_wait: Callable[[str, int, float], Awaitable[None]] | None = None,
        route: RouteContext | None = None,
    ) -> AgentReply:
        loaded = await self._get(agent_id)
        events: list[EventDraft] = []
        allowance = await self._allowance(agent_id, loaded, allowance)
        clock = _TurnClock(float(loaded.config.timeout_s))

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
            "workflow_id": self.workflow_id,
            "user_id": self.user_id,
        }
        plan = loaded.plan
        choice: PolicyChoice | None = None
        classifier: LLMResult | None = None
        try:
            if loaded.config.model_policy is not None and loaded.cli_provider is None:
                choice, classifier = await self._policy_choice(
                    agent_id, loaded, history, route or RouteContext(), metadata, allowance
                )
                plan = await self._plan_for(agent_id, loaded, choice.model)
                metadata["model_policy"] = choice.reason
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
                assert plan is not None
                registry = (
                    mcp_registry(self._mcp_servers) if self._mcp_servers else builtin_registry()
                )
                missing = [name for name in loaded.config.tools if name not in registry]
                if missing:
                    raise RunFailed(
                        f"{loaded.name} is given tools no MCP server of the workspace offers "
                        f"now: {', '.join(missing)}. List the server's tools again, or untick "
                        "them on the agent's page."
                    )
                turn = agent_turn(
                    gateway=gateway_for_loop(),
                    name=loaded.name,
                    config=loaded.config,
                    history=history,
                    plan=plan,
                    registry=registry,
                    # The step key lets MCP tools record their results for a resumed run.
                    tool_context=tool_context_with(
                        self._tool_hosts,
                        workspace_id=self.workspace_id,
                        run_id=self.run_id,
                        step_id=step_key,
                    ),
                    metadata=metadata,
                    on_event=on_event,
                    limit_key=str(agent_id),
                    instructions=instructions,
                    extra_tools=extra_tools or (),
                    response_schema=response_schema,
                    allowance=allowance,
                    waiting=self._waiting(loaded, on_wait, clock),
                    # Tokens stream only to someone: a viewer of the run, or the agent's own
                    # setting; otherwise the message shows once complete.
                    quiet=on_delta is None and not loaded.config.stream,
                )
                try:
                    # The agent's own time limit covers its whole turn, tool calls included,
                    # but not its time waiting in line for capacity (the clock moves it on).
                    async with asyncio.timeout(loaded.config.timeout_s) as clock.timer:
                        result = await turn
                except TimeoutError:
                    raise AgentTimeout(
                        f"{loaded.name} did not finish its turn within {loaded.config.timeout_s} s."
                    ) from None
        except BudgetExceeded as refused:
            # Not made: the engine ends the step and lets the budget decide the run's fate.
            key = refused.key or "spend-check"
            budget_id = key.split(":")[1] if key.startswith("spend-limit:") else ""
            stop = SpendStop(refused.message, key, refused.pause, budget_id)
            raise SpendRefused(stop) from None
        except LLMError as error:
            if error.kind == "no_deployment":
                # Named as the person knows them, not by their ids.
                for deployment_id, label in loaded.labels.items():
                    error.message = error.message.replace(deployment_id, label)
                error.args = (error.message,)
            if error.limit != "deadline":
                raise
            # The run's time limit passed before the call could answer: the run ends there.
            raise SpendRefused(SpendStop(error.message, "time-limit")) from None
        new_messages = result.messages[1 + len(history) :]
        last = result.calls[-1] if result.calls else None
        # The classifier's call belongs to this turn: its usage and cost count with it.
        calls = [*([classifier] if classifier is not None else []), *result.calls]
        return AgentReply(
            text=result.text,
            messages=new_messages,
            tool_calls=[
                {"id": call.id, "name": call.name, "arguments": call.arguments}
                for call in result.pending_tool_calls
            ],
            prompt_tokens=sum(call.usage.prompt_tokens for call in calls)
            if classifier is not None
            else result.prompt_tokens,
            completion_tokens=sum(call.usage.completion_tokens for call in calls)
            if classifier is not None
            else result.completion_tokens,
            cost=result.cost + (classifier.cost if classifier is not None else 0),
            model=last.model if last else "",
            deployment=loaded.labels.get(last.deployment_id, last.deployment_id) if last else "",
            events=events,
            latency_ms=sum(call.latency_ms for call in calls),
            retries=sum(call.retries for call in calls),
            fallbacks=sum(call.fallbacks for call in calls),
            unpriced_calls=sum(call.price_source == "unknown" for call in calls),
            stopped=result.stopped,
            policy=choice.reason if choice is not None else "",
        )

    async def _policy_choice(
        self,
        agent_id: str,
        loaded: _LoadedAgent,
        history: list[dict[str, Any]],
        route: RouteContext,
        metadata: Mapping[str, Any],
        allowance: Allowance | None,
    ) -> tuple[PolicyChoice, LLMResult | None]:
        """The model this turn uses under the agent's policy, and the classifier's call."""
        config = loaded.config
        policy = config.model_policy
        assert policy is not None
        text = policy_input(history)
        if policy.kind == "rules":
            chosen = rules_choose(
                policy,
                config.model,
                text=text,
                variables=route.variables,
                role=route.role,
                node_type=route.node_type,
            )
            return chosen, None
        assert policy.classifier is not None
        plan = await self._plan_for(agent_id, loaded, policy.classifier, fallbacks=False)
        request = LLMRequest(
            messages=classifier_messages(text),
            temperature=0,
            max_tokens=5,
            stream=False,
            metadata={**metadata, "purpose": "model policy classifier"},
        )
        try:
            call = await gateway_for_loop().complete(request, plan, allowance=allowance)
        except BudgetExceeded:
            raise  # the run's limits decide, as for the turn's own calls
        except LLMError as error:
            if error.limit == "deadline":
                raise
            return classifier_choose(config, None, error=str(error)), None
        return classifier_choose(config, call.text), call

    async def _plan_for(
        self, agent_id: str, loaded: _LoadedAgent, choice: ModelChoice, *, fallbacks: bool = True
    ) -> RoutePlan:
        """The route plan of `choice` in place of the agent's model (its fallbacks kept, unless
        it is the classifier's), built once per run."""
        key = (agent_id, choice.provider_id, choice.model, fallbacks)
        cached = self._policy_plans.get(key)
        if cached is None:
            config = loaded.config.model_copy(
                update={"model": choice, **({} if fallbacks else {"fallbacks": []})}
            )

            def build() -> tuple[RoutePlan, dict[str, str]]:
                providers = providers_by_id(
                    self.workspace_id, [c.provider_id for c in (config.model, *config.fallbacks)]
                )
                built = route_plan_for(config, workspace_id=self.workspace_id, providers=providers)
                return built, _labels(built, providers)

            try:
                built, labels = await in_db_thread(build)
            except RoutingError as error:
                raise RunFailed(f"{loaded.name}'s model policy: {error}") from None
            loaded.labels.update(labels)
            self._policy_plans[key] = cached = built
        return cached


@dataclass
class RegistryToolRunner:
    run_id: str
    workspace_id: str

    async def call(
        self, name: str, arguments_json: str, *, variables: Mapping[str, Any]
    ) -> tuple[str, bool]:
        hosts = await in_db_thread(tool_hosts_for, self.workspace_id)
        context = tool_context_with(
            hosts, workspace_id=self.workspace_id, run_id=self.run_id, variables=dict(variables)
        )
        servers = await in_db_thread(mcp_server_tools_of, self.workspace_id)
        registry = mcp_registry(servers) if servers else builtin_registry()
        result = await registry.call(name, arguments_json, context)
        return result.content, result.is_error


def tool_context_with(hosts: ToolHosts | None, **fields: Any) -> ToolContext:
    """A tool context that lets tools reach what the workspace's tool host policy allows."""
    hosts = hosts or ToolHosts()
    return ToolContext(allowed_hosts=hosts.private, only_hosts=hosts.only, **fields)


def tool_arguments(arguments: Any) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(arguments)
