"""Database work from async code, on a pool of threads with a connection each.

Django's own async ORM sends every query through one shared thread, which serializes hundreds of
concurrent runs behind each other. Run executors and the ledger use this pool instead: each
thread keeps its own connection (reused while CONN_MAX_AGE allows), and the pool bounds how many
connections one process opens.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import functools
import hashlib
import logging
import os
import queue
import threading
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, connections, models
from django.db.models import Model

T = TypeVar("T")
logger = logging.getLogger(__name__)


class _DbThreads:
    """Threads with a database connection each, taking calls from one queue.

    What a ThreadPoolExecutor under `run_in_executor` does, for half its CPU per call: the
    thread hands the answer straight to the caller's loop, without a concurrent future chained
    to an asyncio one (their locks, conditions and callbacks are most of a trivial query's
    hand-off). Threads start as calls find none idle, up to `size`, and stay.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._calls: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        # Threads waiting for a call, each promised to one call at most.
        self._idle = 0
        self._lock = threading.Lock()
        self._drained = False

    def put(self, call: tuple[Any, Any, contextvars.Context, Callable[[], Any]]) -> None:
        """Queues `(loop or None, future, context, func)`: the result or the exception goes
        to the asyncio future on its loop, or to the concurrent future when loop is None."""
        with self._lock:
            if self._drained:
                raise RuntimeError("cannot take database calls after interpreter shutdown")
            if self._idle:
                self._idle -= 1
                starting = None
            elif len(self._threads) < self.size:
                starting = threading.Thread(
                    target=self._serve, name=f"a2a-db_{len(self._threads)}", daemon=True
                )
                self._threads.append(starting)
            else:
                starting = None
        self._calls.put(call)
        if starting is not None:
            starting.start()

    @property
    def started(self) -> int:
        return len(self._threads)

    def drain(self) -> None:
        """Lets the threads finish what is queued, then stop (at the interpreter's exit, as a
        ThreadPoolExecutor's do: a ledger row being completed is written, not dropped)."""
        with self._lock:
            threads, self._threads = self._threads, []
            self._drained = True
        for _ in threads:
            self._calls.put(None)
        for thread in threads:
            thread.join()

    def _serve(self) -> None:
        calls = self._calls
        while True:
            call = calls.get()
            if call is None:
                return
            loop, future, context, func = call
            if loop is None:
                _run_for_thread(future, context, func)
            elif not future.cancelled():  # a call cancelled before it began is not made
                try:
                    result = context.run(func)
                except BaseException as error:
                    _to_loop(loop, _settle_error, future, error)
                else:
                    _to_loop(loop, _settle, future, result)
            del call, loop, future, context, func  # nothing held while idle
            with self._lock:
                self._idle += 1


def _to_loop(loop: asyncio.AbstractEventLoop, callback: Callable[..., None], *args: Any) -> None:
    if not loop.is_closed():
        with contextlib.suppress(RuntimeError):  # closed meanwhile: nobody awaits it
            loop.call_soon_threadsafe(callback, *args)


def _settle(future: asyncio.Future[Any], result: Any) -> None:
    if not future.done():
        future.set_result(result)


def _settle_error(future: asyncio.Future[Any], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)


def _run_for_thread(
    future: concurrent.futures.Future[Any], context: contextvars.Context, func: Callable[[], Any]
) -> None:
    if not future.set_running_or_notify_cancel():
        return
    try:
        result = context.run(func)
    except BaseException as error:
        future.set_exception(error)
    else:
        future.set_result(result)


_pool: _DbThreads | None = None
_pool_lock = threading.Lock()


def _drain_at_exit() -> None:
    if _pool is not None:
        _pool.drain()


def _forget_in_child() -> None:
    # A forked child (a Celery pool process) has none of its parent's threads.
    global _pool, _pool_lock
    _pool = None
    _pool_lock = threading.Lock()


# Just before the interpreter joins its threads, as concurrent.futures registers its own.
threading._register_atexit(_drain_at_exit)  # type: ignore[attr-defined]
os.register_at_fork(after_in_child=_forget_in_child)


def _pool_size() -> int:
    """`A2A_DB_THREADS`; on SQLite one. SQLite lets one connection write at a time: a second
    thread that wanted to write meanwhile waited in SQLite's busy handler, which sleeps 1, 2,
    5, 10... ms before trying again, and four parallel branches finishing together waited
    several of those. One thread takes them in turn, each as soon as the last is done."""
    if connections[DEFAULT_DB_ALIAS].vendor == "sqlite":
        return 1
    return int(settings.DB_THREADS)


def _threads() -> _DbThreads:
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = _DbThreads(_pool_size())
    return _pool


async def in_db_thread(func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    # With the caller's context, as sync_to_async(thread_sensitive=False) would, without its
    # per-call wrapping. Django's connections are thread-local, so each thread keeps its own.
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    call = functools.partial(func, *args, **kwargs) if args or kwargs else func
    _threads().put((loop, future, contextvars.copy_context(), call))
    return await future


def db_thread_submit(func: Callable[[], T]) -> concurrent.futures.Future[T]:
    """`func` on a database thread, from code that is not on a loop."""
    future: concurrent.futures.Future[T] = concurrent.futures.Future()
    _threads().put((None, future, contextvars.copy_context(), func))
    return future


def db_threads_close() -> None:
    """Closes every database thread's connection (at shutdown, or before a test database is
    dropped) by giving each thread one closing call; the threads stay available."""
    if _pool is None:
        return
    count = _pool.size
    barrier = threading.Barrier(count)

    def close() -> None:
        from django.db import connections

        connections.close_all()
        # Every thread takes exactly one call: none returns until all have closed theirs.
        barrier.wait(timeout=10)

    for future in [db_thread_submit(close) for _ in range(count)]:
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


def execute_one(cursor: Any, sql: str, params: list[Any]) -> None:
    """`cursor.execute(sql, params)`, prepared on PostgreSQL if long (`execute_statements`)."""
    if _preparing():
        _execute_prepared(cursor, [(sql, params)])
    else:
        cursor.execute(sql, params)


def together_possible() -> bool:
    """Whether statements can go as one text, one round trip and one transaction: PostgreSQL
    with client-side binding (Django's default)."""
    return connection.vendor == "postgresql" and not connection.settings_dict.get(
        "OPTIONS", {}
    ).get("server_side_binding")


def execute_together(cursor: Any, statements: list[tuple[str, list[Any]]]) -> None:
    """Executes the statements in order; on PostgreSQL, with client-side binding (Django's
    default), as one round trip, which PostgreSQL runs as one transaction."""
    if together_possible():
        execute_statements(cursor, statements)
        return
    for sql, params in statements:
        cursor.execute(sql, params)


# A RETURNING expression (PostgreSQL) that lets the transaction of the statement it ends, in
# autocommit, commit without waiting for its WAL to reach the disk: the change is visible to
# every other session at once, as with any commit; only a crash of the database server within
# a fraction of a second (wal_writer_delay) can undo it. WAL is written in order, so the next
# flushed commit of any session makes it durable too. For writes whose loss in such a crash
# loses nothing (see its uses); set_config(..., true) lasts until the transaction's end.
UNFLUSHED_COMMIT = "set_config('synchronous_commit', 'off', true)"


# PostgreSQL parses and plans a statement sent as text every time: for the engine's long
# statements (a step's completion with its call's ledger row and two rollups is some 16 KB and
# 150 parameters) that was most of the server's time per step, and more than the statement's
# execution. Such a statement is prepared once per connection (PREPARE, its parameters as $n)
# and then sent as `EXECUTE name(parameters)`, still with client-side binding: several still go
# in one round trip and one implicit transaction. Not inside a transaction block (a failed
# PREPARE would abort it), nor with A2A_PG_PREPARED_STATEMENTS off.
PREPARE_MIN_LENGTH: Final = 400
_PREPARED_PER_CONNECTION: Final = 64  # beyond: DEALLOCATE ALL, and prepare again as used
_names: dict[str, str] = {}
_unpreparable: set[str] = set()  # texts PostgreSQL refused to prepare: sent as they are


# psycopg splits a query around its placeholders anew at every execution when the query has
# more than 50 parameters: it caches the split only for smaller ones. A step's completion goes
# as `EXECUTE name(...)` with some 150 parameters, the same text every time, and its split was
# 0.2 ms of a worker's CPU per step. Texts cached stay bounded by psycopg's own limits: 4 KB
# each, 128 of them.
CACHED_CONVERSION_PARAMS: Final = 512


def _cache_long_conversions() -> None:
    try:
        from psycopg import _queries
    except ImportError:  # no PostgreSQL driver installed: nothing to do
        return
    limit = getattr(_queries, "MAX_CACHED_STATEMENT_PARAMS", None)
    if isinstance(limit, int) and limit < CACHED_CONVERSION_PARAMS:
        _queries.MAX_CACHED_STATEMENT_PARAMS = CACHED_CONVERSION_PARAMS


_cache_long_conversions()


def _preparing() -> bool:
    return (
        connection.vendor == "postgresql"
        and not connection.in_atomic_block
        and connection.get_autocommit()  # no transaction open that a failed PREPARE would abort
        and bool(getattr(settings, "PG_PREPARED_STATEMENTS", True))
        and not connection.settings_dict.get("OPTIONS", {}).get("server_side_binding")
    )


def _session_prepared(cursor: Any) -> set[str]:
    """The names prepared on this thread's current connection (a new connection, none)."""
    raw = connection.connection
    held = getattr(connection, "_a2a_prepared", None)
    if held is None or held[0] is not raw:
        held = (raw, set())
        connection._a2a_prepared = held  # type: ignore[attr-defined]
    names: set[str] = held[1]
    if len(names) >= _PREPARED_PER_CONNECTION:
        cursor.execute("DEALLOCATE ALL")
        names.clear()
    return names


def _forget_prepared() -> None:
    held = getattr(connection, "_a2a_prepared", None)
    if held is not None:
        held[1].clear()


def _prepared(cursor: Any, statements: list[tuple[str, list[Any]]]) -> list[tuple[str, list[Any]]]:
    """The statements, each long one as an EXECUTE of its prepared form (prepared now if this
    connection has not yet)."""
    names = None
    sent = []
    for sql, params in statements:
        if (
            len(sql) < PREPARE_MIN_LENGTH
            or not params
            or sql in _unpreparable
            or "%%" in sql  # a literal percent sign: left to the plain text
        ):
            sent.append((sql, params))
            continue
        name = _names.get(sql)
        if name is None:
            if len(_names) > 1024:  # shapes come from the code, but keep it bounded
                _names.clear()
            digest = hashlib.blake2b(sql.encode(), digest_size=10).hexdigest()
            name = _names[sql] = f"a2a_{digest}"
        if names is None:
            names = _session_prepared(cursor)
        if name not in names:
            pieces = sql.split("%s")
            if len(pieces) - 1 != len(params):
                _unpreparable.add(sql)
                sent.append((sql, params))
                continue
            text = pieces[0] + "".join(f"${i}{piece}" for i, piece in enumerate(pieces[1:], 1))
            try:
                cursor.execute(f"PREPARE {name} AS {text}")
            except DatabaseError as error:
                # Refused for what it says (SQLSTATE class 42): sent as text from now on. Any
                # other failure (the database gone for a moment) is the caller's, as for the
                # statement itself, and the next use tries to prepare it again.
                if not str(getattr(error.__cause__, "sqlstate", "")).startswith("42"):
                    raise
                logger.warning("A statement could not be prepared; it is sent as text.")
                _unpreparable.add(sql)
                sent.append((sql, params))
                continue
            names.add(name)
        sent.append((f"EXECUTE {name}({', '.join(['%s'] * len(params))})", params))
    return sent


def _joined(statements: list[tuple[str, list[Any]]]) -> tuple[str, list[Any]]:
    return "; ".join(sql for sql, _ in statements), [p for _, params in statements for p in params]


def execute_statements(cursor: Any, statements: list[tuple[str, list[Any]]]) -> None:
    """Sends the statements as one text, so one round trip: on PostgreSQL one implicit
    transaction (client-side binding, Django's default), the long ones prepared. Results are
    read from the cursor in order (`nextset`)."""
    if _preparing():
        _execute_prepared(cursor, statements)
    else:
        cursor.execute(*_joined(statements))


def _execute_prepared(cursor: Any, statements: list[tuple[str, list[Any]]]) -> None:
    """Should a prepared statement be gone (a pooler, or a DEALLOCATE by someone else) nothing
    ran: the statements are sent again as text, and prepared again at their next use."""
    try:
        cursor.execute(*_joined(_prepared(cursor, statements)))
    except DatabaseError as error:
        if not _prepared_gone(error):
            raise
        logger.warning("Prepared statements were gone from a connection; prepared again.")
        _forget_prepared()
        cursor.execute("DEALLOCATE ALL")
        cursor.execute(*_joined(statements))


def _prepared_gone(error: DatabaseError) -> bool:
    """The EXECUTE named a statement the connection no longer has, or one whose tables
    changed under it ("cached plan must not change result type")."""
    cause = error.__cause__
    state = getattr(cause, "sqlstate", None)
    return state == "26000" or (state == "0A000" and "cached plan" in str(cause))


# Fields (these exact classes: a subclass may prepare its values its own way, as an encrypted
# one does) whose preparation may return a value of the given exact type, or None, unchanged:
# where it does on the backend (asked once, `Columns._plain_on`) such values skip it. Text,
# integers and flags are half of the some 290 values a run's statements carry, each a few
# calls deep in Django.
PLAIN_PREPARATION: Final[dict[type, type]] = {
    models.CharField: str,
    models.TextField: str,
    models.IntegerField: int,
    models.BigIntegerField: int,
    models.SmallIntegerField: int,
    models.PositiveIntegerField: int,
    models.PositiveBigIntegerField: int,
    models.PositiveSmallIntegerField: int,
    models.BooleanField: bool,
}

_PROBES: Final[dict[type, Any]] = {str: "a2a", int: 7, bool: True}


class Columns:
    """One model's columns for the few statements written by hand on a hot path.

    Names come quoted from the model, and values go through each field's own preparation, so
    what reaches SQLite or PostgreSQL (UUIDs, JSON, datetimes, decimals) is what the ORM would
    send; only the ORM's per-statement compiling is skipped. The connection is looked up
    once per call and handed to the fields: through `django.db.connection`, every attribute a
    field reads is a thread-local lookup of its own.
    """

    def __init__(self, model: type[Model]) -> None:
        self.model = model
        self._fields: dict[str, Any] = {f.name: f for f in model._meta.concrete_fields}
        # Per backend and field, the type whose values (and None) its preparation returns as
        # they are (`_plain_on`).
        self._plain: dict[str, dict[str, type | None]] = {}
        self._quoted: dict[str, str] = {}
        self._converters: dict[tuple[str, str], tuple[Any, list[Any]]] = {}
        self._table: str | None = None

    @property
    def table(self) -> str:
        table = self._table
        if table is None:
            table = self._table = str(connection.ops.quote_name(self.model._meta.db_table))
        return table

    def __getitem__(self, name: str) -> str:
        """The quoted column of field `name`."""
        quoted = self._quoted.get(name)
        if quoted is None:
            column = self._fields[name].column
            quoted = self._quoted[name] = str(connection.ops.quote_name(column))
        return quoted

    def value(self, name: str, value: Any) -> Any:
        """`value` as a parameter for field `name`'s column."""
        return self._fields[name].get_db_prep_save(value, connections[DEFAULT_DB_ALIAS])

    def values(self, row: Mapping[str, Any]) -> list[Any]:
        current = connections[DEFAULT_DB_ALIAS]
        fields = self._fields
        plain = self._plain.get(current.vendor) or self._plain_on(current)
        prepared = []
        for name, value in row.items():
            kind = plain[name]
            if kind is not None and (value is None or type(value) is kind):
                prepared.append(value)  # what the field's preparation would return
            else:
                prepared.append(fields[name].get_db_prep_save(value, current))
        return prepared

    def _plain_on(self, current: Any) -> dict[str, type | None]:
        """Which fields leave which values as they are on this backend, found by asking each
        field once: PostgreSQL's wraps integers in its own types, SQLite's does not."""
        plain: dict[str, type | None] = {}
        for name, field in self._fields.items():
            kind = PLAIN_PREPARATION.get(type(field))
            if kind is not None:
                probe = _PROBES[kind]
                kept = field.get_db_prep_save(probe, current) is probe
                if not kept or field.get_db_prep_save(None, current) is not None:
                    kind = None
            plain[name] = kind
        self._plain[current.vendor] = plain
        return plain

    def loaded(self, name: str, raw: Any) -> Any:
        """A value read by hand-written SQL, as the ORM would return it."""
        current = connections[DEFAULT_DB_ALIAS]
        key = (current.vendor, name)
        found = self._converters.get(key)
        if found is None:
            field = self._fields[name]
            column = field.get_col(self.model._meta.db_table)
            converters = current.ops.get_db_converters(column)
            converters += field.get_db_converters(current)
            found = self._converters[key] = (column, converters)
        column, converters = found
        for converter in converters:
            raw = converter(raw, column, current)
        return raw
