"""Node executors, one module per family, and the small types they share with the engine.

An executor is `async (ctx, node, scope) -> NodeResult`. It does its model, tool and human work
through `ctx.step(...)` so that every such unit is a durable, replayable step.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from workflows.engine.contracts import EventDraft
from workflows.graph import NodeConfig

if TYPE_CHECKING:
    from workflows.engine.engine import RunContext


class RunStop(Exception):
    """Ends the whole run now with `status` ("failed" or "cancelled") and `reason`."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class NodeFailed(RunStop):
    """A node's error under policy "fail"; a first_success join tolerates it in its branch."""

    def __init__(self, reason: str) -> None:
        super().__init__("failed", reason)


class NodeError(Exception):
    """A node could not do its work; its error policy decides what happens next."""


@dataclass(frozen=True)
class ParsedNode:
    id: str
    type: str
    label: str
    config: NodeConfig


@dataclass(frozen=True)
class BranchResult:
    index: int
    ok: bool
    output: Any
    error: str = ""


@dataclass(frozen=True)
class Scope:
    """Where a walk is: its key suffix, the loops it is inside, the join it stops at."""

    suffix: str = ""
    loops: tuple[str, ...] = ()
    join: str | None = None
    last: Any = None
    branches: tuple[BranchResult, ...] | None = None

    def key(self, node_id: str) -> str:
        return f"{node_id}{self.suffix}"

    def after(self, output: Any) -> Scope:
        return Scope(self.suffix, self.loops, self.join, output)

    def in_loop(self, loop_id: str, iteration: int, last: Any) -> Scope:
        return Scope(f"{self.suffix}@{loop_id}:{iteration}", (*self.loops, loop_id), None, last)

    def in_branch(self, index: int, join: str | None) -> Scope:
        return Scope(f"{self.suffix}[{index}]", self.loops, join, self.last)


@dataclass(frozen=True)
class Reached:
    """Where a walk stopped: "end", "dead_end", "join" (a branch's join) or "loop_back"."""

    kind: str
    node_id: str
    output: Any


@dataclass(frozen=True)
class NodeResult:
    output: Any = None
    branch: str | None = None
    # Set by nodes that walk further themselves: the run ended inside them.
    finished: Reached | None = None
    # A parallel node continues after its join, not after itself.
    continue_from: str | None = None


@dataclass
class StepDone:
    output: Any
    branch: str | None = None
    variables: Mapping[str, Any] = field(default_factory=dict)
    events: list[EventDraft] = field(default_factory=list)
    tokens: int = 0
    cost: Decimal = Decimal(0)


Executor = Callable[["RunContext", ParsedNode, Scope], Awaitable[NodeResult]]
EXECUTORS: dict[str, Executor] = {}


def executor(node_type: str) -> Callable[[Executor], Executor]:
    def register(function: Executor) -> Executor:
        EXECUTORS[node_type] = function
        return function

    return register


def output_update(config: NodeConfig, output: Any) -> dict[str, Any]:
    variable = getattr(config, "output_variable", None)
    return {variable: output} if variable else {}
