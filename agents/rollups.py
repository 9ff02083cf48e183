"""The ledger's hourly rollups: added to as each call finishes, rebuilt and checked from the ledger.

One rule decides what a finished ledger row adds (`fact_of`); the incremental path (the call's
own transaction), `rollups_rebuild` and `rollups_check` all go through it, so they cannot
disagree about what counts. A row counts once it is no longer pending: completed, failed, or
closed as unknown by the reaper. A row changed after it counted (a late answer overwriting the
reaper's estimate) is taken out with its old values and added back with its new ones.

What a row adds: one call under its key (hour of its start, provider, deployment, model, agent,
workflow, user, error kind), its tokens and cost, one retry if it was not the request's first
attempt, its tokens again as unpriced when its price is unknown, and its latency (and, when it
streamed, its time to first token) in a histogram bucket.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from django.core.cache import cache
from django.db import connection, transaction

from a2a_site.db import Columns
from agents.histogram import (
    BUCKET_EDGES_MS,
    BUCKETS,
    FIRST_TOKEN_COLUMNS,
    LATENCY_COLUMNS,
    bucket_of,
)
from agents.models import ROLLUP_SUM_FIELDS, LedgerEntry, LedgerRollup, LedgerRollupDay

KEY_FIELDS: Final = (
    "hour",
    "provider_id",
    "deployment_id",
    "model",
    "agent_id",
    "workflow_id",
    "user_id",
    "error_kind",
)
SUM_FIELDS: Final = (
    *ROLLUP_SUM_FIELDS,
    *LATENCY_COLUMNS,
    *FIRST_TOKEN_COLUMNS,
)
# What a finished ledger row is read with, by every path.
LEDGER_FIELDS: Final = (
    "workspace",
    "started_at",
    "provider",
    "deployment_id",
    "model",
    "attempt",
    "status",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cost",
    "cost_estimated",
    "price_source",
    "latency_ms",
    "first_token_ms",
    "error_kind",
    "source",
)
_LEDGER = Columns(LedgerEntry)
_ROLLUP = Columns(LedgerRollup)
_DAY = Columns(LedgerRollupDay)
_ALL_ROLLUP_FIELDS: Final = ("workspace", *KEY_FIELDS, *SUM_FIELDS)
logger = logging.getLogger(__name__)

Key = tuple[Any, ...]  # (workspace id, *KEY_FIELDS)


@dataclass(frozen=True, slots=True)
class Fact:
    key: Key
    sums: Mapping[str, Any]
    # The latency and first-token buckets counted in `sums` (-1: none).
    buckets: tuple[int, int] = (-1, -1)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def hour_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def fact_of(row: Mapping[str, Any]) -> Fact | None:
    """What one ledger row (by LEDGER_FIELDS) adds to the rollups; None while it is pending."""
    if row["status"] == LedgerEntry.Status.PENDING:
        return None
    source = row["source"] if isinstance(row["source"], Mapping) else {}
    key = (
        str(row["workspace"]),
        hour_of(row["started_at"]),
        _text(row["provider"]),
        row["deployment_id"] or "",
        row["model"] or "",
        _text(source.get("agent_id")),
        _text(source.get("workflow_id")),
        _text(source.get("user_id")),
        row["error_kind"] or "",
    )
    tokens = (row["prompt_tokens"] or 0) + (row["completion_tokens"] or 0)
    unpriced = row["price_source"] == LedgerEntry.PriceSource.UNKNOWN
    sums: dict[str, Any] = {
        "calls": 1,
        "retries": 1 if (row["attempt"] or 1) > 1 else 0,
        "prompt_tokens": row["prompt_tokens"] or 0,
        "completion_tokens": row["completion_tokens"] or 0,
        "cached_tokens": row["cached_tokens"] or 0,
        "cost": Decimal(row["cost"] or 0),
        "unpriced_calls": 1 if unpriced else 0,
        "unpriced_tokens": tokens if unpriced else 0,
        "estimated_calls": 1 if row["cost_estimated"] else 0,
    }
    latency = row["latency_ms"]
    latency_bucket = first_token_bucket = -1
    if latency is not None:
        latency_bucket = bucket_of(latency)
        sums["latency_ms_sum"] = latency
        sums["latency_count"] = 1
        sums[LATENCY_COLUMNS[latency_bucket]] = 1
    first_token = row["first_token_ms"]
    if first_token is not None:
        first_token_bucket = bucket_of(first_token)
        sums["first_token_ms_sum"] = first_token
        sums["first_token_count"] = 1
        sums[FIRST_TOKEN_COLUMNS[first_token_bucket]] = 1
    return Fact(key, sums, (latency_bucket, first_token_bucket))


def _fields(time_field: str) -> tuple[str, ...]:
    return ("workspace", time_field, *KEY_FIELDS[1:], *SUM_FIELDS)


# The text depends only on the table and the number of rows: built once per shape, not per
# call (joining some eighty quoted names cost more than SQLite took to run the statement).
# Few kept: a rebuild's texts of up to 200 rows are some 50 KB each.
@functools.lru_cache(maxsize=8)
def _upsert_sql(table: Columns, time_field: str, rows: int) -> str:
    fields = _fields(time_field)
    name = table.table
    columns = ", ".join(table[field] for field in fields)
    marks = "(" + ", ".join(["%s"] * len(fields)) + ")"
    conflict = ", ".join(table[field] for field in fields[: 1 + len(KEY_FIELDS)])
    updates = ", ".join(
        f"{table[field]} = {name}.{table[field]} + EXCLUDED.{table[field]}" for field in SUM_FIELDS
    )
    values = ", ".join([marks] * rows)
    return (
        f"INSERT INTO {name} ({columns}) VALUES {values} "
        f"ON CONFLICT ({conflict}) DO UPDATE SET {updates}"
    )


def _params(table: Columns, time_field: str, key: Key, sums: Mapping[str, Any]) -> list[Any]:
    fields = _fields(time_field)
    # One look-up of the thread's connection for the whole key, not one per column.
    params = table.values(dict(zip(fields, key, strict=False)))
    # The sums are whole numbers but the cost, which alone needs its field's preparation
    # (this runs for every call: preparing some thirty integers cost more than the upsert).
    params += [
        table.value(name, sums.get(name, 0)) if name == "cost" else int(sums.get(name, 0))
        for name in SUM_FIELDS
    ]
    return params


def day_key(key: Key) -> Key:
    return (key[0], key[1].replace(hour=0), *key[2:])


def _merged(facts: Iterable[tuple[Key, Mapping[str, Any]]]) -> dict[Key, dict[str, Any]]:
    merged: dict[Key, dict[str, Any]] = {}
    for key, sums in facts:
        into = merged.setdefault(key, {})
        for name, value in sums.items():
            into[name] = into.get(name, 0) + value
    return merged


def _write(cursor: Any, table: Columns, time_field: str, merged: dict[Key, dict[str, Any]]) -> None:
    items = list(merged.items())
    for start in range(0, len(items), 200):
        chunk = items[start : start + 200]
        params = [param for key, sums in chunk for param in _params(table, time_field, key, sums)]
        cursor.execute(_upsert_sql(table, time_field, len(chunk)), params)


# Readers may keep what they summed from whole past days (the daily rows before today) under
# the workspace's "days version"; a change to such a day gives the workspace a new version once
# it commits. Today's row changes with every call and is never kept, so the common write skips
# this. The margin covers clocks that disagree about when today began.
DAYS_VERSION_PREFIX: Final = "rollups:days-version:"
_CLOCK_MARGIN: Final = timedelta(minutes=10)


def rollup_days_version(workspace_id: Any) -> str | None:
    """The workspace's current days version (made on first use); None if the cache is down."""
    try:
        return str(cache.get_or_set(f"{DAYS_VERSION_PREFIX}{workspace_id}", uuid.uuid4().hex, None))
    except Exception:  # noqa: BLE001 - without the cache readers just read the rollups
        logger.warning("rollups: the cache is unavailable; daily rollups read uncached")
        return None


def _days_changed(workspace_ids: Iterable[Any]) -> None:
    def renew() -> None:
        for workspace_id in workspace_ids:
            try:
                cache.set(f"{DAYS_VERSION_PREFIX}{workspace_id}", uuid.uuid4().hex, None)
            except Exception:  # noqa: BLE001 - what readers keep expires on its own
                logger.warning("rollups: could not renew the days version of %s", workspace_id)

    # Now, and again once the change commits: a reader between the two may keep what it read
    # before the commit, under a version the second renewal retires.
    renew()
    transaction.on_commit(renew)


def rollups_add(
    cursor: Any, facts: Iterable[tuple[Key, Mapping[str, Any]]], *, hours: bool = True
) -> None:
    """Adds sums to their hourly and daily rows (negative sums take a row's share out).

    One statement per table: a statement may not touch a row twice (PostgreSQL refuses), so
    facts with the same key are merged first.
    """
    merged = _merged(facts)
    if hours:
        _write(cursor, _ROLLUP, "hour", merged)
    days = _merged((day_key(key), sums) for key, sums in merged.items())
    _write(cursor, _DAY, "day", days)
    today = hour_of(datetime.now(UTC) + _CLOCK_MARGIN).replace(hour=0)
    past = {key[0] for key in days if key[1] < today}
    if past:
        _days_changed(past)


def _negated(sums: Mapping[str, Any]) -> dict[str, Any]:
    return {name: -value for name, value in sums.items()}


def _returning() -> str:
    return ", ".join(_LEDGER[name] for name in LEDGER_FIELDS)


def _loaded(raw: Iterable[Any]) -> dict[str, Any]:
    return {
        name: _LEDGER.loaded(name, value) for name, value in zip(LEDGER_FIELDS, raw, strict=True)
    }


def _finish_pending(cursor: Any, call: Any, fields: Mapping[str, Any]) -> bool:
    """Completes the row if it is still pending and adds its share; False if it was not."""
    assignments = ", ".join(f"{_LEDGER[name]} = %s" for name in fields)
    cursor.execute(
        f"UPDATE {_LEDGER.table} SET {assignments} WHERE {_LEDGER['call_id']} = %s "
        f"AND {_LEDGER['status']} = %s RETURNING {_returning()}",
        [*_LEDGER.values(fields), call, LedgerEntry.Status.PENDING],
    )
    found = cursor.fetchone()
    if found is None:
        return False
    fact = fact_of(_loaded(found))
    if fact is not None:
        rollups_add(cursor, [(fact.key, fact.sums)])
    return True


def ledger_finish(call_id: str, fields: Mapping[str, Any]) -> None:
    """Completes a ledger row and adds it to the rollups, in one transaction.

    The usual case, a pending row finishing, is one UPDATE … RETURNING and one upsert. A row
    that already counted (closed meanwhile by the reaper) takes the answer that came after all:
    its old share is taken out and its new one added.
    """
    call = _LEDGER.value("call_id", call_id)
    with transaction.atomic(), connection.cursor() as cursor:
        if not _finish_pending(cursor, call, fields):
            _rewrite(cursor, call, fields)


def ledger_close_pending(call_id: Any, fields: Mapping[str, Any]) -> int:
    """Closes a row only if it is still pending (the reaper's orphans); 1 if it did."""
    with transaction.atomic(), connection.cursor() as cursor:
        return int(_finish_pending(cursor, _LEDGER.value("call_id", call_id), fields))


def _rewrite(cursor: Any, call: Any, fields: Mapping[str, Any]) -> None:
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    cursor.execute(
        f"SELECT {_returning()} FROM {_LEDGER.table} WHERE {_LEDGER['call_id']} = %s{lock}",
        [call],
    )
    before = cursor.fetchone()
    if before is None:
        return
    assignments = ", ".join(f"{_LEDGER[name]} = %s" for name in fields)
    cursor.execute(
        f"UPDATE {_LEDGER.table} SET {assignments} WHERE {_LEDGER['call_id']} = %s "
        f"RETURNING {_returning()}",
        [*_LEDGER.values(fields), call],
    )
    after = cursor.fetchone()
    changes: list[tuple[Key, Mapping[str, Any]]] = []
    old = fact_of(_loaded(before))
    if old is not None:
        changes.append((old.key, _negated(old.sums)))
    new = fact_of(_loaded(after)) if after is not None else None
    if new is not None:
        changes.append((new.key, new.sums))
    if changes:
        rollups_add(cursor, changes)


# Rebuilding and checking, a day at a time, so memory stays bounded on a long history.


def _expected(workspace_id: Any, start: datetime, end: datetime) -> dict[Key, dict[str, Any]]:
    totals: dict[Key, dict[str, Any]] = defaultdict(lambda: defaultdict(int))
    rows = (
        LedgerEntry.objects.filter(workspace_id=workspace_id, started_at__gte=start)
        .filter(started_at__lt=end)
        .exclude(status=LedgerEntry.Status.PENDING)
        .order_by()
        .values_list(*LEDGER_FIELDS)
    )
    for raw in rows.iterator(chunk_size=5000):
        fact = fact_of(dict(zip(LEDGER_FIELDS, raw, strict=True)))
        if fact is None:
            continue
        bucket = totals[fact.key]
        for name, value in fact.sums.items():
            bucket[name] += value
    return totals


def _stored(
    workspace_id: Any, start: datetime, end: datetime, *, days: bool = False
) -> dict[Key, dict[str, Any]]:
    stored: dict[Key, dict[str, Any]] = {}
    model: Any = LedgerRollupDay if days else LedgerRollup
    time_field = "day" if days else "hour"
    rows = model.objects.filter(
        workspace_id=workspace_id, **{f"{time_field}__gte": start, f"{time_field}__lt": end}
    ).values_list("workspace_id", time_field, *KEY_FIELDS[1:], *SUM_FIELDS)
    width = 1 + len(KEY_FIELDS)
    for raw in rows.iterator(chunk_size=5000):
        key = (str(raw[0]), hour_of(raw[1]), *raw[2:width])
        stored[key] = {
            name: value for name, value in zip(SUM_FIELDS, raw[width:], strict=True) if value
        }
    return stored


def _days(workspace_id: Any) -> Iterator[tuple[datetime, datetime]]:
    """Day windows covering the workspace's ledger and rollups."""
    from django.db.models import Max, Min

    ledger = LedgerEntry.objects.filter(workspace_id=workspace_id).aggregate(
        low=Min("started_at"), high=Max("started_at")
    )
    rolled = LedgerRollup.objects.filter(workspace_id=workspace_id).aggregate(
        low=Min("hour"), high=Max("hour")
    )
    lows = [moment for moment in (ledger["low"], rolled["low"]) if moment is not None]
    highs = [moment for moment in (ledger["high"], rolled["high"]) if moment is not None]
    if not lows:
        return
    day = hour_of(min(lows)).replace(hour=0)
    last = max(highs)
    while day <= last:
        yield day, day + timedelta(days=1)
        day += timedelta(days=1)


def _workspaces() -> list[Any]:
    ids = set(LedgerEntry.objects.order_by().values_list("workspace_id", flat=True).distinct())
    ids |= set(LedgerRollup.objects.order_by().values_list("workspace_id", flat=True).distinct())
    return sorted(ids, key=str)


@dataclass(frozen=True, slots=True)
class Mismatch:
    key: Key
    field: str
    expected: Any
    stored: Any

    def __str__(self) -> str:
        workspace, hour, *dims = self.key
        named = ", ".join(
            f"{name}={value!r}" for name, value in zip(KEY_FIELDS[1:], dims, strict=True) if value
        )
        return (
            f"workspace {workspace} {hour:%Y-%m-%d %H}:00 [{named}] {self.field}: "
            f"ledger says {self.expected}, rollup holds {self.stored}"
        )


def _differences(
    expected: dict[Key, dict[str, Any]], stored: dict[Key, dict[str, Any]]
) -> Iterator[Mismatch]:
    for key in expected.keys() | stored.keys():
        want = {name: value for name, value in expected.get(key, {}).items() if value}
        have = stored.get(key, {})
        for name in sorted(want.keys() | have.keys()):
            if want.get(name, 0) != have.get(name, 0):
                yield Mismatch(key, name, want.get(name, 0), have.get(name, 0))


def rollups_check() -> list[Mismatch]:
    """Every difference between the stored rollups (hourly and daily) and a recomputation from
    the ledger."""
    found: list[Mismatch] = []
    for workspace_id in _workspaces():
        for start, end in _days(workspace_id):
            expected = _expected(workspace_id, start, end)
            found.extend(_differences(expected, _stored(workspace_id, start, end)))
            by_day = _merged((day_key(key), sums) for key, sums in expected.items())
            found.extend(_differences(by_day, _stored(workspace_id, start, end, days=True)))
    return found


def _bucket_counts(column: str) -> list[str]:
    """COUNT … FILTER per histogram bucket, with `bucket_of`'s edges (inclusive upper bounds)."""
    counts = []
    for index in range(BUCKETS):
        low = BUCKET_EDGES_MS[index - 1] if index > 0 else None
        high = BUCKET_EDGES_MS[index] if index < len(BUCKET_EDGES_MS) else None
        conditions = [f"{column} IS NOT NULL"]
        if low is not None:
            conditions.append(f"{column} > {low}")
        if high is not None:
            conditions.append(f"{column} <= {high}")
        counts.append(f"COUNT(*) FILTER (WHERE {' AND '.join(conditions)})")
    return counts


def _rebuild_sql() -> str:
    """One INSERT … SELECT … GROUP BY for a day of one workspace, on PostgreSQL: the same sums
    as `fact_of`, computed by the database (`rollups_check` recomputes them in Python)."""
    ledger = {name: _LEDGER[name] for name in LEDGER_FIELDS}

    def source(key: str) -> str:
        return f"COALESCE({ledger['source']}->>'{key}', '')"

    unknown = f"{ledger['price_source']} = 'unknown'"
    selected = [
        ledger["workspace"],
        f"date_trunc('hour', {ledger['started_at']} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
        f"COALESCE({ledger['provider']}::text, '')",
        ledger["deployment_id"],
        ledger["model"],
        source("agent_id"),
        source("workflow_id"),
        source("user_id"),
        ledger["error_kind"],
        "COUNT(*)",
        f"COUNT(*) FILTER (WHERE {ledger['attempt']} > 1)",
        f"SUM({ledger['prompt_tokens']})",
        f"SUM({ledger['completion_tokens']})",
        f"SUM({ledger['cached_tokens']})",
        f"SUM({ledger['cost']})",
        f"COUNT(*) FILTER (WHERE {unknown})",
        f"COALESCE(SUM({ledger['prompt_tokens']} + {ledger['completion_tokens']}) "
        f"FILTER (WHERE {unknown}), 0)",
        f"COUNT(*) FILTER (WHERE {ledger['cost_estimated']})",
        f"COALESCE(SUM({ledger['latency_ms']}), 0)",
        f"COUNT({ledger['latency_ms']})",
        f"COALESCE(SUM({ledger['first_token_ms']}), 0)",
        f"COUNT({ledger['first_token_ms']})",
        *_bucket_counts(ledger["latency_ms"]),
        *_bucket_counts(ledger["first_token_ms"]),
    ]
    columns = ", ".join(_ROLLUP[name] for name in _ALL_ROLLUP_FIELDS)
    return (
        f"INSERT INTO {_ROLLUP.table} ({columns}) SELECT {', '.join(selected)} "
        f"FROM {_LEDGER.table} WHERE {ledger['workspace']} = %s AND {ledger['started_at']} >= %s "
        f"AND {ledger['started_at']} < %s AND {ledger['status']} <> 'pending' "
        f"GROUP BY {', '.join(str(n) for n in range(1, 10))}"
    )


def rollups_rebuild(workspace_id: Any = None) -> int:
    """Recomputes the rollups from the ledger (all workspaces, or one); returns rows written.

    Each day is replaced in its own transaction. Meant for a quiet ledger (after seeding, or to
    repair what `rollups_check` found); a call finishing in the very day being replaced may need
    a second rebuild, which `check_rollups` would point out.
    """
    written = 0
    for workspace in [workspace_id] if workspace_id is not None else _workspaces():
        for start, end in _days(workspace):
            with transaction.atomic():
                LedgerRollup.objects.filter(
                    workspace_id=workspace, hour__gte=start, hour__lt=end
                ).delete()
                LedgerRollupDay.objects.filter(
                    workspace_id=workspace, day__gte=start, day__lt=end
                ).delete()
                with connection.cursor() as cursor:
                    if connection.vendor == "postgresql":
                        cursor.execute(
                            _rebuild_sql(), [_LEDGER.value("workspace", workspace), start, end]
                        )
                        written += cursor.rowcount
                        _day_from_hours(cursor, workspace, start, end)
                    else:
                        expected = _expected(workspace, start, end)
                        rollups_add(cursor, expected.items())
                        written += len(expected)
        _days_changed([workspace])
    return written


def _day_from_hours(cursor: Any, workspace: Any, start: datetime, end: datetime) -> None:
    """The day's row per key, summed from its hourly rows."""
    from django.db.models import Sum

    hourly = (
        LedgerRollup.objects.filter(workspace_id=workspace, hour__gte=start, hour__lt=end)
        .order_by()
        .values(*KEY_FIELDS[1:])
        .annotate(**{f"total_{name}": Sum(name) for name in SUM_FIELDS})
    )
    facts = [
        (
            (str(workspace), start, *(row[name] for name in KEY_FIELDS[1:])),
            {name: row[f"total_{name}"] for name in SUM_FIELDS},
        )
        for row in hourly
    ]
    rollups_add(cursor, facts, hours=False)


# A call completed by the process that started it: its row as written at its start is known, so
# its share is computed here rather than read back, and on PostgreSQL the completion and both
# upserts are one statement (the upserts insert only if the UPDATE found the row pending).


# The `fact` CTE's columns: a call's rollup key, its day, its sums, and the index of the
# latency and first-token buckets it fell in (-1: none).
_FACT_COLUMNS: Final = (
    "workspace",
    *KEY_FIELDS,
    "day",
    *ROLLUP_SUM_FIELDS,
    "latency_bucket",
    "first_token_bucket",
)


def _fact_sql(source: str) -> str:
    """The `fact` CTE: its columns as parameters typed by the rollups' columns, selected once
    from `source` (so no row when `source` has none)."""

    def typed(name: str) -> str:
        if name.endswith("_bucket"):
            return "%s::integer"
        model = LedgerRollupDay if name == "day" else LedgerRollup
        field: Any = model._meta.get_field(name)
        # Text as text: an explicit cast to varchar(n) would cut a longer value short, where
        # the column's own assignment refuses it.
        if field.get_internal_type() in ("CharField", "TextField"):
            return "%s::text"
        return f"%s::{field.db_type(connection)}"

    quote = connection.ops.quote_name
    names = ", ".join(quote(name) for name in _FACT_COLUMNS)
    return f"fact ({names}) AS (SELECT {', '.join(map(typed, _FACT_COLUMNS))} FROM {source})"


def _upsert_from_fact_sql(table: Columns, time_field: str) -> str:
    """The rollup's upsert from the `fact` CTE: its key (the hour, or for the days table the
    day), its sums, and a 1 in the buckets the call fell in, 0 in the others."""
    fields = _fields(time_field)
    name = table.table
    quote = connection.ops.quote_name
    selected = [
        *(quote(field) for field in ("workspace", time_field, *KEY_FIELDS[1:])),
        *(quote(field) for field in ROLLUP_SUM_FIELDS),
        *(f"({quote('latency_bucket')} = {index})::integer" for index in range(BUCKETS)),
        *(f"({quote('first_token_bucket')} = {index})::integer" for index in range(BUCKETS)),
    ]
    columns = ", ".join(table[field] for field in fields)
    conflict = ", ".join(table[field] for field in fields[: 1 + len(KEY_FIELDS)])
    updates = ", ".join(
        f"{table[field]} = {name}.{table[field]} + EXCLUDED.{table[field]}" for field in SUM_FIELDS
    )
    return (
        f"INSERT INTO {name} ({columns}) SELECT {', '.join(selected)} FROM fact "
        f"ON CONFLICT ({conflict}) DO UPDATE SET {updates}"
    )


def _fact_params(fact: Fact) -> list[Any]:
    """`_fact_sql`'s parameters for the fact of one finished ledger row."""
    key, sums = fact.key, fact.sums
    params = _ROLLUP.values(dict(zip(("workspace", *KEY_FIELDS), key, strict=True)))
    params.append(_DAY.value("day", day_key(key)[1]))
    params += [
        _ROLLUP.value(name, sums.get(name, 0)) if name == "cost" else int(sums.get(name, 0))
        for name in ROLLUP_SUM_FIELDS
    ]
    params += fact.buckets
    return params


_FINISH_SQL: dict[tuple[str, tuple[str, ...]], str] = {}


def ledger_finish_statement(
    call_id: Any, fields: Mapping[str, Any], started: Mapping[str, Any]
) -> tuple[str, list[Any]]:
    """PostgreSQL: one statement that completes the row if it is still pending and adds its
    share (from `started`, the row as its start wrote it, and `fields`) to its hour and day.
    Its one result row counts the rows completed (0: not pending any more).

    The share goes once, as its key, its non-histogram sums and the index of its latency and
    first-token buckets, and each rollup's upsert spreads the buckets into columns: 40
    parameters instead of 140 (two full rows of 64 columns, nearly all zeros), which were
    most of the client's conversion work and the server's parsing per model call."""
    names = tuple(fields)
    sql = _FINISH_SQL.get((connection.vendor, names))
    if sql is None:
        assignments = ", ".join(f"{_LEDGER[name]} = %s" for name in names)
        sql = _FINISH_SQL[(connection.vendor, names)] = (
            f"WITH done AS (UPDATE {_LEDGER.table} SET {assignments} "
            f"WHERE {_LEDGER['call_id']} = %s AND {_LEDGER['status']} = %s RETURNING 1), "
            f"{_fact_sql('done')}, "
            f"hours AS ({_upsert_from_fact_sql(_ROLLUP, 'hour')}), "
            f"days AS ({_upsert_from_fact_sql(_DAY, 'day')}) "
            f"SELECT COUNT(*) FROM done"
        )
    fact = fact_of({**started, **fields})
    assert fact is not None  # a completion is never pending
    params = [*_LEDGER.values(fields), _LEDGER.value("call_id", call_id)]
    params.append(LedgerEntry.Status.PENDING)
    params += _fact_params(fact)
    return sql, params


def ledger_finish_followed(
    cursor: Any,
    call_id: Any,
    fields: Mapping[str, Any],
    started: Mapping[str, Any],
    *,
    completed: bool,
) -> None:
    """After `ledger_finish_statement`: a row that was no longer pending takes the answer
    anyway (as `ledger_finish` does), and a past day's change renews its days version."""
    if not completed:
        with transaction.atomic():  # the caller's, or one of its own
            _rewrite(cursor, _LEDGER.value("call_id", call_id), fields)
        return
    fact = fact_of({**started, **fields})
    today = hour_of(datetime.now(UTC) + _CLOCK_MARGIN).replace(hour=0)
    if fact is not None and fact.key[1].replace(hour=0) < today:
        _days_changed([fact.key[0]])


@functools.lru_cache(maxsize=16)
def _finish_pending_sql(fields: tuple[str, ...]) -> str:
    assignments = ", ".join(f"{_LEDGER[name]} = %s" for name in fields)
    return (
        f"UPDATE {_LEDGER.table} SET {assignments} WHERE {_LEDGER['call_id']} = %s "
        f"AND {_LEDGER['status']} = %s"
    )


def ledger_finish_known(
    cursor: Any, call_id: Any, fields: Mapping[str, Any], started: Mapping[str, Any]
) -> None:
    """`ledger_finish` for a row whose start is known, inside the caller's transaction: on
    PostgreSQL one statement, on SQLite the UPDATE and the two upserts."""
    if connection.vendor == "postgresql":
        cursor.execute(*ledger_finish_statement(call_id, fields, started))
        completed = bool(cursor.fetchone()[0])
        ledger_finish_followed(cursor, call_id, fields, started, completed=completed)
        return
    call = _LEDGER.value("call_id", call_id)
    cursor.execute(
        _finish_pending_sql(tuple(fields)),
        [*_LEDGER.values(fields), call, LedgerEntry.Status.PENDING],
    )
    if cursor.rowcount != 1:
        _rewrite(cursor, call, fields)
        return
    fact = fact_of({**started, **fields})
    if fact is not None:
        rollups_add(cursor, [(fact.key, fact.sums)])
