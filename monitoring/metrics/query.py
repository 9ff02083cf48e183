"""The metrics query: what may be asked (measures, dimensions, filters, granularity, range),
parsed from a query string and validated with messages a person can act on."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Final

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

# Measures over the ledger's rollups, and the unit each is in.
CALL_MEASURES: Final[Mapping[str, str]] = {
    "calls": "calls",
    "cost": "USD",
    "tokens": "tokens",
    "prompt_tokens": "tokens",
    "completion_tokens": "tokens",
    "cached_tokens": "tokens",
    "unpriced_tokens": "tokens",
    "unpriced_calls": "calls",
    "errors": "calls",
    "error_rate": "ratio",
    "retries": "calls",
    "latency_avg": "ms",
    "latency_p50": "ms",
    "latency_p95": "ms",
    "latency_p99": "ms",
    "first_token_avg": "ms",
    "first_token_p50": "ms",
    "first_token_p95": "ms",
    "first_token_p99": "ms",
}
# Measures over runs (outcomes come from the run rows, not the ledger).
RUN_MEASURES: Final[Mapping[str, str]] = {"runs": "runs"}
MEASURES: Final = {**CALL_MEASURES, **RUN_MEASURES}

CALL_DIMENSIONS: Final = (
    "provider",
    "model",
    "agent",
    "workflow",
    "user",
    "deployment",
    "error_kind",
)
RUN_DIMENSIONS: Final = ("workflow", "user", "status")
GRANULARITIES: Final = ("hour", "day", "week")
RANGES: Final[Mapping[str, timedelta]] = {
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
}
DEFAULT_RANGE: Final = "7d"
MAX_SPAN: Final = timedelta(days=400)
MAX_BUCKETS: Final = 800
MAX_FILTER_VALUES: Final = 50
MAX_LIMIT: Final = 100
RUN_STATUSES: Final = ("queued", "running", "waiting", "succeeded", "failed", "cancelled")
_ID_TEXT = re.compile(r"^[\w.:/@+-]{0,200}$")


class MetricsQueryError(ValueError):
    """A query that cannot be answered, with the reason (and the parameter at fault)."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter


@dataclass(frozen=True)
class MetricsQuery:
    measures: tuple[str, ...]
    dimensions: tuple[str, ...] = ()
    filters: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    granularity: str | None = None  # None: one total per group, no time series
    start: datetime = field(default_factory=lambda: timezone.now() - RANGES[DEFAULT_RANGE])
    end: datetime = field(default_factory=timezone.now)
    range_name: str = DEFAULT_RANGE  # a preset, or "custom"
    order: str = ""  # a measure to sort groups by, descending ("-" first: ascending)
    limit: int | None = None

    @property
    def over_runs(self) -> bool:
        return self.measures[0] in RUN_MEASURES

    def as_dict(self) -> dict[str, object]:
        return {
            "measures": list(self.measures),
            "dimensions": list(self.dimensions),
            "filters": {name: list(values) for name, values in self.filters.items()},
            "granularity": self.granularity or "total",
            "range": self.range_name,
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "order": self.order,
            "limit": self.limit,
        }


def auto_granularity(span: timedelta) -> str:
    """Hours up to two days, days up to ~two months, weeks beyond."""
    if span <= timedelta(days=2):
        return "hour"
    if span <= timedelta(days=62):
        return "day"
    return "week"


def _moment(parameter: str, text: str, *, end: bool) -> datetime:
    text = text.strip()
    parsed: datetime | None = None
    try:
        parsed = parse_datetime(text)
        if parsed is None:
            day: date | None = parse_date(text)
            if day is not None:
                # A date alone means the whole day: `to` is its end.
                parsed = datetime.combine(day + timedelta(days=1) if end else day, time(), UTC)
    except ValueError:
        parsed = None
    if parsed is None:
        raise MetricsQueryError(
            parameter,
            f"“{text[:40]}” is not a date or time; use e.g. 2026-12-01 or 2026-12-01T08:00Z.",
        )
    return parsed if timezone.is_aware(parsed) else parsed.replace(tzinfo=UTC)


def _choice(parameter: str, value: str, allowed: Sequence[str]) -> str:
    if value not in allowed:
        shown = ", ".join(allowed)
        raise MetricsQueryError(
            parameter, f"Unknown {parameter} “{value[:40]}”; use one of: {shown}."
        )
    return value


def _listed(params: Mapping[str, Sequence[str]], name: str) -> list[str]:
    """A parameter given repeatedly or comma-separated, blanks dropped."""
    found: list[str] = []
    for raw in params.get(name, ()):
        found.extend(part.strip() for part in raw.split(",") if part.strip())
    return found


def _single(params: Mapping[str, Sequence[str]], name: str) -> str:
    values = [value for value in params.get(name, ()) if value.strip()]
    if len(values) > 1:
        raise MetricsQueryError(name, f"Give {name} once.")
    return values[0].strip() if values else ""


def metrics_query_parse(
    params: Mapping[str, Sequence[str]], *, now: datetime | None = None
) -> MetricsQuery:
    """A query from request parameters (a QueryDict's lists), or MetricsQueryError.

    measure — one or more of MEASURES (repeat it or separate by commas; all over calls or all
    over runs); dimension — up to two to group by; one parameter per dimension filters to its
    values (`model=gpt-4o-mini&agent=<id>`); granularity — hour, day, week, auto (from the
    range) or total; range — 24h, 7d, 30d, 90d, or from/to as dates or times; order and limit
    for top lists.
    """
    now = now or timezone.now()
    getlist = getattr(params, "getlist", None)
    if getlist is not None:  # a QueryDict: its plain lookups give only the last value
        params = {name: getlist(name) for name in params}
    measures = _listed(params, "measure")
    if not measures:
        raise MetricsQueryError("measure", "Say what to measure: measure=cost, calls, tokens, …")
    for measure in measures:
        _choice("measure", measure, list(MEASURES))
    over_runs = measures[0] in RUN_MEASURES
    if any((measure in RUN_MEASURES) != over_runs for measure in measures):
        raise MetricsQueryError(
            "measure", "The runs measure cannot be mixed with measures over calls."
        )
    allowed_dimensions = RUN_DIMENSIONS if over_runs else CALL_DIMENSIONS
    dimensions = _listed(params, "dimension")
    for dimension in dimensions:
        _choice("dimension", dimension, allowed_dimensions)
    if len(set(dimensions)) != len(dimensions) or len(dimensions) > 2:
        raise MetricsQueryError("dimension", "Group by at most two different dimensions.")

    filters: dict[str, tuple[str, ...]] = {}
    for name in (*CALL_DIMENSIONS, "status"):
        values = _listed(params, name)
        if not values:
            continue
        if name not in allowed_dimensions:
            over = "runs" if over_runs else "calls"
            raise MetricsQueryError(name, f"Measures over {over} cannot be filtered by {name}.")
        if len(values) > MAX_FILTER_VALUES:
            raise MetricsQueryError(name, f"Filter {name} by at most {MAX_FILTER_VALUES} values.")
        for value in values:
            if not _ID_TEXT.match(value):
                raise MetricsQueryError(name, f"“{value[:40]}” is not a {name} this query knows.")
        if name == "status":
            for value in values:
                _choice("status", value, RUN_STATUSES)
        filters[name] = tuple(dict.fromkeys(values))

    range_name = _single(params, "range")
    start_text, end_text = _single(params, "from"), _single(params, "to")
    if start_text or end_text:
        if range_name and range_name != "custom":
            raise MetricsQueryError("range", "Give either range or from/to, not both.")
        end = _moment("to", end_text, end=True) if end_text else now
        start = _moment("from", start_text, end=False) if start_text else end - RANGES["7d"]
        range_name = "custom"
        if start >= end:
            raise MetricsQueryError("from", "The range must start before it ends.")
        if end - start > MAX_SPAN:
            raise MetricsQueryError("from", f"A range may span at most {MAX_SPAN.days} days.")
    else:
        range_name = _choice("range", range_name or DEFAULT_RANGE, [*RANGES, "custom"])
        if range_name == "custom":
            raise MetricsQueryError("from", "A custom range needs from and to.")
        end, start = now, now - RANGES[range_name]

    granularity_text = _single(params, "granularity") or "auto"
    granularity: str | None
    if granularity_text == "total":
        granularity = None
    elif granularity_text == "auto":
        granularity = auto_granularity(end - start)
    else:
        granularity = _choice("granularity", granularity_text, [*GRANULARITIES, "auto", "total"])
        step = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(weeks=1)}
        if (end - start) / step[granularity] > MAX_BUCKETS:
            raise MetricsQueryError(
                "granularity",
                f"{granularity} over this range makes more than {MAX_BUCKETS} points; "
                "choose a coarser granularity or a shorter range.",
            )

    order = _single(params, "order")
    if order and order.lstrip("-") not in measures:
        raise MetricsQueryError("order", "Order by one of the measures asked for.")
    limit_text = _single(params, "limit")
    limit: int | None = None
    if limit_text:
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_LIMIT:
            raise MetricsQueryError("limit", f"limit must be a whole number from 1 to {MAX_LIMIT}.")
        limit = int(limit_text)
    return MetricsQuery(
        measures=tuple(dict.fromkeys(measures)),
        dimensions=tuple(dimensions),
        filters=filters,
        granularity=granularity,
        start=start,
        end=end,
        range_name=range_name,
        order=order,
        limit=limit,
    )
