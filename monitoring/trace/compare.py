"""Two runs side by side: inputs, versions (with the builder's graph diff), each step's output,
and per node the differences in tokens, cost and latency.

Runs of one workflow are compared node by node (nodes keep their ids across versions) and step
by step (step keys come from graph positions). Runs of two different workflows share no nodes:
only their inputs and totals are compared, and the page says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agents.models import LedgerEntry
from monitoring.trace.inspector import shown
from monitoring.trace.types import Money, key_parts, seconds_text
from workflows.graph.diff import GraphDiff, graph_diff
from workflows.models import Run, Step
from workflows.selectors import run_subruns_by_step

# Each output is cut to this many characters on the page.
OUTPUT_SHOWN = 4_000


@dataclass
class NodeStats:
    visits: int = 0
    calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    money: Money = field(default_factory=Money)
    seconds: float = 0.0
    failed: int = 0

    @property
    def tokens(self) -> int:
        return self.tokens_in + self.tokens_out


@dataclass
class Side:
    run: Run
    nodes: dict[str, NodeStats]
    outputs: dict[str, tuple[str, Any]]  # step key → (status, output)
    money: Money
    seconds: float | None

    @property
    def duration(self) -> str:
        return seconds_text(self.seconds)


@dataclass
class InputRow:
    name: str
    a: str
    b: str
    same: bool


@dataclass
class NodeRow:
    node_id: str
    label: str
    a: NodeStats | None
    b: NodeStats | None
    tokens_delta: str
    cost_delta: str
    latency_delta: str


@dataclass
class StepRow:
    key: str
    label: str
    a: str | None  # None: the step did not happen in that run
    b: str | None
    a_status: str
    b_status: str
    same: bool


@dataclass
class Comparison:
    a: Side
    b: Side
    same_workflow: bool
    same_version: bool
    diff: GraphDiff | None
    edges_added: list[str]
    edges_removed: list[str]
    inputs: list[InputRow]
    nodes: list[NodeRow]
    steps: list[StepRow]
    tokens_delta: str
    cost_delta: str
    duration_delta: str
    notes: list[str]


def _side(run: Run) -> Side:
    steps = list(
        Step.objects.filter(run_id=run.pk)
        .order_by("started_at")
        .values_list("key", "node_id", "status", "started_at", "finished_at", "output", "error")
    )
    node_of_step = {key: node_id for key, node_id, *_ in steps}
    nodes: dict[str, NodeStats] = {}
    outputs: dict[str, tuple[str, Any]] = {}
    for key, node_id, status, started, finished, output, error in steps:
        # A failed step's "output" is what went wrong.
        outputs[key] = (status, f"Error: {error}" if status == Step.Status.FAILED else output)
        if "/" in key:
            continue  # a team's sub-step: its team node's step counts it
        stats = nodes.setdefault(node_id, NodeStats())
        stats.visits += 1
        stats.failed += status == Step.Status.FAILED
        if finished is not None and started is not None:
            stats.seconds += (finished - started).total_seconds()
    # A sub-run's calls are its parent's too (the run's totals include them): each counts
    # under the parent's step that started the sub-run.
    subruns = run_subruns_by_step(run.pk)
    calls = LedgerEntry.objects.filter(run_id__in=[run.pk, *subruns]).values_list(
        "run_id", "source", "prompt_tokens", "completion_tokens", "cost", "price_source", "status"
    )
    money = Money()
    for run_id, source, prompt, completion, cost, price_source, status in calls:
        step_key = subruns.get(run_id) or str((source or {}).get("step_key") or "")
        node_id = (node_of_step.get(step_key) or key_parts(step_key)[0]) if step_key else ""
        stats = nodes.setdefault(node_id or "(run)", NodeStats())
        stats.calls += 1
        stats.tokens_in += prompt
        stats.tokens_out += completion
        part = Money()
        if price_source == LedgerEntry.PriceSource.UNKNOWN:
            part.unknown = 1
        elif status == LedgerEntry.Status.PENDING:
            part.pending = 1
        else:
            part.known = cost
        stats.money.add(part)
        money.add(part)
    seconds = None
    if run.started_at is not None and run.finished_at is not None:
        seconds = (run.finished_at - run.started_at).total_seconds()
    return Side(run, nodes, outputs, money, seconds)


def _signed(value: float | int, unit: str = "") -> str:
    if value == 0:
        return "same"
    sign = "+" if value > 0 else "−"
    return f"{sign}{abs(value):,}{unit}"


def _money_delta(a: Money | None, b: Money | None) -> str:
    if a is None or b is None:
        return "—"
    if a.unknown or b.unknown:
        return "cannot be compared: price unknown"
    if a.pending or b.pending:
        return "not yet: calls in flight"
    delta = b.known - a.known
    if delta == 0:
        return "same"
    return f"{'+' if delta > 0 else '−'}${abs(delta):.6f}"


def _seconds_delta(a: float | None, b: float | None) -> str:
    if a is None or b is None:
        return "—"
    delta = b - a
    if abs(delta) < 0.0005:
        return "same"
    return f"{'+' if delta > 0 else '−'}{seconds_text(abs(delta))}"


def _text(value: Any) -> str:
    return shown(value, OUTPUT_SHOWN)


def _graph_order(graph: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (str(node.get("id")), str(node.get("label") or node.get("id")))
        for node in graph.get("nodes", [])
        if isinstance(node, dict)
    ]


def runs_compare(run_a: Run, run_b: Run) -> Comparison:
    a, b = _side(run_a), _side(run_b)
    same_workflow = run_a.workflow_id == run_b.workflow_id
    same_version = run_a.version_id == run_b.version_id
    notes: list[str] = []
    diff = None
    edges_added: list[str] = []
    edges_removed: list[str] = []
    if not same_workflow:
        notes.append(
            f"These runs are of two workflows ({run_a.workflow.name} and "
            f"{run_b.workflow.name}): their inputs and totals are compared below; their nodes, "
            "steps and graphs are not, as nothing matches one to the other."
        )
    elif not same_version:
        diff = graph_diff(run_a.version.graph, run_b.version.graph)
        edges_added = [diff.describe_edge(edge) for edge in diff.edges_added]
        edges_removed = [diff.describe_edge(edge) for edge in diff.edges_removed]
    names = list(dict.fromkeys([*(run_a.inputs or {}), *(run_b.inputs or {})]))
    inputs = []
    for name in names:
        value_a = (run_a.inputs or {}).get(name)
        value_b = (run_b.inputs or {}).get(name)
        inputs.append(
            InputRow(
                name,
                _text(value_a) if name in (run_a.inputs or {}) else "—",
                _text(value_b) if name in (run_b.inputs or {}) else "—",
                value_a == value_b,
            )
        )
    nodes: list[NodeRow] = []
    steps: list[StepRow] = []
    if same_workflow:
        labels = dict(_graph_order(run_a.version.graph))
        labels.update(_graph_order(run_b.version.graph))
        order = list(dict.fromkeys([*a.nodes, *b.nodes]))
        for node_id in order:
            stats_a, stats_b = a.nodes.get(node_id), b.nodes.get(node_id)
            nodes.append(
                NodeRow(
                    node_id,
                    labels.get(node_id, node_id),
                    stats_a,
                    stats_b,
                    _signed(stats_b.tokens - stats_a.tokens) if stats_a and stats_b else "—",
                    _money_delta(
                        stats_a.money if stats_a else None, stats_b.money if stats_b else None
                    ),
                    _seconds_delta(
                        stats_a.seconds if stats_a else None, stats_b.seconds if stats_b else None
                    ),
                )
            )
        keys = list(dict.fromkeys([*a.outputs, *b.outputs]))
        for key in keys:
            node, _, sub = key_parts(key)
            label = labels.get(node, node) + (f" · {sub}" if sub else "")
            status_a, output_a = a.outputs.get(key, ("", None))
            status_b, output_b = b.outputs.get(key, ("", None))
            steps.append(
                StepRow(
                    key,
                    label,
                    _text(output_a) if key in a.outputs else None,
                    _text(output_b) if key in b.outputs else None,
                    status_a,
                    status_b,
                    key in a.outputs and key in b.outputs and output_a == output_b,
                )
            )
    tokens_a = run_a.prompt_tokens + run_a.completion_tokens
    tokens_b = run_b.prompt_tokens + run_b.completion_tokens
    return Comparison(
        a=a,
        b=b,
        same_workflow=same_workflow,
        same_version=same_version,
        diff=diff,
        edges_added=edges_added,
        edges_removed=edges_removed,
        inputs=inputs,
        nodes=nodes,
        steps=steps,
        tokens_delta=_signed(tokens_b - tokens_a),
        cost_delta=_money_delta(a.money, b.money),
        duration_delta=_seconds_delta(a.seconds, b.seconds),
        notes=notes,
    )


def compare_candidates(run: Run, *, limit: int = 20) -> list[Run]:
    """Recent runs of the same workflow to compare `run` with, newest first."""
    return list(
        Run.objects.filter(workspace_id=run.workspace_id, workflow_id=run.workflow_id)
        .exclude(pk=run.pk)
        .select_related("version", "created_by")
        .order_by("-created_at")[:limit]
    )
