"""Answering a metrics query from the rollups (calls) or the run rows (runs), as JSON-ready data.

Calls are read from the rollups only, never from the ledger: an hour's row holds the sums
and latency histogram of that hour's calls, a day's row those of its day; a range reads its
whole days from `LedgerRollupDay` and its partial days from `LedgerRollup`, and keeps what it
read of whole past days in the cache until one of them changes (`_past_days_read`).
Percentiles are read from the summed histograms (see agents/histogram.py for their
precision). Times are UTC; a week starts on Monday.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import Trunc

from agents.histogram import FIRST_TOKEN_COLUMNS, LATENCY_COLUMNS, PRECISION_NOTE, quantile
from agents.models import Agent, LedgerRollup, LedgerRollupDay, OllamaNode, Provider
from agents.rollups import rollup_days_version
from monitoring.metrics.query import MEASURES, MetricsQuery
from workflows.models import Run, Workflow

CALL_COLUMNS = {
    "provider": "provider_id",
    "model": "model",
    "agent": "agent_id",
    "workflow": "workflow_id",
    "user": "user_id",
    "deployment": "deployment_id",
    "error_kind": "error_kind",
}
RUN_COLUMNS = {"workflow": "workflow_id", "user": "created_by_id", "status": "status"}
_STEPS = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(weeks=1)}
_QUANTILES = {"p50": 0.5, "p95": 0.95, "p99": 0.99}
# Past days' reads are kept this long at most: a bound on memory, and on staleness should a
# new days version ever fail to reach the cache.
DAYS_KEPT_SECONDS = 15 * 60
DAYS_KEPT_PREFIX = "metrics:past-days:"
logger = logging.getLogger(__name__)


def bucket_start(moment: datetime, granularity: str) -> datetime:
    moment = moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if granularity == "hour":
        return moment
    moment = moment.replace(hour=0)
    if granularity == "week":
        moment -= timedelta(days=moment.weekday())
    return moment


def time_buckets(query: MetricsQuery) -> list[datetime]:
    if query.granularity is None:
        return []
    step = _STEPS[query.granularity]
    moment = bucket_start(query.start, query.granularity)
    found = []
    while moment < query.end:
        found.append(moment)
        moment += step
    return found


def _sums_for(measures: Iterable[str]) -> dict[str, Any]:
    """The aggregates the measures are computed from."""
    sums: dict[str, Any] = {}
    for measure in measures:
        if measure in ("calls", "error_rate"):
            sums["agg_calls"] = Sum("calls")
        if measure in ("errors", "error_rate"):
            sums["agg_errors"] = Sum("calls", filter=~Q(error_kind=""))
        if measure == "tokens":
            sums["agg_prompt_tokens"] = Sum("prompt_tokens")
            sums["agg_completion_tokens"] = Sum("completion_tokens")
        if measure in (
            "cost",
            "prompt_tokens",
            "completion_tokens",
            "cached_tokens",
            "unpriced_tokens",
            "unpriced_calls",
            "retries",
        ):
            sums["agg_" + measure] = Sum(measure)
        if measure == "cost":
            sums["agg_unpriced_tokens"] = Sum("unpriced_tokens")
        if measure.startswith("latency_") or measure.startswith("first_token_"):
            prefix = "latency" if measure.startswith("latency_") else "first_token"
            if measure.endswith("_avg"):
                sums[f"agg_{prefix}_ms_sum"] = Sum(f"{prefix}_ms_sum")
                sums[f"agg_{prefix}_count"] = Sum(f"{prefix}_count")
            else:
                for column in LATENCY_COLUMNS if prefix == "latency" else FIRST_TOKEN_COLUMNS:
                    sums["agg_" + column] = Sum(column)
    return sums


def _ratio(part: Any, whole: Any) -> float | None:
    return None if not whole else round(float(part or 0) / float(whole), 6)


def _value(measure: str, sums: Mapping[str, Any]) -> float | int | None:
    """One measure from a group's aggregates; None where it cannot be computed."""
    if measure == "tokens":
        return int((sums.get("agg_prompt_tokens") or 0) + (sums.get("agg_completion_tokens") or 0))
    if measure == "cost":
        return round(float(sums.get("agg_cost") or Decimal(0)), 8)
    if measure == "error_rate":
        return _ratio(sums.get("agg_errors"), sums.get("agg_calls"))
    if measure.endswith("_avg"):
        prefix = measure.removesuffix("_avg")
        average = _ratio(sums.get(f"agg_{prefix}_ms_sum"), sums.get(f"agg_{prefix}_count"))
        return None if average is None else round(average, 1)
    for suffix, q in _QUANTILES.items():
        if measure.endswith(f"_{suffix}"):
            columns = LATENCY_COLUMNS if measure.startswith("latency_") else FIRST_TOKEN_COLUMNS
            found = quantile([int(sums.get("agg_" + column) or 0) for column in columns], q)
            if found is None:
                return None
            # Past the last edge only "slower than 120 s" is known: no number is made up.
            return None if found == float("inf") else round(found, 1)
    return int(sums.get("agg_" + measure) or 0)


def rollup_rows(
    model: Any,
    time_field: str,
    workspace_id: Any,
    query: MetricsQuery,
    low: datetime,
    high: datetime,
) -> QuerySet[Any]:
    """A rollup table's rows of the workspace between two times, narrowed by the filters."""
    rows = model.objects.filter(
        workspace_id=workspace_id, **{f"{time_field}__gte": low, f"{time_field}__lt": high}
    )
    for name, values in query.filters.items():
        rows = rows.filter(**{f"{CALL_COLUMNS[name]}__in": values})
    return rows


def _runs(workspace_id: Any, query: MetricsQuery) -> QuerySet[Run]:
    # Sub-workflow runs are steps of their parent's run, not outcomes of their own.
    rows = Run.objects.filter(
        workspace_id=workspace_id,
        created_at__gte=query.start,
        created_at__lt=query.end,
        parent__isnull=True,
    )
    for name, values in query.filters.items():
        rows = rows.filter(**{f"{RUN_COLUMNS[name]}__in": values})
    return rows


def _call_parts(query: MetricsQuery) -> list[tuple[Any, str, datetime, datetime]]:
    """Where the range's calls are read: whole days from the daily rollups (for day, week and
    total answers), the partial days at either end from the hourly ones."""
    start_hour = query.start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if query.granularity == "hour":
        return [(LedgerRollup, "hour", start_hour, query.end)]
    first_day = start_hour.replace(hour=0)
    if first_day < start_hour:
        first_day += timedelta(days=1)
    last_day = query.end.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if first_day >= last_day:
        return [(LedgerRollup, "hour", start_hour, query.end)]
    return [
        (LedgerRollup, "hour", start_hour, first_day),
        (LedgerRollupDay, "day", first_day, last_day),
        (LedgerRollup, "hour", last_day, query.end),
    ]


def _read(rows: QuerySet[Any], grouping: list[str], sums: dict[str, Any]) -> list[dict[str, Any]]:
    if not grouping:
        # values() with no names would group by every column: a plain total is an aggregate.
        return [rows.aggregate(**sums)]
    return list(rows.order_by().values(*grouping).annotate(**sums))


def _past_days_read(
    workspace_id: Any,
    query: MetricsQuery,
    span: tuple[datetime, datetime],
    grouping: list[str],
    sums: dict[str, Any],
    read: Callable[[], list[dict[str, Any]]],
) -> list[dict[str, Any]]:
    """The groups of whole past days, kept under the workspace's days version: they change only
    when a late call lands on such a day, which gives the workspace a new version (see
    agents/rollups.py). A 90-day answer then reads only its partial days, whatever it asks."""
    version = rollup_days_version(workspace_id)
    if version is None:
        return read()
    asked = (
        str(workspace_id),
        version,
        span[0].isoformat(),
        span[1].isoformat(),
        tuple(grouping),
        query.granularity,
        sorted((name, sorted(values)) for name, values in query.filters.items()),
        sorted(sums),
    )
    key = DAYS_KEPT_PREFIX + hashlib.sha256(repr(asked).encode()).hexdigest()
    try:
        kept = cache.get(key)
    except Exception:  # noqa: BLE001 - without the cache the rollups are read
        kept = None
    if kept is not None:
        return list(kept)
    found = read()
    try:
        cache.set(key, found, DAYS_KEPT_SECONDS)
    except Exception:  # noqa: BLE001 - kept or not, the answer is the same
        logger.warning("metrics: could not keep a past days' read in the cache")
    return found


def _raw_groups(workspace_id: Any, query: MetricsQuery) -> list[dict[str, Any]]:
    """Each group's aggregates (and time bucket), summed over where they were read."""
    columns = RUN_COLUMNS if query.over_runs else CALL_COLUMNS
    names = [columns[dimension] for dimension in query.dimensions]
    parts: list[tuple[QuerySet[Any], str, datetime, datetime]]
    if query.over_runs:
        parts = [(_runs(workspace_id, query), "created_at", query.start, query.end)]
        sums: dict[str, Any] = {"agg_runs": Count("id")}
    else:
        parts = [
            (rollup_rows(model, time_field, workspace_id, query, low, high), time_field, low, high)
            for model, time_field, low, high in _call_parts(query)
            if low < high
        ]
        sums = _sums_for(query.measures)
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for rows, time_field, low, high in parts:
        grouping = list(names)
        if query.granularity is not None:
            rows = rows.annotate(bucket=Trunc(time_field, query.granularity, tzinfo=UTC))
            grouping.append("bucket")
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        if time_field == "day" and high <= today:  # a range may end in the future
            found = _past_days_read(
                workspace_id,
                query,
                (low, high),
                grouping,
                sums,
                partial(_read, rows, grouping, sums),
            )
        else:
            found = _read(rows, grouping, sums)
        for raw in found:
            raw = dict(raw)
            if query.granularity is not None:
                raw["bucket"] = bucket_start(raw["bucket"], query.granularity)
            key = tuple(raw.get(name) for name in grouping)
            into = merged.get(key)
            if into is None:
                merged[key] = raw
                continue
            for name in sums:
                if raw[name] is not None:
                    into[name] = raw[name] if into[name] is None else into[name] + raw[name]
    return list(merged.values())


def _grouped(query: MetricsQuery, raw_groups: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    columns = RUN_COLUMNS if query.over_runs else CALL_COLUMNS
    found = []
    for raw in raw_groups:
        row: dict[str, Any] = {}
        if query.granularity is not None:
            row["time"] = raw["bucket"].isoformat()
        for dimension in query.dimensions:
            value = raw[columns[dimension]]
            row[dimension] = "" if value is None else str(value)
        for measure in query.measures:
            row[measure] = int(raw["agg_runs"] or 0) if query.over_runs else _value(measure, raw)
        if "cost" in query.measures:
            row["unpriced_tokens"] = int(raw.get("agg_unpriced_tokens") or 0)
        found.append(row)
    return found


def _deployment_label(
    deployment_id: str, providers: Mapping[str, str], nodes: Mapping[str, str]
) -> str:
    parts = deployment_id.split(":")
    provider = providers.get(parts[0], "removed provider")
    if len(parts) == 3:
        return f"{provider} / {nodes.get(parts[1], 'removed node')} / {parts[2]}"
    return f"{provider} / {parts[-1]}" if len(parts) > 1 else provider


def dimension_labels(
    workspace_id: Any, dimensions: Iterable[str], rows: list[dict[str, Any]]
) -> dict[str, dict[str, str]]:
    """Names for the ids in `rows`, per dimension ("" reads as none)."""
    labels: dict[str, dict[str, str]] = {}
    wanted = {
        dimension: {row[dimension] for row in rows if row.get(dimension)}
        for dimension in dimensions
    }

    def names(model: Any, ids: set[str], field: str = "name") -> dict[str, str]:
        valid = [value for value in ids if _looks_like_key(model, value)]
        found = model.objects.filter(pk__in=valid)
        if hasattr(model, "workspace"):
            found = found.filter(workspace_id=workspace_id)
        return {str(pk): str(name) for pk, name in found.values_list("pk", field)}

    for dimension, ids in wanted.items():
        if dimension == "provider":
            known = names(Provider, ids)
        elif dimension == "agent":
            known = names(Agent, ids)
        elif dimension == "workflow":
            known = names(Workflow, ids)
        elif dimension == "user":
            known = names(get_user_model(), ids, get_user_model().USERNAME_FIELD)
        elif dimension == "deployment":
            providers = names(Provider, {value.split(":")[0] for value in ids})
            nodes = {
                str(pk): name
                for pk, name in OllamaNode.objects.filter(
                    provider__workspace_id=workspace_id
                ).values_list("pk", "name")
            }
            known = {value: _deployment_label(value, providers, nodes) for value in ids}
        else:
            known = {value: value for value in ids}
        fallback = {
            "provider": "removed provider",
            "agent": "removed agent",
            "workflow": "removed workflow",
            "user": "removed user",
        }.get(dimension, "")
        labels[dimension] = {value: known.get(value, fallback or value) for value in ids}
        labels[dimension][""] = {
            "agent": "no agent",
            "workflow": "outside workflows",
            "user": "nobody",
            "error_kind": "no error",
        }.get(dimension, "none")
    return labels


def _looks_like_key(model: Any, value: str) -> bool:
    try:
        model._meta.pk.to_python(value)
    except Exception:  # noqa: BLE001 - a stale or foreign id names nothing
        return False
    return True


def metrics_answer(workspace_id: Any, query: MetricsQuery) -> dict[str, Any]:
    """The query's answer: rows of dimension values and measures, labels, units and notes."""
    return _answer(workspace_id, query, _raw_groups(workspace_id, query))


def _regrouped(
    query: MetricsQuery, raw_groups: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Groups read by more dimensions, summed down to the query's (every aggregate is a sum)."""
    names = [CALL_COLUMNS[dimension] for dimension in query.dimensions]
    if query.granularity is not None:
        names.append("bucket")
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for raw in raw_groups:
        key = tuple(raw.get(name) for name in names)
        into = merged.get(key)
        if into is None:
            merged[key] = dict(raw)
            continue
        for name, value in raw.items():
            if name.startswith("agg_") and value is not None:
                into[name] = value if into.get(name) is None else into[name] + value
    return list(merged.values())


def metrics_answers(workspace_id: Any, queries: Sequence[MetricsQuery]) -> list[dict[str, Any]]:
    """The answers of several call queries sharing their range, filters and granularity, from
    one read of the rollups grouped by all their dimensions together, summed down to each
    query's own. One scan of a 90-day range instead of one per query: worth it where the
    dimensions' combinations are few (models and their deployments)."""
    first = queries[0]
    shared = (first.start, first.end, dict(first.filters), first.granularity)
    if first.over_runs or any(
        query.over_runs
        or (query.start, query.end, dict(query.filters), query.granularity) != shared
        for query in queries
    ):
        raise ValueError("metrics_answers reads calls over one range, filters and granularity")
    combined = replace(
        first,
        measures=tuple(dict.fromkeys(m for query in queries for m in query.measures)),
        dimensions=tuple(dict.fromkeys(d for query in queries for d in query.dimensions)),
        order="",
        limit=None,
    )
    raw_groups = _raw_groups(workspace_id, combined)
    return [_answer(workspace_id, query, _regrouped(query, raw_groups)) for query in queries]


def _answer(
    workspace_id: Any, query: MetricsQuery, raw_groups: Iterable[Mapping[str, Any]]
) -> dict[str, Any]:
    rows = _grouped(query, raw_groups)
    if query.granularity is None and query.order:
        measure = query.order.lstrip("-")
        ascending = query.order.startswith("-")
        present = [row for row in rows if row.get(measure) is not None]
        present.sort(key=lambda row: row[measure], reverse=not ascending)
        rows = present + [row for row in rows if row.get(measure) is None]
    elif query.granularity is not None:
        rows.sort(key=lambda row: row["time"])
    if query.limit is not None and query.granularity is None:
        rows = rows[: query.limit]
    answer: dict[str, Any] = {
        "query": query.as_dict(),
        "units": {measure: MEASURES[measure] for measure in query.measures},
        "buckets": [moment.isoformat() for moment in time_buckets(query)],
        "rows": rows,
        "labels": dimension_labels(workspace_id, query.dimensions, rows),
    }
    if any("_p" in measure for measure in query.measures):
        answer["precision"] = PRECISION_NOTE
    if "cost" in query.measures:
        answer["unpriced_tokens"] = sum(row.get("unpriced_tokens", 0) for row in rows)
    return answer
