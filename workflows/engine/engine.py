"""The run engine: walks a workflow graph, one durable step at a time, as plain asyncio.

Resume is replay: `run()` always walks from the start node; a step whose key is already recorded
is not executed again, its recorded output, branch and variable updates are applied instead. Step
keys come only from graph positions, so a resumed run meets the same keys in the same places:

* `node` on the first visit; `node@loop:i` inside loop iteration i (nested: `node@outer:i@inner:j`);
  `node[b]` inside branch b (edge order) of a parallel node; suffixes compose in walking order.
* Team sub-steps: `chat/turn-n` (an agent's turn, or a person member's answer),
  `chat/select-n` and its retries `chat/select-n/retry-k` (llm selector), `chat/human-n`,
  `desk/agent-i-n`, `desk/human-n` (a hand-off to the user), `poll/voter-i`, `poll/chair`,
  `agree/term-t/propose`, `agree/term-t/member-i`, `agree/term-t/elect[-i]` (consensus); the
  team node's own key then records its result, so a replay of a finished team node skips it
  whole. Budget pauses wait on `budget@n` (n-th budget's worth).

Rules where a choice had to be made:

* An end reached inside a parallel branch ends the run once every branch has finished; the first
  such branch in edge order gives the output, and the join is not run.
* A failing branch (policy "fail") cancels its siblings and fails the run, except under a
  first_success join, which tolerates it. A branch waiting for a person lets the others finish.
* A hand-off swarm that would exceed `max_handoffs` is a node error: its error policy decides.
* A vote: a single leading option wins when it meets the quorum; tied leaders go to the tie
  policy; otherwise the output is `NO_DECISION`. Vote nodes have one output, no per-option branch.
* The start node passes the run's inputs on as text: a single input as its text, several as
  "name: value" lines; each input is also a template name of its own.
* Start, end, parallel and loop nodes are pure and re-done on replay; max_steps counts every node
  visit, replayed ones included, so a resumed run stops where the first one would have.

Forks ride on replay: a fork starts with copies of the parent's steps that had finished before
the chosen step started (`workflows/services/fork.py` decides which, and refuses what replay
cannot reproduce), so the walk replays them and executes from the chosen step on. The variable
values a person edited are set, replacing (no reducer), when the walk reaches the chosen step's
key — before that step runs or replays, so a fork resumed after a wait sets them at the same
place again. A reused step replayed after that point (a sibling branch) leaves those variables
alone: the values set already include its updates. A fork of a fork carries its parent's edits
that lie before its own point, so each is set where it was.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from a2a_site.tracing import step_span
from agents.llm.allowance import Allowance, SpendLimit
from agents.llm.redaction import redact_secrets
from workflows.engine.contracts import (
    AgentReply,
    AgentRunner,
    EventDraft,
    ForkEdit,
    LeaseLost,
    LiveSink,
    RemoteAgentRunner,
    RouteContext,
    RunSnapshot,
    RunStore,
    RunWaiting,
    SpendGate,
    SpendRefused,
    SpendStop,
    StepRecord,
    SubworkflowRunner,
    ToolRunner,
)
from workflows.engine.nodes import (
    EXECUTORS,
    NodeFailed,
    NodeResult,
    ParsedNode,
    Reached,
    RunStop,
    Scope,
    StepDone,
    basic,  # noqa: F401  (registers executors)
    consensus,  # noqa: F401
    flow,  # noqa: F401
    human,  # noqa: F401
    output_update,
    remote,  # noqa: F401
    teams,  # noqa: F401
)
from workflows.engine.nodes.human import is_approval
from workflows.engine.templating import render
from workflows.graph import NODE_TYPES, Edge, Graph, GraphError, graph_load

# Nodes that are pure bookkeeping: no model, tool or human, so nothing to record or retry.
_STRUCTURAL = frozenset({"start", "end", "parallel", "loop"})
CANCELLED_REASON = "Cancelled by a user"
CAPACITY_REPORT_EVERY_S = 1.0
# A step key begins with its node's id; loop, branch and sub-step suffixes follow.
_NODE_OF_KEY = re.compile(r"[^@\[/]*")


@dataclass(frozen=True)
class RunOutcome:
    status: str  # "succeeded" | "failed" | "cancelled" | "waiting"
    reason: str = ""
    output: Any = None


class Engine:
    def __init__(
        self,
        store: RunStore,
        agents: AgentRunner,
        tools: ToolRunner,
        subworkflows: SubworkflowRunner,
        live: LiveSink,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        max_steps_default: int = 200,
        heartbeat: float | None = 1.0,
        spend_gate: SpendGate | None = None,
        remote_agents: RemoteAgentRunner | None = None,
    ) -> None:
        self.store = store
        self.agents = agents
        self.tools = tools
        self.subworkflows = subworkflows
        self.live = live
        self.clock = clock
        self.sleep = sleep
        self.max_steps_default = max_steps_default
        # Seconds between control checks while a step is in flight; None turns them off.
        self.heartbeat = heartbeat
        # Budgets over the run (workspace, workflow, person), asked between steps.
        self.spend_gate = spend_gate
        # Remote A2A agents (remote_agent nodes); None where none can be called.
        self.remote_agents = remote_agents

    async def run(self, run_id: str, *, snapshot: RunSnapshot | None = None) -> RunOutcome:
        """Runs or resumes `run_id`; the caller stores the outcome. Raises LeaseLost.

        `snapshot` is what the caller has just loaded from this store, if it has; it is not
        read again."""
        if snapshot is None or snapshot.run_id != str(run_id):
            snapshot = await self.store.load(run_id)
        try:
            ctx = RunContext(self, snapshot)
        except (GraphError, ValueError) as exc:
            return RunOutcome("failed", f"The workflow graph cannot run: {exc}")
        watcher = (
            asyncio.create_task(ctx.watch(self.heartbeat)) if self.heartbeat is not None else None
        )
        try:
            reached = await ctx.walk(ctx.start_id, Scope())
            ctx.stop_at_limit()
            return RunOutcome("succeeded", "", ctx.final_output(reached))
        except RunWaiting:
            return RunOutcome("waiting", "Waiting for a person")
        except RunStop as stop:
            return RunOutcome(stop.status, redact_secrets(stop.reason))
        finally:
            if watcher is not None:
                watcher.cancel()


def variables_apply(
    variables: dict[str, Any], updates: Mapping[str, Any], reducers: Mapping[str, str]
) -> None:
    """Applies a step's variable updates with each variable's reducer (the store shows the same)."""
    for name, value in updates.items():
        reducer = reducers.get(name, "replace")
        current = variables.get(name)
        if reducer == "append":
            variables[name] = [*(current or []), value]
        elif reducer == "merge" and isinstance(value, Mapping):
            variables[name] = {**(current or {}), **value}
        else:
            variables[name] = value


@dataclass
class RunContext:
    """One run's state while it is walked; executors reach the outside world through it."""

    engine: Engine
    snapshot: RunSnapshot
    graph: Graph = field(init=False)
    nodes: dict[str, ParsedNode] = field(init=False)
    outgoing: dict[str, list[Edge]] = field(init=False)
    variables: dict[str, Any] = field(init=False)
    reducers: dict[str, str] = field(init=False)
    completed: dict[str, StepRecord] = field(init=False)
    start_id: str = field(init=False)
    max_steps: int = field(init=False)
    visits: int = 0
    tokens_live: int = 0
    cost_live: Decimal = Decimal(0)
    lease_lost: bool = False
    # A fork's edits by step key, and for each variable set so, the steps it already includes.
    fork_edits: dict[str, ForkEdit] = field(default_factory=dict)
    pinned: dict[str, frozenset[str]] = field(default_factory=dict)
    cancel_seen: bool = False
    attempts: dict[str, int] = field(default_factory=dict)
    node_outputs: dict[str, Any] = field(default_factory=dict)
    inflight: set[asyncio.Task[Any]] = field(default_factory=set)
    waits_requested: set[str] = field(default_factory=set)
    names: dict[str, str] = field(default_factory=dict)
    # The run's token and cost budgets as limits over every call (agents/llm/allowance.py).
    spend_limits: tuple[SpendLimit, ...] = ()
    # Why a limit cut an answer short: the run stops at its next check (or its end).
    limit_stop: str = ""

    def __post_init__(self) -> None:
        self.graph = graph_load(dict(self.snapshot.graph))
        self.nodes = {}
        for node in self.graph.nodes:
            node_type = NODE_TYPES.get(node.type)
            if node_type is None or node.type not in EXECUTORS:
                raise ValueError(f"node '{node.id}' has unknown type '{node.type}'")
            config = node_type.config_model.model_validate(node.config)
            self.nodes[node.id] = ParsedNode(node.id, node.type, node.label, config)
        self.outgoing = {node_id: [] for node_id in self.nodes}
        for edge in self.graph.edges:
            self.outgoing[edge.source].append(edge)
        starts = [node.id for node in self.nodes.values() if node.type == "start"]
        if len(starts) != 1:
            raise ValueError("a graph needs exactly one start node")
        self.start_id = starts[0]
        self.variables = {variable.name: variable.default for variable in self.graph.variables}
        self.reducers = {variable.name: variable.reducer for variable in self.graph.variables}
        self.completed = dict(self.snapshot.completed)
        self.fork_edits = {edit.step: edit for edit in self.snapshot.fork_edits}
        settings = self.snapshot.graph.get("settings")
        has_own = isinstance(settings, Mapping) and "max_steps" in settings
        self.max_steps = self.graph.settings.max_steps if has_own else self.engine.max_steps_default
        self.spend_limits = self.run_spend_limits()

    def run_spend_limits(self) -> tuple[SpendLimit, ...]:
        """The run's budgets as limits over its calls: what is left of them, counting one more
        budget's worth for each approval a person gave to go on (see `check_control`)."""
        snapshot = self.snapshot
        pause = snapshot.budget_action == "pause"
        approved = 0
        while is_approval(snapshot.answers.get(f"budget@{approved + 1}")):
            approved += 1
        limits = []
        if snapshot.token_budget is not None:
            left = snapshot.token_budget * (approved + 1) - snapshot.tokens_used
            label = f"The run's token budget of {snapshot.token_budget}"
            limits.append(SpendLimit(label, tokens=left, key="budget", pause=pause))
        if snapshot.cost_budget is not None:
            left_cost = snapshot.cost_budget * (approved + 1) - snapshot.cost_used
            label = f"The run's cost budget of ${snapshot.cost_budget}"
            limits.append(SpendLimit(label, cost=left_cost, key="budget", pause=pause))
        return tuple(limits)

    def allowance(self) -> Allowance | None:
        """The limits over the next call: the run's budgets and what is left of its time."""
        deadline = self.snapshot.deadline
        if deadline is None and not self.spend_limits:
            return None
        at = None
        if deadline is not None:
            at = asyncio.get_running_loop().time() + (deadline - self.engine.clock())
        reason = f"Run timed out after {self.graph.settings.timeout_s} s"
        return Allowance(self.spend_limits, at, reason)

    @property
    def run_id(self) -> str:
        return self.snapshot.run_id

    # Templates and variables

    def template_context(self, scope: Scope) -> dict[str, Any]:
        context: dict[str, Any] = {**self.snapshot.inputs, **self.variables, "last": scope.last}
        context.setdefault("input", scope.last)
        return context

    def render(self, template: str, scope: Scope, events: list[EventDraft], key: str) -> str:
        rendered = render(template, self.template_context(scope))
        if rendered.missing:
            names = ", ".join(rendered.missing)
            events.append(
                EventDraft("log", {"level": "warning", "message": f"Unknown names: {names}"}, key)
            )
        return rendered.text

    def apply(self, updates: Mapping[str, Any]) -> None:
        variables_apply(self.variables, updates, self.reducers)

    def replay(self, done: StepRecord) -> None:
        """Re-applies a recorded step's updates, except to a variable a fork set after that
        step had finished (a sibling branch replayed late): the value set includes them."""
        updates = done.variables
        if self.pinned:
            updates = {
                name: value
                for name, value in updates.items()
                if done.key not in self.pinned.get(name, ())
            }
        self.apply(updates)

    def at_fork_edit(self, key: str) -> None:
        edit = self.fork_edits.get(key)
        if edit is not None:
            self.variables.update(edit.variables)
            for name in edit.variables:
                self.pinned[name] = edit.before

    # Walking

    def targets(self, node_id: str, branch: str | None) -> list[str]:
        return [edge.target for edge in self.outgoing[node_id] if edge.source_handle == branch]

    async def walk(self, node_id: str, scope: Scope) -> Reached:
        while True:
            node = self.nodes[node_id]
            if scope.join == node_id:
                return Reached("join", node_id, scope.last)
            if node_id in scope.loops:
                return Reached("loop_back", node_id, scope.last)
            self.count_visit()
            if node.type == "end":
                return Reached("end", node_id, self.end_output(node, scope))
            result = await self.run_node(node, scope)
            if result.finished is not None:
                return result.finished
            source = result.continue_from or node_id
            self.node_outputs[source] = result.output
            following = self.targets(source, result.branch)
            if not following:
                return Reached("dead_end", source, result.output)
            node_id = following[0]
            scope = scope.after(result.output)

    def count_visit(self) -> None:
        # Replayed visits count too, so a resumed run stops at the same place.
        self.visits += 1
        if self.visits > self.max_steps:
            raise RunStop("failed", f"Stopped after {self.max_steps} steps (max_steps)")

    def end_output(self, node: ParsedNode, scope: Scope) -> Any:
        wanted = getattr(node.config, "output", None)
        if wanted is None:
            return self.graph_output(scope.last)
        if "{{" in wanted:
            return render(wanted, self.template_context(scope)).text
        return self.variables.get(wanted)

    def graph_output(self, fallback: Any) -> Any:
        wanted = self.graph.output
        if wanted is None:
            return fallback
        if wanted in self.variables:
            return self.variables[wanted]
        return self.node_outputs.get(wanted, fallback)

    def final_output(self, reached: Reached) -> Any:
        return reached.output if reached.kind == "end" else self.graph_output(reached.output)

    async def run_node(self, node: ParsedNode, scope: Scope) -> NodeResult:
        """Runs one node under its error policy."""
        run = EXECUTORS[node.type]
        if node.type in _STRUCTURAL:
            return await run(self, node, scope)
        key = scope.key(node.id)
        self.at_fork_edit(key)
        done = self.completed.get(key)
        if done is not None:
            self.replay(done)
            return NodeResult(done.output, done.branch)
        policy = node.config.error_policy
        retries = 0
        while True:
            try:
                return await run(self, node, scope)
            except (LeaseLost, RunWaiting, RunStop, asyncio.CancelledError):
                raise
            except Exception as exc:
                error = redact_secrets(str(exc)) or type(exc).__name__
            if policy.action == "retry" and retries < policy.retries:
                await self.engine.sleep(policy.backoff_s * 2**retries)
                retries += 1
                continue
            if policy.action in ("error_branch", "default"):
                on_error = policy.action == "error_branch"
                output = error if on_error else policy.default_value
                substitute = StepDone(
                    output,
                    branch="error" if on_error else None,
                    variables=output_update(node.config, output),
                )
                record = await self.step(key, node, None, _ready_work(substitute))
                return NodeResult(record.output, record.branch)
            raise NodeFailed(f"Node '{node.id}' failed: {error}")

    # Steps

    async def step(
        self,
        key: str,
        node: ParsedNode,
        step_input: Any,
        work: Callable[[], Coroutine[Any, Any, StepDone]],
    ) -> StepRecord:
        """Runs `work` once as the durable step `key`, or replays its record."""
        done = self.completed.get(key)
        if done is not None:
            self.replay(done)
            return done
        try:
            with step_span(self.run_id, key, node.id, node.type, self.attempts.get(key, 0) + 1):
                return await self._execute(key, node, step_input, work)
        except LeaseLost:
            # Siblings still in flight must not write either.
            self.lease_lost = True
            raise

    async def _execute(
        self,
        key: str,
        node: ParsedNode,
        step_input: Any,
        work: Callable[[], Coroutine[Any, Any, StepDone]],
    ) -> StepRecord:
        await self.check_control()
        attempt = self.attempts.get(key, 0) + 1
        self.attempts[key] = attempt
        store = self.engine.store
        await store.step_started(
            self.run_id,
            key=key,
            node_id=node.id,
            node_type=node.type,
            attempt=attempt,
            input=step_input,
        )
        task = asyncio.create_task(work())
        self.inflight.add(task)
        try:
            result = await task
        except asyncio.CancelledError:
            if self.lease_lost:
                raise LeaseLost() from None
            await store.step_failed(self.run_id, key=key, attempt=attempt, error="cancelled")
            current = asyncio.current_task()
            if self.cancel_seen and not (current is not None and current.cancelling()):
                raise RunStop("cancelled", CANCELLED_REASON) from None
            raise
        except (LeaseLost, RunWaiting, RunStop):
            raise
        except SpendRefused as refused:
            # The call was not made: the step ends here, and the budget decides what follows.
            failed = EventDraft(
                "node_failed", {"node_id": node.id, "error": refused.stop.reason}, key
            )
            await store.step_failed(
                self.run_id, key=key, attempt=attempt, error=refused.stop.reason, events=[failed]
            )
            await self.spend_stopped(refused.stop)
            raise RunStop("failed", refused.stop.reason) from None
        except Exception as exc:
            if self.lease_lost:
                raise LeaseLost() from None
            error = redact_secrets(str(exc)) or type(exc).__name__
            failed = EventDraft("node_failed", {"node_id": node.id, "error": error}, key)
            await store.step_failed(
                self.run_id, key=key, attempt=attempt, error=error, events=[failed]
            )
            raise
        finally:
            self.inflight.discard(task)
        record = StepRecord(key, node.id, result.output, result.branch, dict(result.variables))
        if not await store.step_completed(self.run_id, record, result.events):
            # Another process completed it first; its record is the truth.
            stored = (await store.load(self.run_id)).completed.get(key)
            record = stored or record
        self.completed[key] = record
        self.tokens_live += result.tokens
        self.cost_live += result.cost
        self.apply(record.variables)
        return record

    async def human_step(
        self,
        key: str,
        node: ParsedNode,
        request: Mapping[str, Any],
        build: Callable[[Any], StepDone],
    ) -> StepRecord:
        """The recorded answer to `request`, or WAITING until a person gives one."""
        done = self.completed.get(key)
        if done is not None:
            self.replay(done)
            return done
        if key not in self.snapshot.answers:
            await self.wait(key, request)
        answer = self.snapshot.answers[key]
        return await self.step(key, node, answer, lambda: _ready(build(answer)))

    def answerer(self, key: str) -> str:
        """Who answered the question at `key`, as the transcript names them."""
        return str(self.snapshot.answered_by.get(key) or "")

    async def wait(self, key: str, request: Mapping[str, Any]) -> None:
        # Parallel branches may ask for the same budget approval; one request is enough.
        if key not in self.waits_requested:
            self.waits_requested.add(key)
            store = self.engine.store
            # A waiting run is only resumed with an answer, so this is emitted once per request.
            asking = EventDraft("human_request", {"key": key, **request}, key)
            await store.emit(self.run_id, [asking])
            await store.wait_for_human(self.run_id, key=key, request=request)
        raise RunWaiting(key)

    async def agent_turn(
        self,
        key: str,
        agent_id: str,
        history: list[dict[str, Any]],
        *,
        instructions: str = "",
        extra_tools: list[dict[str, Any]] | None = None,
        response_schema: dict[str, Any] | None = None,
        role: str = "",
    ) -> tuple[AgentReply, str]:
        """One turn of `agent_id` in step `key`; `role` is the part it plays in its node (for
        model policies), the node's type by default."""
        name = await self.agent_name(agent_id)
        node = self.nodes.get(_NODE_OF_KEY.match(key).group(0))  # type: ignore[union-attr]
        node_type = node.type if node is not None else ""
        route = RouteContext(
            node_type=node_type,
            role=role or node_type,
            variables={**self.snapshot.inputs, **self.variables},
        )
        live = self.engine.live

        async def on_delta(text: str) -> None:
            await live.delta(self.run_id, step_key=key, agent=name, text=text)

        watching = getattr(live, "watching", None)
        watched = True if watching is None else await watching(self.run_id)
        reply = await self.engine.agents.turn(
            agent_id=agent_id,
            history=history,
            step_key=key,
            instructions=instructions,
            extra_tools=extra_tools,
            response_schema=response_schema,
            on_delta=on_delta if watched else None,
            allowance=self.allowance(),
            on_wait=self.capacity_wait_reporter(key),
            route=route,
        )
        if reply.stopped and not self.limit_stop:
            self.limit_stop = reply.stopped
        return reply, name

    async def agent_name(self, agent_id: str) -> str:
        if agent_id not in self.names:
            self.names[agent_id] = await self.engine.agents.agent_name(agent_id)
        return self.names[agent_id]

    # Control

    async def check_control(self) -> None:
        """Between steps: lease, cancel, deadline and budgets."""
        control = await self.engine.store.control(self.run_id)
        if not control.lease_held:
            self.lease_lost = True
            raise LeaseLost()
        if control.cancel_requested:
            raise RunStop("cancelled", CANCELLED_REASON)
        snapshot = self.snapshot
        if snapshot.deadline is not None and self.engine.clock() >= snapshot.deadline:
            raise RunStop("failed", f"Run timed out after {self.graph.settings.timeout_s} s")
        self.stop_at_limit()
        tokens = max(control.tokens_used, snapshot.tokens_used + self.tokens_live)
        cost = max(control.cost_used, snapshot.cost_used + self.cost_live)
        reasons: list[str] = []
        crossings = 0
        if snapshot.token_budget is not None and tokens > snapshot.token_budget:
            reasons.append(f"Token budget of {snapshot.token_budget} exceeded (used {tokens})")
            crossings = max(crossings, tokens // snapshot.token_budget)
        if snapshot.cost_budget is not None and cost > snapshot.cost_budget:
            reasons.append(f"Cost budget of ${snapshot.cost_budget} exceeded (used ${cost})")
            if snapshot.cost_budget > 0:
                crossings = max(crossings, int(cost // snapshot.cost_budget))
        if not reasons:
            gate = self.engine.spend_gate
            stop = await gate.exhausted(self.run_id) if gate is not None else None
            if stop is not None:
                await self.spend_stopped(stop)
            return
        reason = "; ".join(reasons)
        if snapshot.budget_action != "pause":
            raise RunStop("failed", reason)
        # Each approval lets the run spend one more budget's worth before asking again.
        key = f"budget@{max(crossings, 1)}"
        if key not in snapshot.answers:
            await self.wait(key, {"kind": "approval", "prompt": f"{reason}. Continue?"})
        if not is_approval(snapshot.answers[key]):
            raise RunStop("failed", f"{reason}; continuing was rejected")

    def capacity_wait_reporter(
        self, key: str
    ) -> Callable[[str, int, float], Coroutine[Any, Any, None]]:
        """Tells the run page that a call of step `key` waits for capacity, and where it is in
        line: when it begins to wait, then when its place changes (at most every few seconds,
        so a long line does not fill the transcript)."""
        told: dict[str, Any] = {}

        async def on_wait(deployment: str, position: int, waited: float) -> None:
            now = self.engine.clock()
            if told and (
                told["position"] == position or now - told["at"] < CAPACITY_REPORT_EVERY_S
            ):
                return
            told.update(position=position, at=now)
            message = f"Waiting for capacity on {deployment}: position {position} in line" + (
                f", {waited:.0f} s so far." if waited >= 1 else "."
            )
            data = {
                "level": "info",
                "message": message,
                "capacity": {"deployment": deployment, "position": position},
            }
            await self.engine.store.emit(self.run_id, [EventDraft("log", data, key)])

        return on_wait

    def stop_at_limit(self) -> None:
        """A limit cut an answer short: the run ends there, failed with the reason — unless
        the run's budgets ask a person (pause), who is asked at its next call instead."""
        if self.limit_stop and (
            self.snapshot.budget_action != "pause" or "timed out" in self.limit_stop
        ):
            raise RunStop("failed", self.limit_stop)

    async def spend_stopped(self, stop: SpendStop) -> None:
        """A budget over the run has no headroom: fail the run with its reason, or ask a person.

        A person answers under `key@n`: approving resumes the run (after raising the limit, or
        when the period has reset), and if the budget still has no headroom it asks again under
        `key@n+1`; rejecting ends the run. Always raises (RunStop or RunWaiting)."""
        if not stop.pause:
            raise RunStop("failed", stop.reason)
        answers = self.snapshot.answers
        number = 1
        while f"{stop.key}@{number}" in answers:
            if not is_approval(answers[f"{stop.key}@{number}"]):
                raise RunStop("cancelled", f"{stop.reason} A person stopped the run.")
            number += 1
        prompt = f"{stop.reason} Raise the budget's limit, then approve to resume; reject to stop."
        request = {"kind": "approval", "prompt": prompt, "budget_id": stop.budget_id}
        await self.wait(f"{stop.key}@{number}", request)

    async def watch(self, interval: float) -> None:
        """Interrupts in-flight steps when the run is cancelled or its lease is lost."""
        while True:
            await self.engine.sleep(interval)
            try:
                control = await self.engine.store.control(self.run_id)
            except Exception:
                # A failed check is retried next tick; checks between steps still apply.
                continue
            if not control.lease_held:
                self.lease_lost = True
            elif control.cancel_requested:
                self.cancel_seen = True
            else:
                continue
            for task in list(self.inflight):
                task.cancel()
            return

    def join_for(self, parallel_id: str) -> str | None:
        """The join that closes a parallel node's branches: the first one at the same nesting."""
        queue: deque[tuple[str, int]] = deque(
            (edge.target, 0) for edge in self.outgoing[parallel_id]
        )
        seen: set[tuple[str, int]] = set()
        while queue:
            node_id, depth = queue.popleft()
            if (node_id, depth) in seen:
                continue
            seen.add((node_id, depth))
            kind = self.nodes[node_id].type
            if kind == "join":
                if depth == 0:
                    return node_id
                depth -= 1
            elif kind == "parallel":
                depth += 1
            for edge in self.outgoing[node_id]:
                queue.append((edge.target, depth))
        return None


async def _ready(done: StepDone) -> StepDone:
    return done


def _ready_work(done: StepDone) -> Callable[[], Coroutine[Any, Any, StepDone]]:
    return lambda: _ready(done)
