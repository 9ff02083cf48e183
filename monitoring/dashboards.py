"""Reads for the dashboards page beyond the charts: the filter bar, the headline figures, the
top lists and the per-agent report. All of them read the rollups (and run rows), never the
ledger's full history; the one ledger read, an agent's last error, is confined to one hour."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Max, Q, QuerySet
from django.http import QueryDict

from agents.models import Agent, LedgerEntry, LedgerRollup, LedgerRollupDay, Provider
from monitoring.metrics import (
    MetricsQuery,
    metrics_answer,
    metrics_answers,
    metrics_query_parse,
)
from monitoring.metrics.answer import rollup_rows
from monitoring.metrics.query import RANGES
from workflows.models import Run, Workflow

STACK_CHOICES = (
    ("provider", "provider"),
    ("model", "model"),
    ("agent", "agent"),
    ("workflow", "workflow"),
    ("user", "user"),
)
FILTERS = ("provider", "model", "agent", "workflow", "user")
TOP = 5


@dataclass(frozen=True)
class DashboardScope:
    """What every chart on the page shares: the range and the filters, as in the URL."""

    query: MetricsQuery  # the range and filters, with measure=calls
    stack: str
    fixed: Mapping[str, str] = field(default_factory=dict)  # an agent's or workflow's own tab

    def params(self, **extra: Any) -> str:
        """The shared part of every chart's query string."""
        values = QueryDict(mutable=True)
        if self.query.range_name == "custom":
            values["from"] = self.query.start.isoformat()
            values["to"] = self.query.end.isoformat()
        else:
            values["range"] = self.query.range_name
        for name, chosen in self.query.filters.items():
            values.setlist(name, list(chosen))
        for name, value in extra.items():
            values[name] = value
        return values.urlencode()


def dashboard_scope(params: QueryDict, fixed: Mapping[str, str] | None = None) -> DashboardScope:
    """The page's scope from its URL; raises MetricsQueryError for a bad range or filter."""
    shared = {
        name: params.getlist(name) for name in ("range", "from", "to", *FILTERS) if name in params
    }
    for name, value in (fixed or {}).items():
        shared[name] = [value]
    query = metrics_query_parse({"measure": ["calls"], **shared})
    stack = params.get("stack", "")
    default = "model" if fixed else "provider"
    allowed = {value for value, _ in STACK_CHOICES} - set(fixed or {})
    return DashboardScope(query, stack if stack in allowed else default, dict(fixed or {}))


def filter_options(workspace_id: Any, scope: DashboardScope) -> dict[str, list[tuple[str, str]]]:
    """The choices of each filter: the workspace's providers, agents, workflows and members,
    and the models its calls used in the range."""
    user_model = get_user_model()
    models = (
        LedgerRollupDay.objects.filter(
            workspace_id=workspace_id,
            day__gte=scope.query.start - timedelta(days=1),
            day__lt=scope.query.end,
        )
        .order_by("model")
        .values_list("model", flat=True)
        .distinct()
    )
    chosen_models = set(scope.query.filters.get("model", ()))
    return {
        "provider": [
            (str(pk), name)
            for pk, name in Provider.objects.filter(workspace_id=workspace_id).values_list(
                "pk", "name"
            )
        ],
        "model": [(name, name) for name in sorted(set(models) | chosen_models) if name],
        "agent": [
            (str(pk), name)
            for pk, name in Agent.objects.filter(workspace_id=workspace_id).values_list(
                "pk", "name"
            )
        ],
        "workflow": [
            (str(pk), name)
            for pk, name in Workflow.objects.filter(workspace_id=workspace_id)
            .order_by("name")
            .values_list("pk", "name")
        ],
        "user": [
            (str(pk), name)
            for pk, name in user_model.objects.filter(memberships__workspace_id=workspace_id)
            .order_by(user_model.USERNAME_FIELD)
            .values_list("pk", user_model.USERNAME_FIELD)
        ],
    }


def _ask(workspace_id: Any, scope: DashboardScope, **params: Any) -> dict[str, Any]:
    shared = QueryDict(scope.params(**params))
    return metrics_answer(workspace_id, metrics_query_parse(shared))


def headline(workspace_id: Any, scope: DashboardScope) -> dict[str, Any]:
    """The range's totals: spend, calls, tokens, unpriced tokens, error rate, p95 latency."""
    answer = _ask(
        workspace_id,
        scope,
        measure="cost,calls,tokens,unpriced_tokens,error_rate,latency_p95",
        granularity="total",
    )
    rows = answer["rows"]
    return rows[0] if rows else {}


@dataclass(frozen=True)
class AgentReportRow:
    agent_id: str
    name: str
    calls: int
    success_rate: float | None
    latency_avg: float | None
    latency_p95: float | None
    tokens: int
    cost: float
    unpriced_tokens: int
    last_error: str  # "rate_limited at 2026-12-01 14:02 UTC", or ""
    last_error_run: str  # the run it happened in, when it was a run's


def _last_errors(
    workspace_id: Any, scope: DashboardScope, agent_ids: Sequence[str]
) -> dict[str, tuple[str, str]]:
    """Each agent's latest failed call in the range: its hour from the rollups (the last two
    days' hours first, then the latest day with an error and its hours), then the call itself
    from the ledger within that hour only."""
    query = scope.query
    start_hour = query.start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)

    def latest_hours(low: datetime, high: datetime, agents: Sequence[str]) -> dict[str, datetime]:
        rows = rollup_rows(LedgerRollup, "hour", workspace_id, query, low, high)
        return dict(
            rows.filter(agent_id__in=agents)
            .exclude(error_kind="")
            .order_by()
            .values("agent_id")
            .annotate(latest=Max("hour"))
            .values_list("agent_id", "latest")
        )

    recent = max(start_hour, query.end - timedelta(days=2))
    latest = latest_hours(recent, query.end, agent_ids)
    missing = [agent for agent in agent_ids if agent not in latest]
    if missing and recent > start_hour:
        days = (
            rollup_rows(LedgerRollupDay, "day", workspace_id, query, start_hour, recent)
            .filter(agent_id__in=missing)
            .exclude(error_kind="")
            .order_by()
            .values("agent_id")
            .annotate(latest=Max("day"))
            .values_list("agent_id", "latest")
        )
        for agent, day in days:
            low = max(day, start_hour)
            latest.update(latest_hours(low, min(day + timedelta(days=1), recent), [agent]))
        # Hours of the partial first day are only in the hourly table.
        still = [agent for agent in missing if agent not in latest]
        if still:
            first_day_end = min(start_hour.replace(hour=0) + timedelta(days=1), recent)
            latest.update(latest_hours(start_hour, first_day_end, still))
    found: dict[str, tuple[str, str]] = {}
    if not latest:
        return found
    # Every agent's hour in one read (an OR of one indexed hour per agent): the failed calls of
    # those hours are few, and the latest of each agent's is kept.
    hours = Q()
    for agent_id, hour in latest.items():
        hours |= Q(
            started_at__gte=hour,
            started_at__lt=hour + timedelta(hours=1),
            source__agent_id=agent_id,
        )
    failed = (
        LedgerEntry.objects.filter(workspace_id=workspace_id)
        .filter(hours)
        .exclude(error_kind="")
        .order_by("-started_at")
        .values_list("source__agent_id", "error_kind", "started_at", "run_id")
    )
    for agent, error_kind, started_at, run_id in failed:
        agent_id = str(agent)
        if agent_id in found or agent_id not in latest:
            continue
        when = started_at.strftime("%Y-%m-%d %H:%M UTC")
        found[agent_id] = (f"{error_kind} at {when}", str(run_id) if run_id else "")
    return found


def agent_report(workspace_id: Any, scope: DashboardScope) -> list[AgentReportRow]:
    """Per agent: calls, success rate, average and p95 latency, tokens, cost, last error."""
    answer = _ask(
        workspace_id,
        scope,
        measure="calls,error_rate,latency_avg,latency_p95,tokens,cost",
        dimension="agent",
        granularity="total",
        order="cost",
    )
    rows = [row for row in answer["rows"] if row["agent"]]
    labels = answer["labels"].get("agent", {})
    errors = _last_errors(workspace_id, scope, [row["agent"] for row in rows])
    report = []
    for row in rows:
        rate = row["error_rate"]
        last, run = errors.get(row["agent"], ("", ""))
        report.append(
            AgentReportRow(
                agent_id=row["agent"],
                name=labels.get(row["agent"], "removed agent"),
                calls=row["calls"],
                success_rate=None if rate is None else round(1 - rate, 4),
                latency_avg=row["latency_avg"],
                latency_p95=row["latency_p95"],
                tokens=row["tokens"],
                cost=row["cost"],
                unpriced_tokens=row["unpriced_tokens"],
                last_error=last,
                last_error_run=run,
            )
        )
    return report


REPORT_COLUMNS = (
    "Agent",
    "Calls",
    "Success rate",
    "Avg latency (ms)",
    "p95 latency (ms)",
    "Tokens",
    "Cost (USD)",
    "Unpriced tokens",
    "Last error",
)


def _report_cells(row: AgentReportRow) -> list[str]:
    def number(value: float | None, digits: int = 0) -> str:
        return "unknown" if value is None else f"{value:.{digits}f}"

    return [
        row.name,
        str(row.calls),
        "unknown" if row.success_rate is None else f"{row.success_rate * 100:.1f} %",
        number(row.latency_avg),
        number(row.latency_p95),
        str(row.tokens),
        f"{row.cost:.6f}" + (" + price unknown" if row.unpriced_tokens else ""),
        str(row.unpriced_tokens),
        row.last_error or "none",
    ]


def agent_report_csv(rows: Sequence[AgentReportRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(REPORT_COLUMNS)
    for row in rows:
        # A leading =, +, - or @ would be a formula to a spreadsheet: names are quoted as text.
        cells = _report_cells(row)
        cells[0] = "'" + cells[0] if cells[0][:1] in ("=", "+", "-", "@") else cells[0]
        writer.writerow(cells)
    return out.getvalue()


def agent_report_markdown(rows: Sequence[AgentReportRow], title: str) -> str:
    def cell(text: str) -> str:
        return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")

    lines = [f"# {cell(title)}", "", "| " + " | ".join(REPORT_COLUMNS) + " |"]
    lines.append("|" + "|".join(["---", *["---:"] * 7, "---"]) + "|")
    for row in rows:
        lines.append("| " + " | ".join(cell(text) for text in _report_cells(row)) + " |")
    if not rows:
        lines.append("")
        lines.append("No agent made a call in this range.")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class TopLists:
    runs: list[Run]
    runs_unfiltered: list[str]  # filters the costliest runs do not follow
    workflows: list[tuple[str, str, float]]
    agents: list[tuple[str, str, float]]
    slowest_models: list[tuple[str, float | None, int]]
    retried_deployments: list[tuple[str, int, int]]


# Run rows carry no provider, model or agent, and finding the runs that used one would mean
# reading the ledger: the costliest runs follow the range, the workflow and the user only.
RUN_FILTERS = ("workflow", "user")


def _costliest_runs(workspace_id: Any, scope: DashboardScope) -> QuerySet[Run]:
    filters = scope.query.filters
    # Top-level runs: a sub-run's cost is part of its parent's (listing both counts it twice).
    runs = Run.objects.filter(
        created_at__gte=scope.query.start,
        created_at__lt=scope.query.end,
        cost__gt=0,
        parent__isnull=True,
    )
    if "workflow" in filters:
        # The workspace through the workflow, so the planner walks that workflow's runs by
        # cost (index workflows_run_wf_cost) rather than the workspace's, skipping the others'.
        runs = runs.filter(workflow_id__in=filters["workflow"], workflow__workspace_id=workspace_id)
    else:
        runs = runs.filter(workspace_id=workspace_id)
    if "user" in filters:
        runs = runs.filter(created_by_id__in=filters["user"])
    return (
        runs.select_related("workflow")
        .only("id", "cost", "status", "created_at", "workflow__name")
        .order_by("-cost")[:TOP]
    )


def top_lists(workspace_id: Any, scope: DashboardScope, part: str) -> TopLists:
    """The top lists of one card group: "costs" (runs, workflows, agents) or "slow" (models by
    p95 latency, deployments by retries); each group is its own request of the page."""

    def ranked(measures: tuple[str, ...], dimension: str) -> MetricsQuery:
        # The scope's own range and filters (parsed once), so both lists share one "now".
        return replace(
            scope.query,
            measures=measures,
            dimensions=(dimension,),
            granularity=None,
            order=measures[0],
            limit=TOP + 1,
        )

    top = TopLists(
        runs=[],
        runs_unfiltered=sorted(set(scope.query.filters) - set(RUN_FILTERS)),
        workflows=[],
        agents=[],
        slowest_models=[],
        retried_deployments=[],
    )
    if part == "costs":
        # One read grouped by workflow and agent serves both lists (summed apart here).
        pairs = _ask(
            workspace_id, scope, measure="cost", dimension="workflow,agent", granularity="total"
        )
        for dimension, into in (("workflow", top.workflows), ("agent", top.agents)):
            totals: dict[str, float] = {}
            for row in pairs["rows"]:
                if row[dimension]:
                    totals[row[dimension]] = totals.get(row[dimension], 0.0) + row["cost"]
            labels = pairs["labels"][dimension]
            ranked_ids = sorted(totals, key=lambda key: totals[key], reverse=True)
            into.extend((key, labels[key], totals[key]) for key in ranked_ids if totals[key] > 0)
            del into[TOP:]
        top.runs.extend(_costliest_runs(workspace_id, scope))
    else:
        # A deployment serves one model: one read grouped by both serves both lists.
        slow, retried = metrics_answers(
            workspace_id,
            [
                ranked(("latency_p95", "calls"), "model"),
                ranked(("retries", "calls"), "deployment"),
            ],
        )
        top.slowest_models.extend(
            (row["model"], row["latency_p95"], row["calls"])
            for row in slow["rows"][:TOP]
            if row["model"]
        )
        top.retried_deployments.extend(
            (retried["labels"]["deployment"][row["deployment"]], row["retries"], row["calls"])
            for row in retried["rows"][:TOP]
            if row["retries"] > 0
        )
    return top


def range_choices() -> list[tuple[str, str]]:
    names = {
        "24h": "Last 24 hours",
        "7d": "Last 7 days",
        "30d": "Last 30 days",
        "90d": "Last 90 days",
    }
    return [(key, names[key]) for key in RANGES]
