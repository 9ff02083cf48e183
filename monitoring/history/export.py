"""The history's export: every run the filters match, as CSV or JSON, written as it is read.

Rows are read in keyset chunks of EXPORT_CHUNK (the same index-backed query as a page of the
list), so memory holds one chunk whatever the size of the result. Inputs, outputs and reasons
go through the secret redaction; cells a spreadsheet would run as a formula are quoted.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any
from uuid import UUID

from asgiref.sync import sync_to_async

from agents.llm.redaction import redact_secrets
from monitoring.history.query import HistoryQuery, cursor_decode
from monitoring.history.selectors import history_page
from workflows.models import Run

EXPORT_CHUNK = 500
COLUMNS = (
    "id",
    "workflow",
    "version",
    "status",
    "launched_by",
    "launched_via",
    "created_at",
    "started_at",
    "finished_at",
    "duration_s",
    "steps",
    "model_calls",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "price_unknown",
    "pinned",
    "inputs",
    "output",
    "reason",
)


def _text(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return redact_secrets(text)


def export_record(run: Run) -> dict[str, Any]:
    duration = None
    if run.started_at and run.finished_at:
        duration = round((run.finished_at - run.started_at).total_seconds(), 3)
    return {
        "id": str(run.pk),
        "workflow": run.workflow.name,
        "version": run.version.number,
        "status": run.status,
        "launched_by": run.created_by.username if run.created_by else None,
        "launched_via": run.launched_via,
        "created_at": run.created_at.isoformat(),
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "duration_s": duration,
        "steps": run.steps_completed,
        "model_calls": run.model_calls,
        "prompt_tokens": run.prompt_tokens,
        "completion_tokens": run.completion_tokens,
        # A run with a call of unknown price has no known total: null, not a partial sum.
        "cost_usd": None if getattr(run, "price_unknown", False) else str(run.cost),
        "price_unknown": bool(getattr(run, "price_unknown", False)),
        "pinned": run.pinned,
        "inputs": {key: _text(value) for key, value in (run.inputs or {}).items()},
        "output": _text(run.output) if run.output is not None else None,
        "reason": _text(run.reason),
    }


def _chunks(workspace_id: UUID, query: HistoryQuery) -> Iterator[list[Run]]:
    query = replace(query, cursor=None)
    while True:
        page = history_page(workspace_id, query, page_size=EXPORT_CHUNK, counted=False)
        if page.runs:
            yield page.runs
        if page.next_cursor is None:
            return
        query = replace(query, cursor=cursor_decode(page.next_cursor))


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: Any) -> Any:
    if isinstance(value, dict):
        value = json.dumps(value, ensure_ascii=False)
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return "" if value is None else value


def _csv_line(values: list[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(values)
    return buffer.getvalue()


class _Writer:
    def __init__(self, fmt: str) -> None:
        self.fmt = fmt
        self.first = True

    def head(self) -> str:
        return _csv_line(list(COLUMNS)) if self.fmt == "csv" else "["

    def rows(self, runs: list[Run]) -> str:
        parts = []
        for run in runs:
            record = export_record(run)
            if self.fmt == "csv":
                parts.append(_csv_line([_csv_cell(record[name]) for name in COLUMNS]))
            else:
                parts.append(("" if self.first else ",\n") + json.dumps(record, ensure_ascii=False))
                self.first = False
        return "".join(parts)

    def tail(self) -> str:
        return "" if self.fmt == "csv" else "]\n"


def export_sync(workspace_id: UUID, query: HistoryQuery, fmt: str) -> Iterator[str]:
    writer = _Writer(fmt)
    yield writer.head()
    for runs in _chunks(workspace_id, query):
        yield writer.rows(runs)
    yield writer.tail()


async def export_async(workspace_id: UUID, query: HistoryQuery, fmt: str) -> AsyncIterator[str]:
    """The same stream for the ASGI server: each chunk is read in the database thread."""
    writer = _Writer(fmt)
    yield writer.head()
    chunks = _chunks(workspace_id, query)
    done = object()

    def next_rows() -> Any:
        runs = next(chunks, done)
        return done if runs is done else writer.rows(runs)  # type: ignore[arg-type]

    while True:
        rows = await sync_to_async(next_rows, thread_sensitive=True)()
        if rows is done:
            break
        yield rows
    yield writer.tail()
