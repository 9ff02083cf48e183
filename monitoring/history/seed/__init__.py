"""A realistic run history for reviewing and measuring the history at scale (`seed_history`).

Rows are shaped as the engine writes them (see `workflows/store.py` and `agents/ledger.py`): a
`Run` with its totals copied from its ledger, a `Step` per node visit keyed as the engine keys
them (`debate/turn-3`, `vote/voter-1`, `research-a[0]`), `RunEvent` rows numbered gaplessly per
run, and a `LedgerEntry` per provider attempt with its `source` naming the step and the agent.
The workflows are the built-in templates in a workspace of their own ("History sample"), each
published three times, over 90 days, launched by four people, the API, a schedule, the command
line and A2A; some calls are retried, some runs fail (each error kind of the gateway), some are
cancelled or wait for a person, and one provider has no known price.

Idempotent: run `i` is always generated from the seed `i`; a second call adds only the runs
missing up to the number asked for. Written in batches: COPY on PostgreSQL, `executemany` on
SQLite.

The marker: the run with id `LONG_RUN_ID` (inputs topic "seed-history: 200-step run") is a
round-robin debate of 199 turns plus the team's own step: 200 steps, for the trace figure.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone

from a2a_site.accounts.models import User, Workspace
from a2a_site.db import Columns
from agents.models import LedgerEntry
from monitoring.history.seed.runs import LONG_RUN_ID, LONG_RUN_STEPS, LONG_RUN_TOPIC, run_rows
from monitoring.history.seed.world import SEED_WORKSPACE_NAME, Batch, world_ensure
from workflows.models import Run, RunEvent, Step

__all__ = [
    "LONG_RUN_ID",
    "LONG_RUN_STEPS",
    "LONG_RUN_TOPIC",
    "SEED_WORKSPACE_NAME",
    "SeedResult",
    "seed_history",
]

BATCH_RUNS = 1000


@dataclass(frozen=True)
class SeedResult:
    workspace: Workspace
    created: int
    total: int
    long_run_id: uuid.UUID


def _copy_rows(model: type[Model], rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    columns = Columns(model)
    names = list(rows[0])
    json_fields = {
        f.name for f in model._meta.concrete_fields if f.get_internal_type() == "JSONField"
    }
    quoted = ", ".join(columns[name] for name in names)
    with connection.cursor() as cursor:
        raw = cursor.cursor
        with raw.copy(f"COPY {columns.table} ({quoted}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(
                    [
                        json.dumps(row[name])
                        if name in json_fields and row[name] is not None
                        else row[name]
                        for name in names
                    ]
                )


def _insert_rows(model: type[Model], rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    columns = Columns(model)
    names = list(rows[0])
    marks = ", ".join(["%s"] * len(names))
    sql = f"INSERT INTO {columns.table} ({', '.join(columns[n] for n in names)}) VALUES ({marks})"
    with connection.cursor() as cursor:
        cursor.executemany(sql, [columns.values(row) for row in rows])


def _write(batch: Batch) -> None:
    write: Callable[[type[Model], list[dict[str, Any]]], None] = (
        _copy_rows if connection.vendor == "postgresql" else _insert_rows
    )
    with transaction.atomic():
        write(Run, batch.runs)
        write(Step, batch.steps)
        write(RunEvent, batch.events)
        write(LedgerEntry, batch.ledger)


def _batches(start: int, stop: int, size: int) -> Iterator[range]:
    for first in range(start, stop, size):
        yield range(first, min(first + size, stop))


def seed_history(
    *,
    runs: int,
    member: User | None = None,
    progress: Callable[[int, int], None] | None = None,
    batch_runs: int = BATCH_RUNS,
) -> SeedResult:
    """Makes the sample workspace hold `runs` seeded runs (plus the 200-step one)."""
    now = timezone.now()
    world = world_ensure(member=member, now=now)
    seeded = Run.objects.filter(workspace=world.workspace).exclude(pk=LONG_RUN_ID)
    existing = seeded.count()
    if not Run.objects.filter(pk=LONG_RUN_ID).exists():
        batch = Batch()
        run_rows(world, batch, -1, long_run=True)
        _write(batch)
    created = 0
    for indices in _batches(existing, runs, batch_runs):
        batch = Batch()
        for index in indices:
            run_rows(world, batch, index)
        _write(batch)
        created += len(indices)
        if progress is not None:
            progress(existing + created, runs)
    return SeedResult(
        workspace=world.workspace,
        created=created,
        total=max(existing, runs),
        long_run_id=LONG_RUN_ID,
    )
