"""In-memory implementations of the engine's contracts, for tests and benchmarks.

`InMemoryStore` behaves like the database store where it matters for durability: completions are
idempotent and fenced by a lease flag, events get a sequence number, and answers and usage live
in the store, so a fresh `Engine` on the same store resumes a run as another process would.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from workflows.engine.contracts import (
    AgentReply,
    Control,
    EventDraft,
    LeaseLost,
    RouteContext,
    RunFailed,
    RunSnapshot,
    StepRecord,
    SubrunWaiting,
)


class ProcessDied(BaseException):
    """Simulates the worker process dying: a BaseException, so no error policy catches it."""


@dataclass(frozen=True)
class StoredEvent:
    seq: int
    kind: str
    data: Mapping[str, Any]
    step_key: str | None


@dataclass
class MemoryRun:
    run_id: str
    graph: Mapping[str, Any]
    inputs: Mapping[str, Any]
    options: dict[str, Any]
    completed: dict[str, StepRecord] = field(default_factory=dict)
    events: list[StoredEvent] = field(default_factory=list)
    started: list[tuple[str, int]] = field(default_factory=list)
    failures: list[tuple[str, int, str]] = field(default_factory=list)
    waiting: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    answers: dict[str, Any] = field(default_factory=dict)
    answered_by: dict[str, str] = field(default_factory=dict)
    lease_held: bool = True
    cancel: bool = False
    tokens_used: int = 0
    cost_used: Decimal = Decimal(0)
    writes: int = 0
    # Called after each stored completion, e.g. to cancel or drop the lease at a chosen point.
    after_complete: Callable[[MemoryRun], None] | None = None

    def add_events(self, events: Sequence[EventDraft]) -> None:
        for event in events:
            seq = len(self.events) + 1
            self.events.append(StoredEvent(seq, event.kind, dict(event.data), event.step_key))


class InMemoryStore:
    def __init__(self) -> None:
        self.runs: dict[str, MemoryRun] = {}

    def add_run(
        self,
        run_id: str,
        graph: Mapping[str, Any],
        inputs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> MemoryRun:
        """`options` are RunSnapshot fields: deadline, token_budget, budget_action, depth..."""
        run = MemoryRun(run_id, graph, dict(inputs or {}), options)
        self.runs[run_id] = run
        return run

    def answer(self, run_id: str, key: str, value: Any, *, by: str = "") -> None:
        run = self.runs[run_id]
        run.answers[key] = value
        if by:
            run.answered_by[key] = by
        run.waiting.pop(key, None)

    def _held(self, run_id: str) -> MemoryRun:
        run = self.runs[run_id]
        if not run.lease_held:
            raise LeaseLost()
        run.writes += 1
        return run

    async def load(self, run_id: str) -> RunSnapshot:
        run = self.runs[run_id]
        variables: dict[str, Any] = {}
        for record in run.completed.values():
            variables.update(record.variables)
        return RunSnapshot(
            run_id=run_id,
            workspace_id="memory",
            graph=run.graph,
            inputs=dict(run.inputs),
            variables=variables,
            completed=dict(run.completed),
            answers=dict(run.answers),
            answered_by=dict(run.answered_by),
            tokens_used=run.tokens_used,
            cost_used=run.cost_used,
            **run.options,
        )

    async def step_started(
        self, run_id: str, *, key: str, node_id: str, node_type: str, attempt: int, input: Any
    ) -> None:
        self._held(run_id).started.append((key, attempt))

    async def step_completed(
        self, run_id: str, record: StepRecord, events: Sequence[EventDraft]
    ) -> bool:
        run = self._held(run_id)
        if record.key in run.completed:
            return False
        run.completed[record.key] = record
        run.add_events(events)
        # The database store sums its ledger; here the message events carry the usage.
        for event in events:
            usage = event.data.get("usage") if event.kind == "message" else None
            if isinstance(usage, Mapping):
                run.tokens_used += int(usage.get("prompt_tokens", 0))
                run.tokens_used += int(usage.get("completion_tokens", 0))
                run.cost_used += Decimal(str(usage.get("cost", "0")))
        if run.after_complete is not None:
            run.after_complete(run)
        return True

    async def step_failed(
        self,
        run_id: str,
        *,
        key: str,
        attempt: int,
        error: str,
        events: Sequence[EventDraft] = (),
    ) -> None:
        run = self._held(run_id)
        run.failures.append((key, attempt, error))
        run.add_events(events)

    async def emit(self, run_id: str, events: Sequence[EventDraft]) -> None:
        self._held(run_id).add_events(events)

    async def wait_for_human(self, run_id: str, *, key: str, request: Mapping[str, Any]) -> None:
        run = self._held(run_id)
        run.waiting[key] = dict(request)

    async def control(self, run_id: str) -> Control:
        run = self.runs[run_id]
        return Control(run.cancel, run.lease_held, run.tokens_used, run.cost_used)


@dataclass(frozen=True)
class Scripted:
    """One scripted reply of an agent."""

    text: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    prompt_tokens: int = 10
    completion_tokens: int = 5
    cost: Decimal = Decimal("0.001")
    deltas: tuple[str, ...] = ()
    events: tuple[EventDraft, ...] = ()


@dataclass(frozen=True)
class AgentCall:
    agent_id: str
    step_key: str
    history: list[dict[str, Any]]
    instructions: str
    extra_tools: list[dict[str, Any]] | None
    response_schema: dict[str, Any] | None
    route: RouteContext | None = None


ReplySpec = Scripted | str | BaseException
ReplyFunction = Callable[[AgentCall], ReplySpec]


def transfer_call(name: str, call_id: str = "") -> dict[str, Any]:
    """A hand-off tool call to the agent displayed as `name`."""
    slug = re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_")
    return {
        "id": call_id or f"call-{slug}",
        "type": "function",
        "function": {"name": f"transfer_to_{slug}", "arguments": "{}"},
    }


class ScriptedAgents:
    """An AgentRunner from names and scripted replies, recording every call.

    `replies` is a function of the call, or per agent a list consumed in order; when neither says
    anything the reply is "<name> @ <step key>", which is deterministic across resumes.
    `crash_at=n` raises ProcessDied on the n-th call (counted from 1), after recording it.
    """

    def __init__(
        self,
        names: Mapping[str, str],
        replies: ReplyFunction | Mapping[str, Sequence[ReplySpec]] | None = None,
        *,
        delay: float = 0.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        crash_at: int | None = None,
    ) -> None:
        self.names = dict(names)
        self.replies = replies
        self.delay = delay
        self.sleep = sleep
        self.crash_at = crash_at
        self.calls: list[AgentCall] = []
        self._used: dict[str, int] = {}

    @property
    def keys(self) -> list[str]:
        return [call.step_key for call in self.calls]

    async def agent_name(self, agent_id: str) -> str:
        return self.names.get(agent_id, agent_id)

    def _spec(self, call: AgentCall) -> ReplySpec | None:
        if callable(self.replies):
            return self.replies(call)
        if self.replies is not None and call.agent_id in self.replies:
            script = self.replies[call.agent_id]
            used = self._used.get(call.agent_id, 0)
            self._used[call.agent_id] = used + 1
            return script[used] if used < len(script) else None
        return None

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
        allowance: Any = None,
        route: RouteContext | None = None,
    ) -> AgentReply:
        call = AgentCall(
            agent_id, step_key, list(history), instructions, extra_tools, response_schema, route
        )
        self.calls.append(call)
        if self.crash_at is not None and len(self.calls) == self.crash_at:
            raise ProcessDied(step_key)
        if self.delay:
            await self.sleep(self.delay)
        spec = self._spec(call)
        if isinstance(spec, BaseException):
            raise spec
        if spec is None:
            spec = f"{self.names.get(agent_id, agent_id)} @ {step_key}"
        reply = Scripted(text=spec) if isinstance(spec, str) else spec
        if on_delta is not None:
            for piece in reply.deltas or ((reply.text,) if reply.text else ()):
                await on_delta(piece)
        message: dict[str, Any] = {"role": "assistant", "content": reply.text}
        if reply.tool_calls:
            message["tool_calls"] = list(reply.tool_calls)
        return AgentReply(
            text=reply.text,
            messages=[message],
            tool_calls=list(reply.tool_calls),
            prompt_tokens=reply.prompt_tokens,
            completion_tokens=reply.completion_tokens,
            cost=reply.cost,
            model="scripted",
            deployment="memory",
            events=list(reply.events),
        )


class EchoTools:
    """A ToolRunner answering with its arguments; `errors` maps tool names to error texts."""

    def __init__(self, errors: Mapping[str, str] | None = None) -> None:
        self.errors = dict(errors or {})
        self.calls: list[tuple[str, Any]] = []

    async def call(
        self, name: str, arguments_json: str, *, variables: Mapping[str, Any]
    ) -> tuple[str, bool]:
        self.calls.append((name, json.loads(arguments_json)))
        if name in self.errors:
            return self.errors[name], True
        return arguments_json, False


class ScriptedSubworkflows:
    """A SubworkflowRunner returning fixed outputs per workflow id (a RunFailed or a
    SubrunWaiting is raised)."""

    def __init__(self, outputs: Mapping[str, Any] | None = None) -> None:
        self.outputs = dict(outputs or {})
        self.calls: list[dict[str, Any]] = []

    async def run(
        self,
        *,
        workflow_id: str,
        version: int | str,
        inputs: Mapping[str, Any],
        parent_run_id: str,
        step_key: str,
        depth: int,
    ) -> Any:
        self.calls.append(
            {
                "workflow_id": workflow_id,
                "inputs": dict(inputs),
                "step_key": step_key,
                "depth": depth,
            }
        )
        output = self.outputs.get(workflow_id, {"echo": dict(inputs)})
        if isinstance(output, RunFailed | SubrunWaiting):
            raise output
        return output


class RecordingLive:
    def __init__(self) -> None:
        self.deltas: list[tuple[str, str, str, str]] = []

    async def delta(self, run_id: str, *, step_key: str, agent: str, text: str) -> None:
        self.deltas.append((run_id, step_key, agent, text))
