"""Reads of the run history: one page at a time, by keyset, on an index that matches the sort.

A page is `WHERE workspace = … AND (key, id) < (last key, last id) ORDER BY key DESC, id DESC
LIMIT n + 1`: the row comparison is an index condition, so the hundredth page costs what the
first does (no OFFSET). The keys are written as SQL here and, identically, in the PostgreSQL
indexes of migration 0005, so the planner recognises them. Counts stop at COUNT_CAP.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID

from django.db import connection
from django.db.models import BooleanField, Exists, OuterRef, QuerySet
from django.db.models.expressions import RawSQL
from django.utils.dateparse import parse_datetime

from agents.models import Agent, LedgerEntry, Provider
from monitoring.history.query import SORTS, HistoryQuery, cursor_encode
from workflows.models import Run, RunStatus, Workflow
from workflows.selectors import run_roots_of_descendants

PAGE_SIZE = 50
COUNT_CAP = 1000
_RUN = '"workflows_run"'

# Sort keys as SQL: (PostgreSQL, SQLite). The PostgreSQL ones are the expressions indexed.
_KEYS = {
    "started": (f'{_RUN}."created_at"', f'{_RUN}."created_at"'),
    "duration": (
        f'COALESCE(EXTRACT(EPOCH FROM ({_RUN}."finished_at" - {_RUN}."started_at")), 0)',
        f'COALESCE((julianday({_RUN}."finished_at") - julianday({_RUN}."started_at"))'
        f" * 86400.0, 0)",
    ),
    "cost": (f'{_RUN}."cost"', f'{_RUN}."cost"'),
    "tokens": (
        f'({_RUN}."prompt_tokens" + {_RUN}."completion_tokens")',
        f'({_RUN}."prompt_tokens" + {_RUN}."completion_tokens")',
    ),
}


def _key_sql(sort: str) -> str:
    postgres, sqlite = _KEYS[sort.lstrip("-")]
    return postgres if connection.vendor == "postgresql" else sqlite


def _key_param(sort: str, text: str) -> Any:
    """A cursor's key as the database compares it; ValueError if it is not one."""
    name = sort.lstrip("-")
    if name == "started":
        moment = parse_datetime(text)
        if moment is None:
            raise ValueError(text)
        return moment
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValueError(text) from None
    if name == "tokens":
        return int(number)
    return _number(number) if name == "duration" else number


def _number(value: Decimal) -> Decimal | float:
    """Seconds as the duration key compares them: SQLite computes it as a float, and compares
    a float with a decimal sent as text as smaller, whatever their values."""
    return value if connection.vendor == "postgresql" else float(value)


def _key_text(sort: str, value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _ledger_has(**conditions: Any) -> Exists:
    return Exists(LedgerEntry.objects.filter(run_id=OuterRef("pk"), **conditions))


def _facet(runs: QuerySet[Run], facet: str, value: str, **ledger: Any) -> QuerySet[Run]:
    """Runs whose calls had `value` (a model, provider, agent or error kind). On PostgreSQL
    the run's facets, by their GIN index (a live run has them once it stops); SQLite asks the
    ledger, which is small there and has no containment lookup on JSON."""
    if connection.vendor == "postgresql":
        return runs.filter(facets__contains={facet: [value]})
    return runs.filter(_ledger_has(**ledger))


def _search(runs: QuerySet[Run], text: str) -> QuerySet[Run]:
    if connection.vendor == "postgresql":
        # The stored tsvector of the search text, GIN-indexed (migration 0005).
        matches = RawSQL(
            f"{_RUN}.\"search_vector\" @@ websearch_to_tsquery('english'::regconfig, %s)",
            [text],
            output_field=BooleanField(),
        )
        return runs.filter(matches)
    # The embedded fallback: every word, anywhere in the text, any case.
    for word in text.split():
        word = word.strip('"').lstrip("-")
        if word and word.lower() not in ("or", "and"):
            runs = runs.filter(search_text__icontains=word)
    return runs


def history_runs(workspace_id: UUID, query: HistoryQuery) -> QuerySet[Run]:
    """Top-level runs of the workspace matching every filter of `query`, unordered."""
    runs = Run.objects.filter(workspace_id=workspace_id, parent__isnull=True)
    if query.workflow_id:
        runs = runs.filter(workflow_id=query.workflow_id)
        if query.version:
            runs = runs.filter(version__number=query.version)
    statuses = set(query.statuses)
    if query.waiting:
        statuses = (statuses & {RunStatus.WAITING}) if statuses else {RunStatus.WAITING}
        statuses = statuses or {"none"}
    if statuses:
        runs = runs.filter(status__in=sorted(statuses))
    if query.by:
        runs = runs.filter(created_by_id=query.by)
    if query.via:
        runs = runs.filter(launched_via=query.via)
    if query.started_from:
        runs = runs.filter(created_at__gte=query.started_from)
    if query.started_before:
        runs = runs.filter(created_at__lt=query.started_before)
    if query.min_cost is not None:
        runs = runs.filter(cost__gte=query.min_cost)
    if query.max_cost is not None:
        runs = runs.filter(cost__lte=query.max_cost)
    duration = _key_sql("duration")
    if query.min_duration is not None:
        runs = runs.filter(
            RawSQL(f"{duration} >= %s", [_number(query.min_duration)], output_field=BooleanField())
        )
    if query.max_duration is not None:
        runs = runs.filter(
            RawSQL(f"{duration} <= %s", [_number(query.max_duration)], output_field=BooleanField())
        )
    if query.pinned:
        runs = runs.filter(pinned=True)
    if query.error == "any":
        runs = runs.filter(status=RunStatus.FAILED)
    elif query.error:
        runs = _facet(runs, "errors", query.error, error_kind=query.error)
    if query.model:
        runs = _facet(runs, "models", query.model, model=query.model)
    if query.provider_id:
        provider = str(query.provider_id)
        runs = _facet(runs, "providers", provider, provider_id=query.provider_id)
    if query.agent_id:
        agent = str(query.agent_id)
        runs = _facet(runs, "agents", agent, source__agent_id=agent)
    if query.q:
        runs = _search(runs, query.q)
    return runs


def history_ordered(runs: QuerySet[Run], sort: str) -> QuerySet[Run]:
    descending = SORTS[sort][1]
    key = RawSQL(_key_sql(sort), [])
    return runs.annotate(sort_key=key).order_by(
        key.desc() if descending else key.asc(), "-pk" if descending else "pk"
    )


def history_after(runs: QuerySet[Run], sort: str, cursor: tuple[str, str]) -> QuerySet[Run]:
    """Rows after the cursor's (key, id) in the sort's order; ValueError for a bad cursor."""
    key_text, run_text = cursor
    key = _key_param(sort, key_text)
    run_id = UUID(run_text)
    id_param = Run._meta.pk.get_db_prep_value(run_id, connection)
    operator = "<" if SORTS[sort][1] else ">"
    comparison = f'({_key_sql(sort)}, {_RUN}."id") {operator} (%s, %s)'
    return runs.filter(RawSQL(comparison, [key, id_param], output_field=BooleanField()))


# What a row of the list reads: the run's own columns and two names, never the graph.
ROW_FIELDS = (
    "id",
    "status",
    "inputs",
    "created_at",
    "started_at",
    "finished_at",
    "launched_via",
    "pinned",
    "steps_completed",
    "prompt_tokens",
    "completion_tokens",
    "cost",
    "model_calls",
    "workflow__name",
    "version__number",
    "created_by__username",
    "api_token__name",
    "api_token__prefix",
)


def _mark_unknown_prices(runs: list[Any]) -> None:
    """Sets `price_unknown` on runs with a call of unknown price: one query by the ledger's
    run index for the whole page (as a subquery per row, PostgreSQL hashed the whole ledger)."""
    # A run's cost includes its sub-runs', so do its unknown prices.
    roots = run_roots_of_descendants([run.pk for run in runs])
    unknown = {
        roots[run_id]
        for run_id in LedgerEntry.objects.filter(
            run_id__in=list(roots), price_source=LedgerEntry.PriceSource.UNKNOWN
        )
        .order_by()
        .values_list("run_id", flat=True)
        .distinct()
    }
    for run in runs:
        run.price_unknown = run.pk in unknown


@dataclass(frozen=True)
class HistoryPage:
    runs: list[Run]
    next_cursor: str | None
    count: int
    count_capped: bool

    @property
    def count_label(self) -> str:
        return f"{COUNT_CAP:,}+" if self.count_capped else f"{self.count:,}"


def history_page(
    workspace_id: UUID,
    query: HistoryQuery,
    *,
    page_size: int | None = None,
    counted: bool = True,
) -> HistoryPage:
    page_size = page_size or PAGE_SIZE
    matching = history_runs(workspace_id, query)
    page = history_ordered(matching, query.sort)
    if query.cursor is not None:
        page = history_after(page, query.sort, query.cursor)
    rows: list[Any] = list(
        page.select_related("workflow", "version", "created_by", "api_token").only(*ROW_FIELDS)[
            : page_size + 1
        ]
    )
    next_cursor = None
    if len(rows) > page_size:
        rows = rows[:page_size]
        last = rows[-1]
        next_cursor = cursor_encode(_key_text(query.sort, last.sort_key), str(last.pk))
    _mark_unknown_prices(rows)
    # Counting every match is slow at scale: count up to the cap and say "1,000+".
    # In the order of the time index, so the planner walks an index (not the table) to the cap.
    if not counted:
        count = 0
    elif query.cursor is None and next_cursor is None:
        count = len(rows)  # the first page holds every match: nothing more to count
    else:
        capped = matching.order_by("-created_at", "-pk").values("pk")[: COUNT_CAP + 1]
        count = capped.count()
    return HistoryPage(rows, next_cursor, min(count, COUNT_CAP), count > COUNT_CAP)


@dataclass(frozen=True)
class HistoryChoices:
    workflows: list[tuple[str, str]]
    agents: list[tuple[str, str]]
    providers: list[tuple[str, str]]
    models: list[str]
    people: list[tuple[int, str]]


def history_choices(workspace_id: UUID) -> HistoryChoices:
    """What the filter menus offer: the workspace's workflows, agents, providers, models and
    members. Models come from the providers' last connection tests and the agents' configs;
    reading them from a million ledger rows would cost more than the page."""
    from a2a_site.accounts.models import Membership

    workflows = list(
        Workflow.objects.filter(workspace_id=workspace_id)
        .order_by("name")
        .values_list("pk", "name")
    )
    agents = list(
        Agent.objects.filter(workspace_id=workspace_id).order_by("name").values_list("pk", "name")
    )
    providers = list(
        Provider.objects.filter(workspace_id=workspace_id)
        .order_by("name")
        .values_list("pk", "name", "models_available")
    )
    models: set[str] = set()
    for _pk, _name, available in providers:
        models.update(str(name) for name in available or [] if name)
    recent = (
        LedgerEntry.objects.filter(workspace_id=workspace_id)
        .order_by("-started_at")
        .values_list("model", flat=True)[:500]
    )
    models.update(recent)
    people = list(
        Membership.objects.filter(workspace_id=workspace_id)
        .order_by("user__username")
        .values_list("user_id", "user__username")
    )
    return HistoryChoices(
        workflows=[(str(pk), name) for pk, name in workflows],
        agents=[(str(pk), name) for pk, name in agents],
        providers=[(str(pk), name) for pk, name, _available in providers],
        models=sorted(models),
        people=people,
    )
