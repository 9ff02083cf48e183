"""Database work from async code, on a pool of threads with a connection each.

Django's own async ORM sends every query through one shared thread, which serializes hundreds of
concurrent runs behind each other. Run executors and the ledger use this pool instead: each
thread keeps its own connection (reused while CONN_MAX_AGE allows), and the pool bounds how many
connections one process opens.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from django.conf import settings
from django.db import connection
from django.db.models import Model

T = TypeVar("T")

_pool: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=settings.DB_THREADS, thread_name_prefix="a2a-db")
    return _pool


async def in_db_thread(func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    # The loop's own hand-off, with the caller's context: what sync_to_async(thread_sensitive=
    # False) does, without its per-call wrapping (a third of a trivial query's cost). Django's
    # connections are thread-local either way, so each pool thread keeps its own.
    call = functools.partial(func, *args, **kwargs)
    context = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(_executor(), context.run, call)


def db_threads_close() -> None:
    """Closes every pool thread's database connection (at shutdown, or before a test database
    is dropped) by giving each thread one closing task; the threads stay available."""
    if _pool is None:
        return
    count = _pool._max_workers
    barrier = threading.Barrier(count)

    def close() -> None:
        from django.db import connections

        connections.close_all()
        # Every thread takes exactly one task: none returns until all have closed theirs.
        barrier.wait(timeout=10)

    for future in [_pool.submit(close) for _ in range(count)]:
        future.result(timeout=15)


# Statements that may wait for the first ledger row of a model call: an agent step's "started"
# row is written with it, in the same database call (see DatabaseRunStore.step_started). Keyed
# by (run id, step key); added on the event loop, taken on a pool thread (dict operations are
# atomic under the interpreter lock).
_before_call: dict[tuple[str, str], tuple[str, list[Any]]] = {}


def statement_before_call(run_id: Any, step_key: str, sql: str, params: list[Any]) -> None:
    """Defers a statement until the step's first ledger row, or `statement_due`."""
    _before_call[(str(run_id), str(step_key))] = (sql, params)


def statement_due(run_id: Any, step_key: Any) -> tuple[str, list[Any]] | None:
    """The statement deferred for the step, if any, now to be executed (in a pool thread)."""
    if run_id is None or step_key is None:
        return None
    return _before_call.pop((str(run_id), str(step_key)), None)


def statements_drop(run_id: Any) -> None:
    """Forgets the run's deferred statements (its executor stopped touching it)."""
    for key in [key for key in list(_before_call) if key[0] == str(run_id)]:
        _before_call.pop(key, None)


def execute_together(cursor: Any, statements: list[tuple[str, list[Any]]]) -> None:
    """Executes the statements in order; on PostgreSQL, with client-side binding (Django's
    default), as one round trip, which PostgreSQL runs as one transaction."""
    together = connection.vendor == "postgresql" and not connection.settings_dict.get(
        "OPTIONS", {}
    ).get("server_side_binding")
    if together and len(statements) > 1:
        cursor.execute(
            "; ".join(sql for sql, _ in statements),
            [param for _, params in statements for param in params],
        )
        return
    for sql, params in statements:
        cursor.execute(sql, params)


class Columns:
    """One model's columns for the few statements written by hand on a hot path.

    Names come quoted from the model, and values go through each field's own preparation, so
    what reaches SQLite or PostgreSQL (UUIDs, JSON, datetimes, decimals) is what the ORM would
    send; only the ORM's per-statement compiling is skipped.
    """

    def __init__(self, model: type[Model]) -> None:
        self.model = model
        self._fields: dict[str, Any] = {f.name: f for f in model._meta.concrete_fields}
        self._quoted: dict[str, str] = {}
        self._converters: dict[tuple[str, str], tuple[Any, list[Any]]] = {}

    @property
    def table(self) -> str:
        return str(connection.ops.quote_name(self.model._meta.db_table))

    def __getitem__(self, name: str) -> str:
        """The quoted column of field `name`."""
        quoted = self._quoted.get(name)
        if quoted is None:
            column = self._fields[name].column
            quoted = self._quoted[name] = str(connection.ops.quote_name(column))
        return quoted

    def value(self, name: str, value: Any) -> Any:
        """`value` as a parameter for field `name`'s column."""
        return self._fields[name].get_db_prep_save(value, connection)

    def values(self, row: Mapping[str, Any]) -> list[Any]:
        return [
            self._fields[name].get_db_prep_save(value, connection) for name, value in row.items()
        ]

    def loaded(self, name: str, raw: Any) -> Any:
        """A value read by hand-written SQL, as the ORM would return it."""
        key = (connection.vendor, name)
        found = self._converters.get(key)
        if found is None:
            field = self._fields[name]
            column = field.get_col(self.model._meta.db_table)
            converters = connection.ops.get_db_converters(column)
            converters += field.get_db_converters(connection)
            found = self._converters[key] = (column, converters)
        column, converters = found
        for converter in converters:
            raw = converter(raw, column, connection)
        return raw
