"""The values a trace is made of: spans, the waterfall's rows, sums of cost that know what is
unknown, and the reading of step keys."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from workflows.models import Run

# What the waterfall draws its bars on: 0 .. AXIS.
AXIS = 1000

_HEAD = re.compile(r"^(?P<node>[^@\[/]+)(?P<suffix>[^/]*)$")
_SEGMENT = re.compile(r"@(?P<loop>[^:@\[]+):(?P<iteration>\d+)|\[(?P<branch>\d+)\]")


_KIND_LABELS = {
    "run": "run",
    "group": "group",
    "call": "model call",
    "attempt": "attempt",
    "tool": "tool call",
    "wait": "human wait",
    "subrun": "sub-run",
    "remote": "remote agent",
}
_STATUS_LABELS = {
    "ok": "done",
    "failed": "failed",
    "running": "running",
    "waiting": "waiting",
    "unknown": "outcome unknown",
    "pending": "queued",
    "cancelled": "cancelled",
}


@dataclass
class Money:
    """A sum of costs that knows how many of its parts had no known price, and how many are
    calls still in flight (their cost is not known yet either)."""

    known: Decimal = Decimal(0)
    unknown: int = 0
    estimated: bool = False
    pending: int = 0

    def add(self, other: Money) -> None:
        self.known += other.known
        self.unknown += other.unknown
        self.estimated = self.estimated or other.estimated
        self.pending += other.pending

    @property
    def text(self) -> str:
        known = f"${self.known:.6f}"
        if self.estimated:
            known = f"~{known}"
        not_yet = [
            said
            for count, said in ((self.unknown, "price unknown"), (self.pending, "in flight"))
            if count
        ]
        if not_yet and not self.known:
            return " + ".join(not_yet)
        return " + ".join([known, *not_yet])


@dataclass
class Span:
    id: str
    kind: str  # run | group | step | call | attempt | tool | wait | subrun | remote
    name: str
    start: datetime | None
    end: datetime | None  # None: still going
    status: str = "ok"  # ok | running | waiting | failed | unknown | pending | cancelled
    detail: str = ""  # model and deployment, tool name, node type
    model: str = ""
    error: str = ""
    tokens_in: int = 0
    tokens_out: int = 0
    money: Money = field(default_factory=Money)
    calls: int = 0
    step_key: str = ""
    node_id: str = ""
    node_type: str = ""
    timing_known: bool = True
    children: list[Span] = field(default_factory=list)
    parent: Span | None = field(default=None, repr=False)

    @property
    def kind_label(self) -> str:
        if self.kind == "step":
            return (self.node_type or "step").replace("_", " ")
        return _KIND_LABELS.get(self.kind, self.kind)

    @property
    def status_label(self) -> str:
        return _STATUS_LABELS.get(self.status, self.status)

    @property
    def forkable(self) -> bool:
        """A finished (or failed) step of the graph itself, not a team's sub-step: a fork may
        start there, as on the run page."""
        return self.kind == "step" and self.status in ("ok", "failed") and "/" not in self.step_key

    @property
    def tokens_text(self) -> str:
        if not self.calls:
            return ""
        return f"{self.tokens_in:,} / {self.tokens_out:,}"

    @property
    def cost_text(self) -> str:
        if not self.calls and not self.money.unknown and not self.money.known:
            return ""
        if self.status == "failed" and self.kind == "attempt" and not self.money.known:
            return "—"  # an attempt that failed booked nothing
        return self.money.text

    def adopt(self, child: Span) -> None:
        child.parent = self
        self.children.append(child)


@dataclass
class Row:
    """One line of the waterfall, ready to print."""

    span: Span
    depth: int
    x: int
    width: int
    offset: str
    duration: str
    parent_name: str

    @property
    def indent(self) -> int:
        return min(self.depth, 8)


@dataclass
class Total:
    name: str
    visits: int = 0
    calls: int = 0
    failures: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    money: Money = field(default_factory=Money)
    seconds: float = 0.0

    @property
    def duration(self) -> str:
        return seconds_text(self.seconds)


@dataclass
class Trace:
    run: Run
    root: Span
    rows: list[Row]
    by_id: dict[str, Span]
    node_totals: list[Total]
    agent_totals: list[Total]
    total_seconds: float
    live: bool
    agent_names: dict[str, str]


def seconds_text(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.2f} s"
    return f"{int(seconds // 60)} min {seconds % 60:.0f} s"


def key_parts(key: str) -> tuple[str, list[tuple[str, str]], str]:
    """(node id, the loop and branch segments of its suffix, the team sub-step after '/')."""
    head, _, sub = key.partition("/")
    match = _HEAD.match(head)
    if match is None:
        return head, [], sub
    segments = []
    for segment in _SEGMENT.finditer(match.group("suffix")):
        if segment.group("loop"):
            segments.append((segment.group(0), f"loop:{segment.group('loop')}"))
        else:
            segments.append((segment.group(0), "branch"))
    return match.group("node"), segments, sub


def group_name(raw: str, labels: dict[str, str]) -> str:
    segment = _SEGMENT.fullmatch(raw)
    if segment is None:
        return raw
    if segment.group("loop"):
        loop = segment.group("loop")
        return f"{labels.get(loop, loop)} · iteration {int(segment.group('iteration')) + 1}"
    return f"Branch {int(segment.group('branch')) + 1}"


_CONSENSUS = {"propose": "proposal", "member": "member", "elect": "election"}


def sub_name(sub: str) -> str:
    first, _, rest = sub.partition("/")
    if first.startswith("term-") and first[5:].isdigit() and rest:
        # A consensus node's sub-steps: term-t/propose, term-t/member-i, term-t/elect[-i].
        kind, _, number = rest.partition("-")
        what = _CONSENSUS.get(kind, rest.replace("-", " "))
        if number.isdigit():
            what = (
                f"{what} vote {int(number) + 1}" if kind == "elect" else f"{what} {int(number) + 1}"
            )
        return f"term {first[5:]} · {what}"
    last = sub.rsplit("/", 1)[-1]
    words = {"turn": "turn", "select": "choosing the speaker", "human": "a person's turn"}
    kind, _, number = last.partition("-")
    if kind in words and number.isdigit():
        return f"{words[kind]} {int(number)}"
    if kind == "voter" and number.isdigit():
        return f"voter {int(number) + 1}"
    if kind == "retry":
        return f"retry {number}"
    return last.replace("-", " ")
