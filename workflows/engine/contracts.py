"""What the engine needs from the outside world, and the errors it raises across that boundary.

The Django side implements these with the database, the LLM gateway, tools and the channel layer;
`workflows.engine.memory` implements them in memory for tests and benchmarks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from workflows.engine.envelope import enveloped


@dataclass(frozen=True)
class EventDraft:
    """Something that happened, to be stored and shown on the run page.

    Its data always carries the envelope (type, sender, receiver, correlation_id), derived from
    the kind and the data unless the data sets them: `workflows.engine.envelope`."""

    # "message" | "tool_call" | "tool_result" | "handoff" | "router_decision" | "vote" | "state"
    # | "human_request" | "node_started" | "node_finished" | "node_failed" | "node_skipped" | "log"
    kind: str
    data: Mapping[str, Any]  # JSON-ready
    step_key: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", enveloped(self.kind, self.data, self.step_key))


@dataclass(frozen=True)
class StepRecord:
    """A finished step: enough to resume without running it again."""

    key: str
    node_id: str
    output: Any
    branch: str | None
    # The updates the step made (values before the graph's reducers), re-applied on replay.
    variables: Mapping[str, Any]


@dataclass(frozen=True)
class ForkEdit:
    step: str  # the step key where the values are set, before that step runs or replays
    variables: Mapping[str, Any]
    before: frozenset[str]  # reused steps whose updates the values already include


@dataclass(frozen=True)
class RunSnapshot:
    run_id: str
    workspace_id: str
    graph: Mapping[str, Any]
    inputs: Mapping[str, Any]
    variables: Mapping[str, Any]  # current values (after all completed steps)
    completed: Mapping[str, StepRecord]  # by step key
    answers: Mapping[str, Any]  # human answers by step key
    depth: int = 0  # sub-workflow nesting
    deadline: float | None = None  # absolute time of the injected clock the run must end by
    token_budget: int | None = None
    cost_budget: Decimal | None = None
    budget_action: str = "stop"
    tokens_used: int = 0
    cost_used: Decimal = Decimal(0)
    answered_by: Mapping[str, str] = field(default_factory=dict)  # who answered, by step key
    # A fork's edits: at each step key, the variable values a person set there, and the keys
    # of the reused steps those values already include — see the engine's docstring.
    fork_edits: Sequence[ForkEdit] = ()


@dataclass(frozen=True)
class Control:
    cancel_requested: bool
    lease_held: bool
    tokens_used: int
    cost_used: Decimal


class RunStore(Protocol):
    async def load(self, run_id: str) -> RunSnapshot: ...

    async def step_started(
        self, run_id: str, *, key: str, node_id: str, node_type: str, attempt: int, input: Any
    ) -> None: ...

    # Atomic and idempotent: stores the record, the variable updates and the events together,
    # fenced by the run's lease (raise LeaseLost if this process no longer holds it). If the step
    # is already completed (a duplicate), it stores nothing and returns False.
    async def step_completed(
        self, run_id: str, record: StepRecord, events: Sequence[EventDraft]
    ) -> bool: ...

    async def step_failed(
        self,
        run_id: str,
        *,
        key: str,
        attempt: int,
        error: str,
        events: Sequence[EventDraft] = (),
    ) -> None: ...

    async def emit(self, run_id: str, events: Sequence[EventDraft]) -> None: ...

    # Stores the request and puts the run in WAITING (the engine emits the human_request event).
    async def wait_for_human(
        self, run_id: str, *, key: str, request: Mapping[str, Any]
    ) -> None: ...

    async def control(self, run_id: str) -> Control: ...


class LiveSink(Protocol):
    """Published only, never stored: token deltas for live viewers.

    A sink may also answer `async watching(run_id) -> bool`: whether anything consumes the
    run's deltas now. The engine asks it before each agent turn and, when nothing does, asks
    for the turn without deltas (its calls then need not stream). A sink without it is
    always watched."""

    async def delta(self, run_id: str, *, step_key: str, agent: str, text: str) -> None: ...


@dataclass(frozen=True)
class AgentReply:
    text: str
    messages: list[dict[str, Any]]  # the turn's new messages (assistant, tool...), OpenAI format
    # Tool calls the model made that the runner did NOT execute (hand-off tools); [] otherwise.
    tool_calls: list[dict[str, Any]]
    prompt_tokens: int
    completion_tokens: int
    cost: Decimal
    model: str
    deployment: str
    events: list[EventDraft]  # tool_call / tool_result events of the turn's own tool loop
    latency_ms: float = 0.0  # time in model calls, all of the turn's
    retries: int = 0
    fallbacks: int = 0
    unpriced_calls: int = 0  # calls whose price is not known: `cost` leaves them out
    # Why a limit (a budget, the time limit) cut the answer short; "" when it did not.
    stopped: str = ""
    # Why a model policy chose this turn's model ("" without a policy).
    policy: str = ""


@dataclass(frozen=True)
class RouteContext:
    """What an agent's model policy may look at besides the input: the node it works in, the
    role it plays there (proposer, member, voter...; the node type when it has no other) and the
    run's variables and inputs."""

    node_type: str = ""
    role: str = ""
    variables: Mapping[str, Any] = field(default_factory=dict)


class AgentRunner(Protocol):
    async def agent_name(self, agent_id: str) -> str: ...

    # One agent turn with its own tool loop; `extra_tools` are function specs the runner must NOT
    # execute but return in `tool_calls` (hand-offs); `instructions` is appended to the system
    # message. `allowance` (agents.llm.allowance.Allowance): the run's limits over its calls,
    # to which the runner adds the agent's own.
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
        # Told (deployment name, position in line, seconds waited) while a call waits for
        # capacity.
        on_wait: Callable[[str, int, float], Awaitable[None]] | None = None,
        route: RouteContext | None = None,
    ) -> AgentReply: ...


class ToolRunner(Protocol):
    async def call(
        self, name: str, arguments_json: str, *, variables: Mapping[str, Any]
    ) -> tuple[str, bool]: ...  # (content, is_error)


class SubworkflowRunner(Protocol):
    # The child's output, of any type; raises RunFailed, or SubrunWaiting while the child waits.
    async def run(
        self,
        *,
        workflow_id: str,
        version: int | str,
        inputs: Mapping[str, Any],
        parent_run_id: str,
        step_key: str,
        depth: int,
    ) -> Any: ...


@dataclass(frozen=True)
class SpendStop:
    """A budget over the run has no headroom: stop the run, or ask a person (`pause`).

    `key` names the budget's period; a person's answers are recorded under `key@n`."""

    reason: str
    key: str
    pause: bool = False
    budget_id: str = ""  # where a person raises the limit


class SpendGate(Protocol):
    # Between steps: a budget over this run whose hard limit is reached, or None.
    async def exhausted(self, run_id: str) -> SpendStop | None: ...


class SpendRefused(Exception):
    """Raised by an AgentRunner when a budget refused a model call (the call was not made)."""

    def __init__(self, stop: SpendStop) -> None:
        super().__init__(stop.reason)
        self.stop = stop


class LeaseLost(Exception):
    """This process must stop touching the run at once."""


class RunFailed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RunWaiting(Exception):
    """Raised inside the engine when a human step must wait; `run()` then returns WAITING."""


class SubrunWaiting(RunWaiting):
    """Raised by a SubworkflowRunner: the child run waits (for a person, or still runs in
    another worker). The parent waits with it, showing `request` (the child's question, or
    kind "subrun" when there is nothing to answer), and resumes when the child moves on."""

    def __init__(self, child_run_id: str, request: Mapping[str, Any]) -> None:
        super().__init__(child_run_id)
        self.child_run_id = child_run_id
        self.request = dict(request)


# Remote A2A agents


@dataclass(frozen=True)
class RemoteRequest:
    """One message to a remote A2A agent: a new task, or (with `task_id`) an answer to the
    question the task asked (`asked_id`, the id of that question's message)."""

    url: str
    text: str
    message_id: str
    remote_agent_id: str | None = None  # the saved remote agent whose credential is sent
    skill_id: str | None = None
    task_id: str = ""
    context_id: str = ""
    asked_id: str = ""
    timeout_s: float | None = None  # the call's own limit, within the run's


@dataclass(frozen=True)
class RemoteUpdate:
    """Something the remote agent reported while it works: a status message ("message") or
    a piece of an artifact ("chunk"), the latter shown live only."""

    kind: str
    text: str
    agent: str = ""
    task_id: str = ""
    state: str = ""


@dataclass(frozen=True)
class RemoteResult:
    agent: str  # the card's name
    host: str
    task_id: str
    context_id: str
    # completed | input-required (interrupted), or "message" for a direct answer without a task
    state: str
    text: str  # the answer: the artifacts' text, else the last message's
    question: str = ""  # input-required: what the remote agent asks
    question_id: str = ""
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    # What the remote agent reported of its own usage ({"tokens": .., "cost_usd": ..}), if it did.
    usage: Mapping[str, Any] | None = None
    resumed: bool = False  # followed a task remembered from an interrupted attempt


class RemoteAgentError(Exception):
    """A remote agent call ended without an answer; `reason` says why in a person's words
    (unreachable, refused by the URL policy, 401, the task failed or was rejected)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RemoteAgentRunner(Protocol):
    # Sends `request` (or follows the task remembered for `step_key`, when an earlier attempt
    # of the step was interrupted) until the task completes or asks for input. Raises
    # RemoteAgentError. When cancelled, asks the remote agent to cancel the task too if
    # `cancel_remote()` says so (a cancelled run, not a lost lease: another worker resumes).
    async def call(
        self,
        request: RemoteRequest,
        *,
        step_key: str,
        on_update: Callable[[RemoteUpdate], Awaitable[None]],
        cancel_remote: Callable[[], bool],
    ) -> RemoteResult: ...
