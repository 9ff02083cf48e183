"""A run's trace: every step, provider attempt, tool call and human wait as timed, nested spans.

Built from what the engine already keeps, in a handful of indexed queries per run (steps by run,
ledger rows by (run_id, started_at), a few event kinds by run, the sub-runs), never from a scan:

* A **step** is a node visit that did work (agent, router, tool, team, human...). Start, end,
  loop, and parallel nodes are pure and leave no row, so the trace shows where they led: loop
  iterations and parallel branches are group spans read from the step keys (`node@loop:i`,
  `node[b]`), so branches that ran at the same time sit side by side on the time axis.
* Team sub-steps (`chat/turn-2`, `poll/voter-0`) nest under the team node's step.
* **Provider calls** are ledger rows (one per attempt) of the step named in their `source`. The
  gateway numbers attempts from 1 within one logical call, so a row numbered 1 starts a new call;
  a call with retries or fallbacks becomes a group with one child per attempt.
* **Tool calls** inside an agent's turn come from its tool_call/tool_result events, which carry
  their start and duration (older runs' do not: their tool calls say the time was not recorded).
* **Human waits** run from the human_request event to the step that took the answer.

Costs follow the ledger's rule: a price that is not known is "price unknown", never $0.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from agents.models import Agent, LedgerEntry, OllamaNode, Provider
from monitoring.trace.types import (
    AXIS,
    Money,
    Row,
    Span,
    Total,
    Trace,
    group_name,
    key_parts,
    seconds_text,
    sub_name,
)
from workflows.models import Run, RunEvent, Step
from workflows.selectors import run_roots_of_descendants

_EVENT_KINDS = ("tool_call", "tool_result", "human_request", "remote_call")


def _call_detail(deployment: str, source: dict[str, Any]) -> str:
    """Where a call went, why that model when a model policy chose it, and what the
    workspace's gateway middleware did to it when it logs."""
    parts = [deployment]
    if source.get("model_policy"):
        parts.append(f"model policy: {source['model_policy']}")
    if source.get("middleware"):
        parts.append(f"middleware: {source['middleware']}")
    return " · ".join(parts)


def _deployment_names(deployment_ids: Iterable[str]) -> dict[str, str]:
    """Provider (and Ollama node) names of the deployments, in two queries."""
    provider_ids, node_ids = set(), set()
    for deployment in deployment_ids:
        parts = deployment.split(":")
        provider_ids.add(parts[0])
        if len(parts) == 3:
            node_ids.add(parts[1])
    providers = _names(Provider, provider_ids)
    nodes = _names(OllamaNode, node_ids)
    names = {}
    for deployment in deployment_ids:
        parts = deployment.split(":")
        name = providers.get(parts[0], "a deleted provider")
        if len(parts) == 3:
            name = f"{name} / {nodes.get(parts[1], parts[1])}"
        names[deployment] = name
    return names


def _names(model: Any, ids: set[str]) -> dict[str, str]:
    valid = []
    for value in ids:
        try:
            valid.append(model._meta.pk.to_python(value))
        except Exception:  # noqa: BLE001 - an id of another shape names nothing
            continue
    if not valid:
        return {}
    return {
        str(pk): name for pk, name in model.objects.filter(pk__in=valid).values_list("pk", "name")
    }


def _event_time(data: dict[str, Any], name: str) -> datetime | None:
    value = data.get(name)
    if not isinstance(value, str):
        return None
    try:
        return parse_datetime(value)
    except ValueError:
        return None


class _Builder:
    def __init__(self, run: Run, now: datetime) -> None:
        self.run = run
        self.now = now
        graph = run.version.graph if run.version_id else {}
        self.labels = {
            str(node.get("id")): str(node.get("label") or node.get("id"))
            for node in graph.get("nodes", [])
            if isinstance(node, dict)
        }
        self.node_types = {
            str(node.get("id")): str(node.get("type") or "")
            for node in graph.get("nodes", [])
            if isinstance(node, dict)
        }
        self.by_id: dict[str, Span] = {}
        self.steps: dict[str, Span] = {}
        self.agent_of_call: dict[str, str] = {}
        self.root = self._add(
            Span(
                "run",
                "run",
                f"{run.workflow.name} run",
                run.started_at or run.created_at,
                run.finished_at if run.is_terminal else None,
                status=_run_status(run.status),
                detail=f"version {run.version.number}" if run.version_id else "",
                error=run.reason if run.status == "failed" else "",
            )
        )

    def _add(self, span: Span, parent: Span | None = None) -> Span:
        self.by_id[span.id] = span
        if parent is not None:
            parent.adopt(span)
        return span

    # Steps and their groups

    def group_for(self, segments: list[tuple[str, str]]) -> Span:
        parent = self.root
        path = ""
        for raw, _kind in segments:
            path += raw
            span = self.by_id.get(f"group:{path}")
            if span is None:
                span = self._add(
                    Span(f"group:{path}", "group", group_name(raw, self.labels), None, None),
                    parent,
                )
            parent = span
        return parent

    def add_steps(self, steps: list[tuple[Any, ...]]) -> None:
        # Parents before their sub-steps, whatever order they started in.
        for row in sorted(steps, key=lambda row: row[0].count("/")):
            key, node_id, node_type, status, attempt, error, started, finished, reused = row
            node, segments, sub = key_parts(key)
            parent = self.parent_of(key, segments)
            name = self.labels.get(node, node)
            if sub:
                name = f"{name} · {sub_name(sub)}"
            span = self._add(
                Span(
                    f"step:{key}",
                    "step",
                    name,
                    started,
                    finished,
                    status={"completed": "ok", "failed": "failed"}.get(status, "running"),
                    detail=node_type or self.node_types.get(node, ""),
                    error=error,
                    step_key=key,
                    node_id=node_id,
                    node_type=node_type or self.node_types.get(node, ""),
                ),
                parent,
            )
            if attempt > 1:
                span.detail = f"{span.detail} · attempt {attempt}"
            if reused:
                span.detail = f"{span.detail} · reused from the run it was forked from"
            self.steps[key] = span

    def parent_of(self, key: str, segments: list[tuple[str, str]]) -> Span:
        parent_key = key
        while "/" in parent_key:
            parent_key = parent_key.rsplit("/", 1)[0]
            if parent_key in self.steps:
                return self.steps[parent_key]
        return self.group_for(segments)

    def step_for(self, key: str) -> Span:
        """The step span of `key`, or a placeholder for a step not recorded yet."""
        span = self.steps.get(key)
        if span is not None:
            return span
        node, segments, sub = key_parts(key)
        name = self.labels.get(node, node) + (f" · {sub_name(sub)}" if sub else "")
        span = self._add(
            Span(
                f"step:{key}",
                "step",
                name,
                None,
                None,
                status="waiting",
                detail=self.node_types.get(node, ""),
                step_key=key,
                node_id=node,
                node_type=self.node_types.get(node, ""),
            ),
            self.parent_of(key, segments),
        )
        self.steps[key] = span
        return span

    # Provider calls

    def add_calls(self, rows: list[tuple[Any, ...]], deployments: dict[str, str]) -> None:
        current: dict[str, Span] = {}  # step key → its call group being filled
        for row in rows:
            (
                call_id,
                model,
                deployment,
                attempt,
                status,
                prompt,
                estimate,
                completion,
                cost,
                estimated,
                price_source,
                latency_ms,
                error_kind,
                http_status,
                source,
                started,
                finished,
            ) = row
            source = source if isinstance(source, dict) else {}
            step_key = str(source.get("step_key") or "")
            parent = self.step_for(step_key) if step_key else self.root
            money = Money()
            if status == LedgerEntry.Status.PENDING:
                money.pending = 1
            elif price_source == LedgerEntry.PriceSource.UNKNOWN:
                money.unknown = 1
            else:
                money.known = cost or Decimal(0)
                money.estimated = bool(estimated)
            span = Span(
                f"call:{call_id}",
                "attempt",
                f"{model} (model policy classifier)"
                if source.get("purpose") == "model policy classifier"
                else f"{model}",
                started,
                finished if status != LedgerEntry.Status.PENDING else None,
                status={
                    "completed": "ok",
                    "failed": "failed",
                    "pending": "running",
                    "unknown": "unknown",
                }.get(status, status),
                detail=_call_detail(deployments.get(deployment, deployment), source),
                error=_call_error(error_kind, http_status, status),
                tokens_in=prompt if status != "pending" else 0,
                tokens_out=completion,
                money=money,
                calls=1,
                step_key=step_key,
                model=model,
            )
            agent = str(source.get("agent_id") or "")
            if agent:
                self.agent_of_call[span.id] = agent
            group = current.get(step_key)
            if attempt <= 1 or group is None:
                # A new logical call: alone until a second attempt joins it.
                span.kind = "call"
                self._add(span, parent)
                current[step_key] = span
                continue
            if group.id.startswith("call:"):  # a single attempt so far: becomes a group
                group = self._regroup(group)
                current[step_key] = group
            previous = group.children[-1]
            span.model = model
            if previous.model != model:
                span.name = f"fallback to {span.name}"
            else:
                span.name = f"retry of {span.name}"
            self._add(span, group)

    def _regroup(self, first: Span) -> Span:
        """A call that gets a second attempt becomes a group of attempts."""
        parent = first.parent
        assert parent is not None
        group = Span(
            f"calls:{first.id.removeprefix('call:')}",
            "call",
            f"{first.name} (with retries)",
            first.start,
            first.end,
            step_key=first.step_key,
        )
        index = parent.children.index(first)
        parent.children[index] = group
        group.parent = parent
        self.by_id[group.id] = group
        first.kind = "attempt"
        first.name = f"{first.name} · attempt 1"
        group.adopt(first)
        return group

    # Tools, waits, sub-runs

    def add_events(self, events: list[tuple[Any, ...]]) -> None:
        tools: dict[tuple[str, str], Span] = {}
        counts: dict[str, int] = defaultdict(int)
        for _seq, step_key, kind, data, created in events:
            data = data if isinstance(data, dict) else {}
            if kind == "human_request":
                self._add_wait(step_key or str(data.get("key") or ""), data, created)
                continue
            if kind == "remote_call":
                self._add_remote(step_key, data, created)
                continue
            step = self.steps.get(step_key)
            if step is None or step.node_type == "tool":
                continue  # a tool node's step is the tool call itself
            tool_id = str(data.get("id") or "")
            if kind == "tool_call":
                counts[step_key] += 1
                number = counts[step_key]
                started = _event_time(data, "started_at")
                span = self._add(
                    Span(
                        f"tool:{step_key}:{number}",
                        "tool",
                        str(data.get("name") or "tool"),
                        started or step.start,
                        None if started else step.end,
                        status="running" if started else "ok",
                        detail="tool call",
                        step_key=step_key,
                        timing_known=started is not None,
                    ),
                    step,
                )
                tools[(step_key, tool_id or str(number))] = span
            else:
                span_or_none = tools.pop((step_key, tool_id or str(counts[step_key])), None)
                if span_or_none is None:
                    continue
                span = span_or_none
                span.status = "failed" if data.get("is_error") else "ok"
                latency = data.get("latency_ms")
                if span.timing_known and isinstance(latency, int | float) and span.start:
                    span.end = span.start + timedelta(milliseconds=float(latency))
                elif span.timing_known:
                    span.end = span.start
                if data.get("is_error"):
                    span.error = "the tool reported an error"

    def _add_remote(self, key: str, data: dict[str, Any], ended: datetime) -> None:
        """A remote A2A agent's task within its call step. Its price is not known unless the
        remote agent reported its usage: unknown, never $0."""
        step = self.steps.get(key)
        if step is None:
            return
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else None
        money = Money()
        cost = (usage or {}).get("cost_usd")
        try:
            money.known = Decimal(str(cost)) if cost is not None else Decimal(0)
        except ArithmeticError:
            cost = None
        if cost is None:
            money.unknown = 1
        tokens = (usage or {}).get("tokens")
        task = str(data.get("task_id") or "")
        self._add(
            Span(
                f"remote:{key}",
                "remote",
                f"{data.get('agent') or 'Remote agent'} at {data.get('host') or '?'}",
                step.start,
                ended if step.end is None else step.end,
                status="ok",
                detail=f"A2A task {task or '—'} · {data.get('state') or '?'}",
                tokens_out=int(tokens) if isinstance(tokens, int) else 0,
                money=money,
                step_key=key,
            ),
            step,
        )

    def _add_wait(self, key: str, data: dict[str, Any], asked: datetime) -> None:
        waiting = (
            self.run.status == "waiting" and (self.run.waiting_request or {}).get("step_key") == key
        )
        is_budget = key.startswith("budget@")
        parent = self.root if is_budget or not key else self.step_for(key)
        answered: datetime | None = None
        if not waiting:
            if parent is not self.root and parent.start is not None:
                answered = parent.start
            else:
                later = [
                    s.start for s in self.steps.values() if s.start is not None and s.start > asked
                ]
                answered = min(later) if later else self.run.finished_at
        kind = "an approval" if data.get("kind") == "approval" else "an answer"
        self._add(
            Span(
                f"wait:{key}",
                "wait",
                "Budget approval" if is_budget else f"Waiting for {kind}",
                asked,
                answered,
                status="waiting" if waiting else "ok",
                detail="a person",
                step_key=key,
            ),
            parent,
        )

    def add_children(self, children: list[Run], unknown: dict[Any, int] | None = None) -> None:
        """Sub-runs as spans with their totals (theirs include their own sub-runs'); `unknown`
        counts, per sub-run, the calls under it whose price is not known."""
        for child in children:
            parent = self.steps.get(child.parent_step_key) or self.root
            money = Money(known=child.cost, unknown=(unknown or {}).get(child.pk, 0))
            span = self._add(
                Span(
                    f"subrun:{child.pk}",
                    "subrun",
                    f"Sub-run: {child.workflow.name}",
                    child.started_at or child.created_at,
                    child.finished_at if child.is_terminal else None,
                    status=_run_status(child.status),
                    detail="sub-workflow",
                    error=child.reason if child.status == "failed" else "",
                    tokens_in=child.prompt_tokens,
                    tokens_out=child.completion_tokens,
                    money=money,
                    calls=child.model_calls,
                ),
                parent,
            )
            span.step_key = str(child.pk)

    # Sums and times

    def settle(self, span: Span) -> None:
        """Parents span their children and sum their usage (their own rows have none)."""
        for child in span.children:
            self.settle(child)
        if not span.children:
            return
        span.children.sort(key=lambda s: (s.start or self.now, s.id))
        starts = [c.start for c in span.children if c.start is not None]
        if starts and (span.start is None or min(starts) < span.start):
            span.start = min(starts)
        if span.kind in ("group", "call") or span.end is not None:
            ends = [c.end for c in span.children]
            still_going = any(
                c.end is None and c.status in ("running", "waiting") for c in span.children
            )
            if still_going:
                if span.kind in ("group", "call"):
                    span.end = None
            elif ends and all(end is not None for end in ends):
                latest = max(end for end in ends if end is not None)
                if span.end is None or latest > span.end:
                    span.end = latest
        if span.kind in ("group", "call"):
            statuses = {c.status for c in span.children}
            for status in ("failed", "running", "waiting"):
                if status in statuses:
                    span.status = status
                    break
            if span.kind == "call" and span.children and span.children[-1].status == "ok":
                span.status = "ok"
        if span.kind in ("subrun",):
            return
        span.tokens_in = sum(c.tokens_in for c in span.children)
        span.tokens_out = sum(c.tokens_out for c in span.children)
        span.calls = sum(c.calls for c in span.children)
        money = Money()
        for child in span.children:
            money.add(child.money)
        span.money = money
        if span.kind == "call":
            last = span.children[-1]
            span.detail = last.detail


def _call_error(error_kind: str, http_status: int | None, status: str) -> str:
    if status == LedgerEntry.Status.UNKNOWN:
        return "the worker stopped during the call; its outcome is not known (cost estimated)"
    if not error_kind:
        return ""
    return f"{error_kind.replace('_', ' ')}" + (f" (HTTP {http_status})" if http_status else "")


def _run_status(status: str) -> str:
    return {
        "succeeded": "ok",
        "failed": "failed",
        "cancelled": "cancelled",
        "waiting": "waiting",
        "queued": "pending",
    }.get(status, "running")


def _flatten(trace_start: datetime, total: float, now: datetime, root: Span) -> list[Row]:
    rows: list[Row] = []

    def visit(span: Span, depth: int, parent_name: str) -> None:
        start = span.start
        end = span.end or (now if span.status in ("running", "waiting", "pending") else start)
        if start is None:
            x, width, offset, duration = 0, 0, "—", "not started"
        else:
            begin = (start - trace_start).total_seconds()
            length = max(0.0, ((end or start) - start).total_seconds())
            x = max(0, min(AXIS, round(begin / total * AXIS))) if total > 0 else 0
            width = max(2, min(AXIS - x, round(length / total * AXIS))) if total > 0 else AXIS
            offset = f"+{seconds_text(begin)}"
            duration = seconds_text(length)
            if span.end is None and span.status in ("running", "waiting"):
                duration = f"{duration} so far"
            if not span.timing_known:
                duration = "time not recorded"
        rows.append(Row(span, depth, x, width, offset, duration, parent_name))
        for child in span.children:
            visit(child, depth + 1, span.name)

    visit(root, 0, "")
    return rows


def _totals(builder: _Builder, agent_names: dict[str, str]) -> tuple[list[Total], list[Total]]:
    nodes: dict[str, Total] = {}
    for span in builder.steps.values():
        if span.start is None or "/" in span.step_key:
            continue  # sub-steps are counted in their team node's step
        total = nodes.setdefault(
            span.node_id, Total(builder.labels.get(span.node_id, span.node_id))
        )
        total.visits += 1
        total.calls += span.calls
        total.failures += span.status == "failed"
        total.tokens_in += span.tokens_in
        total.tokens_out += span.tokens_out
        total.money.add(span.money)
        if span.end is not None:
            total.seconds += (span.end - span.start).total_seconds()
    agents: dict[str, Total] = {}
    for span_id, agent_id in builder.agent_of_call.items():
        span = builder.by_id[span_id]
        total = agents.setdefault(agent_id, Total(agent_names.get(agent_id, "a deleted agent")))
        total.calls += 1
        total.failures += span.status == "failed"
        total.tokens_in += span.tokens_in
        total.tokens_out += span.tokens_out
        total.money.add(span.money)
        if span.end is not None and span.start is not None:
            total.seconds += (span.end - span.start).total_seconds()
    return list(nodes.values()), sorted(agents.values(), key=lambda t: t.name)


_LEDGER_COLUMNS = (
    "call_id",
    "model",
    "deployment_id",
    "attempt",
    "status",
    "prompt_tokens",
    "prompt_tokens_estimate",
    "completion_tokens",
    "cost",
    "cost_estimated",
    "price_source",
    "latency_ms",
    "error_kind",
    "http_status",
    "source",
    "started_at",
    "finished_at",
)


def run_trace(run: Run, *, now: datetime | None = None) -> Trace:
    """The run's spans, in bounded queries: a 200-step run reads a few hundred rows."""
    now = now or timezone.now()
    builder = _Builder(run, now)
    steps = list(
        Step.objects.filter(run_id=run.pk)
        .order_by("started_at")
        .values_list(
            "key",
            "node_id",
            "node_type",
            "status",
            "attempt",
            "error",
            "started_at",
            "finished_at",
            "reused",
        )
    )
    builder.add_steps(steps)
    calls = list(
        LedgerEntry.objects.filter(run_id=run.pk)
        .order_by("started_at")
        .values_list(*_LEDGER_COLUMNS)
    )
    deployments = _deployment_names({row[2] for row in calls})
    builder.add_calls(calls, deployments)
    events = list(
        RunEvent.objects.filter(run_id=run.pk, kind__in=_EVENT_KINDS)
        .order_by("seq")
        .values_list("seq", "step_key", "kind", "data", "created_at")
    )
    builder.add_events(events)
    children = list(
        run.children.select_related("workflow").only(
            "id",
            "status",
            "reason",
            "parent_step_key",
            "created_at",
            "started_at",
            "finished_at",
            "prompt_tokens",
            "completion_tokens",
            "cost",
            "model_calls",
            "workflow__name",
        )
    )
    roots = run_roots_of_descendants([child.pk for child in children]) if children else {}
    unknown: dict[Any, int] = {}
    if roots:
        for run_id in LedgerEntry.objects.filter(
            run_id__in=list(roots), price_source=LedgerEntry.PriceSource.UNKNOWN
        ).values_list("run_id", flat=True):
            unknown[roots[run_id]] = unknown.get(roots[run_id], 0) + 1
    builder.add_children(children, unknown)
    root = builder.root
    builder.settle(root)
    # The run's own usage is the ledger's (it is the truth), summed over every call.
    start = root.start or run.created_at
    horizon = now if not run.is_terminal else (run.finished_at or now)
    end = root.end or horizon
    total = max((end - start).total_seconds(), 0.001)
    agent_ids = set(builder.agent_of_call.values())
    agent_names = _names(Agent, agent_ids)
    node_totals, agent_totals = _totals(builder, agent_names)
    return Trace(
        run=run,
        root=root,
        rows=_flatten(start, total, horizon, root),
        by_id=builder.by_id,
        node_totals=node_totals,
        agent_totals=agent_totals,
        total_seconds=total,
        live=not run.is_terminal,
        agent_names=agent_names,
    )
