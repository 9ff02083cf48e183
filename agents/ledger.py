"""The gateway's ledger in the database, and breaker states that every process can see."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Final, TypeVar

from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from a2a_site.db import (
    Columns,
    execute_one,
    execute_together,
    in_db_thread,
    statement_before_call,
    statement_due,
)
from agents.budgets.enforcement import (
    SpendScope,
    budget_charges_settle_orphans,
    budget_refusal_count,
    budgets_for,
    budgets_reserve,
    budgets_settle,
)
from agents.llm.errors import BudgetExceeded
from agents.llm.ledger import LedgerOutcome, LedgerStart
from agents.models import Budget, CallPayload, LedgerEntry
from agents.payloads import bounded, call_payload, payload_max_bytes
from agents.rollups import ledger_finish, ledger_finish_known

logger = logging.getLogger(__name__)
T = TypeVar("T")

# How long a call waits for calls in flight to settle when only their reservations fill a
# budget (they usually cost far less than their worst case), and how often it asks again. The
# calls it waits for end within their own time limits (or the reaper settles them), so this
# only bounds the unforeseen.
BUDGET_WAIT_S: Final = 300.0
BUDGET_RETRY_S: Final = 0.05
BUDGET_HEAL_EVERY: Final = 20

BREAKER_CACHE_PREFIX = "a2a:breaker:"
BREAKER_CACHE_SECONDS = 24 * 3600

# Two statements per model call, written by hand: the ORM's compiling of them cost more than
# the database took to run them.
_LEDGER = Columns(LedgerEntry)
_PAYLOAD = Columns(CallPayload)
_BUDGET = Columns(Budget)


def _ledger_insert(
    row: dict[str, object],
    step_key: object = None,
    reservation: dict[str, object] | None = None,
) -> bool:
    """Writes the row (and reserves the call in its budgets, in the same transaction: a
    reservation exists exactly when its row does). Returns whether a budget was charged."""
    # Calls of the run that finished since its last write are completed first (see
    # `ledger_finishes_write`), and a step that starts with this call had its start deferred
    # to this row: all are written by the same statement batch, before the call.
    if row["run_id"] is not None and str(row["run_id"]) in _deferred:
        with ledger_finishes_lock(row["run_id"]):
            ledger_finishes_write_alone(ledger_finishes_take(row["run_id"]))
    before = statement_due(row["run_id"], step_key)
    try:
        if reservation is None:
            with connection.cursor() as cursor:
                execute_together(cursor, [before, _insert(row)] if before else [_insert(row)])
            return False
        # Without a budget in the workspace the row is written at once: the insert itself asks
        # whether the workspace has one, and writes nothing if it does (one statement, no
        # transaction, and the same answer as asking first).
        workspace = _LEDGER.value("workspace", row["workspace"])
        with connection.cursor() as cursor:
            statements = [before] if before else []
            execute_together(cursor, [*statements, _insert(row, unless_budgets_in=workspace)])
            before = None  # written
            if _inserted(cursor):
                return False
        scope = reservation["scope"]
        assert isinstance(scope, SpendScope)
        budgets = _budget_check(budgets_for, scope)
        if not budgets:  # budgets in the workspace, none over this call
            with connection.cursor() as cursor:
                execute_one(cursor, *_insert(row))
            return False
        with transaction.atomic():
            _budget_check(budgets_reserve, **reservation, budgets=budgets)
            with connection.cursor() as cursor:
                cursor.execute(*_insert(row))
        return True
    except Exception:
        if before is not None:  # rolled back with the row: the step's failure writes it
            statement_before_call(row["run_id"], str(step_key), *before)
        raise


def _insert(row: dict[str, object], *, unless_budgets_in: Any = None) -> tuple[str, list[Any]]:
    params = _LEDGER.values(row)
    if unless_budgets_in is None:
        return _insert_sql(tuple(row), False), params
    return _insert_sql(tuple(row), True), [*params, unless_budgets_in]


# Built once per set of columns: the rows of one kind of call always name the same ones.
@functools.lru_cache(maxsize=16)
def _insert_sql(names: tuple[str, ...], unless_budgets: bool) -> str:
    columns = ", ".join(_LEDGER[name] for name in names)
    marks = ", ".join(["%s"] * len(names))
    if not unless_budgets:
        return f"INSERT INTO {_LEDGER.table} ({columns}) VALUES ({marks})"
    return (
        f"INSERT INTO {_LEDGER.table} ({columns}) SELECT {marks} WHERE NOT EXISTS "
        f"(SELECT 1 FROM {_BUDGET.table} WHERE {_BUDGET['workspace']} = %s)"
    )


def _inserted(cursor: Any) -> bool:
    """Whether the last statement executed (of a batch, on PostgreSQL) wrote a row."""
    while cursor.nextset() if connection.vendor == "postgresql" else False:
        pass
    return bool(cursor.rowcount == 1)


# A run's call that finished is completed in the run's next write, most often its step's
# completion a moment later (one hand-off to the database threads for both), instead of a write
# of its own. Only while a store that writes them holds the run (`ledger_finishes_defer`), and
# never longer than FINISH_DEFER_S: past that (a step that goes on with a tool, say) the call is
# completed by itself. Keyed by run id, then call id; added on the event loop, taken on either
# side (dict operations are atomic under the interpreter lock).
FINISH_DEFER_S: Final = 0.25


@dataclass(slots=True)
class LedgerFinish:
    """A finished call's completion, waiting for its run's next write."""

    call_id: str
    fields: dict[str, Any]  # the completion's columns
    started: dict[str, Any]  # the row as its start wrote it (what its rollup share needs)
    owner: tuple[object, object]  # (run id, workspace id): the payload's
    outcome: LedgerOutcome
    finished_at: datetime


_deferring: set[str] = set()
_deferred: dict[str, dict[str, LedgerFinish]] = {}
_flushes: set[asyncio.Future[None]] = set()


# What the calls of the runs in `_deferring` are found by in the history (their models,
# providers, agents and error kinds: `workflows.search.run_facets`), as they start and end here.
_facets: dict[str, dict[str, set[str]]] = {}


def ledger_finishes_defer(run_id: Any, *, deferring: bool = True) -> None:
    """The caller (a run's store) writes the run's finished calls with its own writes from now
    on (`ledger_finishes_take`), or, with `deferring=False`, no longer: calls finishing later
    are written at once."""
    if deferring:
        _deferring.add(str(run_id))
        _facets[str(run_id)] = {
            "models": set(),
            "providers": set(),
            "agents": set(),
            "errors": set(),
        }
    else:
        _deferring.discard(str(run_id))
        _facets.pop(str(run_id), None)


def ledger_run_facets(run_id: Any) -> dict[str, list[str]] | None:
    """The facets of the run's calls made since `ledger_finishes_defer` (all its calls, when
    the run had made none before), as `run_facets` reads them from the ledger."""
    found = _facets.get(str(run_id))
    return None if found is None else {name: sorted(values) for name, values in found.items()}


def _facets_add(run_id: Any, name: str, value: Any) -> None:
    found = _facets.get(str(run_id))
    if found is not None and (value or name == "models"):
        if name == "providers":
            with contextlib.suppress(ValueError):
                value = uuid.UUID(str(value))  # as the ledger's column gives it back
        found[name].add(str(value))


# Held by whoever takes a run's finished calls until they are written (on a database thread),
# so a write that sums the run's ledger after taking them never misses one being written by
# another thread meanwhile. Reentrant: a failed write completes what it took under it again.
_locks: dict[str, threading.RLock] = {}
_locks_guard = threading.Lock()


def ledger_finishes_lock(run_id: Any) -> threading.RLock:
    """The run's lock for taking and writing its finished calls (`ledger_finishes_take`)."""
    with _locks_guard:
        lock = _locks.get(str(run_id))
        if lock is None:
            lock = _locks[str(run_id)] = threading.RLock()
        return lock


def ledger_finishes_settle(run_id: Any) -> None:
    """Writes the run's finished calls not yet written, waiting for any being written by
    another thread; then forgets the run's lock (the run's last write is next)."""
    with ledger_finishes_lock(run_id):
        ledger_finishes_write_alone(ledger_finishes_take(run_id))
    with _locks_guard:
        if str(run_id) not in _deferred:
            _locks.pop(str(run_id), None)


def ledger_finishes_take(run_id: Any) -> list[LedgerFinish]:
    """The run's finished calls not yet written, now to be (on a database thread, holding
    `ledger_finishes_lock(run_id)` until they are)."""
    if run_id is None:
        return []
    taken = _deferred.pop(str(run_id), None)
    return list(taken.values()) if taken else []


def ledger_finishes_write(cursor: Any, finishes: list[LedgerFinish]) -> None:
    """Completes the calls and adds them to the rollups, inside the caller's transaction
    (their payloads follow after it commits: `ledger_payloads_keep`)."""
    for finish in finishes:
        ledger_finish_known(cursor, finish.call_id, finish.fields, finish.started)


def ledger_payloads_keep(finishes: list[LedgerFinish]) -> None:
    """Keeps the calls' payloads (a payload that cannot be kept loses only itself)."""
    for finish in finishes:
        _payload_keep_logged(finish.call_id, finish.owner, finish.outcome, finish.finished_at)


def ledger_payload_statement(finish: LedgerFinish) -> tuple[str, list[Any]] | None:
    """The statement that keeps the call's payload (None: nothing to keep), to send with
    others; `ledger_payloads_keep` if they fail."""
    return _payload_statement(finish.call_id, finish.owner, finish.outcome, finish.finished_at)


def ledger_finishes_write_alone(finishes: list[LedgerFinish]) -> None:
    """The calls completed in a transaction of their own, then their payloads."""
    if finishes:
        with transaction.atomic(), connection.cursor() as cursor:
            ledger_finishes_write(cursor, finishes)
        ledger_payloads_keep(finishes)


def _finish_overdue(run_id: str, call_id: str) -> None:
    """On the loop, FINISH_DEFER_S after the call finished: still unwritten, it goes alone
    (taken on the database thread, so the run's next write may still take it first)."""
    if call_id not in _deferred.get(run_id, {}):
        return
    task = asyncio.ensure_future(in_db_thread(_overdue_write, run_id, call_id))
    _flushes.add(task)
    task.add_done_callback(_flush_done)


def _overdue_write(run_id: str, call_id: str) -> None:
    with ledger_finishes_lock(run_id):
        waiting = _deferred.get(run_id)
        finish = waiting.pop(call_id, None) if waiting else None
        if waiting is not None and not waiting:
            _deferred.pop(run_id, None)
        if finish is not None:
            ledger_finishes_write_alone([finish])


def _flush_done(task: asyncio.Future[None]) -> None:
    _flushes.discard(task)
    if not task.cancelled() and task.exception() is not None:
        # The row stays pending: the reaper closes it as unknown, its cost estimated.
        logger.warning("A finished call could not be completed: %r", task.exception())


def _budget_check(check: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    try:
        return check(*args, **kwargs)
    except BudgetExceeded:
        raise
    except Exception as error:
        # Never let a call through unchecked, nor book it at $0: it is not made at all.
        raise BudgetExceeded(
            f"The budget check could not be made ({type(error).__name__}), so the call was "
            "not made."
        ) from error


def _payload_keep_logged(
    call_id: str, owner: tuple[object, object], outcome: LedgerOutcome, at: object
) -> None:
    try:
        _payload_keep(call_id, owner, outcome, at)
    except Exception as error:  # noqa: BLE001 - nobody awaits this: say it here
        # The row is complete already: a payload that cannot be kept loses only itself.
        logger.warning("The payload of call %s could not be kept: %s", call_id, type(error))


def _payload_keep(
    call_id: str, owner: tuple[object, object], outcome: LedgerOutcome, at: object
) -> None:
    """Keeps the call's request and response, redacted and bounded (agents/payloads.py).

    Built on a database thread, so the redaction of a long prompt never holds the event loop,
    and after the call's answer went back to its caller (see `DatabaseLedger.call_finished`).
    A repeated completion keeps the first payload."""
    statement = _payload_statement(call_id, owner, outcome, at)
    if statement is not None:
        with connection.cursor() as cursor:
            cursor.execute(*statement)


def _payload_statement(
    call_id: str, owner: tuple[object, object], outcome: LedgerOutcome, at: object
) -> tuple[str, list[Any]] | None:
    payload = call_payload(outcome)
    if payload is None:
        return None
    kept, truncated, size = bounded(payload, payload_max_bytes())
    run_id, workspace_id = owner
    row = {
        "call_id": call_id,
        "workspace": workspace_id,
        "run_id": run_id,
        "request": kept["request"],
        "response": kept["response"],
        "truncated": truncated,
        "size_bytes": size,
        "created_at": at,
    }
    return _payload_insert_sql(tuple(row)), _PAYLOAD.values(row)


@functools.lru_cache(maxsize=4)
def _payload_insert_sql(names: tuple[str, ...]) -> str:
    columns = ", ".join(_PAYLOAD[name] for name in names)
    marks = ", ".join(["%s"] * len(names))
    return (
        f"INSERT INTO {_PAYLOAD.table} ({columns}) VALUES ({marks}) "
        f"ON CONFLICT ({_PAYLOAD['call_id']}) DO NOTHING"
    )


class DatabaseLedger:
    """Writes a `LedgerEntry` before each provider attempt and completes it after.

    The gateway calls `call_started` before the HTTP request and makes no request if it fails,
    so a call without a row cannot happen. `metadata` must name the workspace.

    Before the row is written the call is reserved in the budgets over it (see
    `agents.budgets.enforcement`); a refusal raises `BudgetExceeded` and no row is written.
    A run's calls also keep what they sent and received (`CallPayload`), after the completion.
    """

    def __init__(self) -> None:
        # Calls started by this process that hold budget reservations; their ends settle them.
        # (A call whose process died is settled by `budget_charges_settle_orphans`.)
        self._charged: set[str] = set()
        # The run (and workspace) of each call in flight, from its start to its end.
        self._runs: dict[str, tuple[object, object]] = {}
        # Payloads being written (held so that they are not collected half-way).
        self._payloads: set[asyncio.Future[None]] = set()
        # The rows of calls in flight whose completion a run's store may write (as started).
        self._started: dict[str, dict[str, Any]] = {}

    async def call_started(self, entry: LedgerStart) -> None:
        metadata = dict(entry.metadata)
        workspace_id = metadata.pop("workspace_id", None)
        if workspace_id is None:
            # Raising here stops the call before any request: every cost belongs to a workspace.
            raise ValueError("A model call must name its workspace (metadata workspace_id).")
        provider_id = metadata.pop("provider_id", None) or entry.deployment_id.split(":", 1)[0]
        run_id = metadata.pop("run_id", None)
        source = {key: str(value) for key, value in metadata.items()}
        reservation = {
            "call_id": entry.call_id,
            "scope": SpendScope(
                workspace_id=str(workspace_id),
                workflow_id=source.get("workflow_id"),
                user_id=source.get("user_id"),
                agent_id=source.get("agent_id"),
                provider_id=str(provider_id) if provider_id else None,
            ),
            "worst_case": entry.worst_case_cost,
            "model": entry.model,
        }
        row = {
            "call_id": entry.call_id,
            "workspace": workspace_id,
            "provider": provider_id,
            "deployment_id": entry.deployment_id,
            "provider_kind": entry.provider_kind,
            "model": entry.model,
            "attempt": entry.attempt,
            "status": LedgerEntry.Status.PENDING,
            "prompt_tokens_estimate": entry.prompt_tokens_estimate,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "cached_tokens": 0,
            "cost": Decimal(0),
            "cost_estimated": False,
            "price_source": "",
            "latency_ms": None,
            "first_token_ms": None,
            "error_kind": "",
            "http_status": None,
            "run_id": run_id,
            "source": source,
            "started_at": entry.started_at,
            "finished_at": None,
        }
        waited_until = time.monotonic() + BUDGET_WAIT_S
        retries = 0
        while True:
            try:
                charged = await in_db_thread(
                    _ledger_insert, row, source.get("step_key"), reservation
                )
            except BudgetExceeded as refusal:
                if not refusal.final and time.monotonic() < waited_until:
                    # Only reservations of calls in flight fill the budget: they settle soon.
                    # Now and then settle those whose calls ended without it (a settle that
                    # failed, a dead worker), so a lost settle cannot hold the budget.
                    retries += 1
                    if retries % BUDGET_HEAL_EVERY == 0:
                        with contextlib.suppress(Exception):
                            await in_db_thread(budget_charges_settle_orphans)
                    await asyncio.sleep(BUDGET_RETRY_S)
                    continue
                with contextlib.suppress(Exception):
                    await in_db_thread(budget_refusal_count, refusal)
                raise
            break
        if charged:
            self._charged.add(entry.call_id)
        if run_id is not None:
            _facets_add(run_id, "models", entry.model)
            _facets_add(run_id, "providers", provider_id)
            _facets_add(run_id, "agents", source.get("agent_id"))
            self._runs[entry.call_id] = (run_id, workspace_id)
            if not charged and str(run_id) in _deferring:
                self._started[entry.call_id] = row

    async def payloads_written(self) -> None:
        """Waits for the payloads being written (tests, and a process on its way out)."""
        while self._payloads:
            await asyncio.gather(*self._payloads, return_exceptions=True)

    async def call_finished(self, call_id: str, outcome: LedgerOutcome) -> None:
        usage = outcome.usage
        first_token = outcome.first_token_ms
        finished_at = timezone.now()
        fields = {
            "status": outcome.status,
            "prompt_tokens": usage.prompt_tokens if usage else 0,
            "completion_tokens": usage.completion_tokens if usage else 0,
            "cached_tokens": usage.cached_tokens if usage else 0,
            "cost": outcome.cost,
            "cost_estimated": outcome.cost_estimated,
            "price_source": outcome.price_source,
            "latency_ms": round(outcome.latency_ms),
            "first_token_ms": None if first_token is None else round(first_token),
            "error_kind": outcome.error_kind or "",
            "http_status": outcome.http_status,
            "finished_at": finished_at,
        }
        held = self._runs.get(call_id)
        if held is not None:
            _facets_add(held[0], "errors", fields["error_kind"])
        started = self._started.pop(call_id, None)
        if started is not None and str(started["run_id"]) in _deferring:
            held = self._runs.pop(call_id)
            run_id = str(held[0])
            _deferred.setdefault(run_id, {})[call_id] = LedgerFinish(
                call_id, fields, started, held, outcome, finished_at
            )
            asyncio.get_running_loop().call_later(FINISH_DEFER_S, _finish_overdue, run_id, call_id)
            return
        # The row and its hour's rollup change together (agents/rollups.py).
        await in_db_thread(ledger_finish, call_id, fields)
        owner = self._runs.pop(call_id, None)
        if owner is not None:
            # What the call sent and received is kept off the call's path: redacting and
            # writing it (about half a millisecond of CPU and a round trip for a few kB) would
            # otherwise be added to every step. It is a record for people reviewing the run,
            # not part of it: a process that dies first loses only its payload.
            task = asyncio.ensure_future(
                in_db_thread(_payload_keep_logged, call_id, owner, outcome, finished_at)
            )
            self._payloads.add(task)
            task.add_done_callback(self._payloads.discard)
        if call_id in self._charged:
            self._charged.discard(call_id)
            for attempt in range(3):
                try:
                    await in_db_thread(budgets_settle, call_id, outcome.cost, outcome.price_source)
                    break
                except Exception as error:  # noqa: BLE001 - the reservation stays held
                    # Safe side: the reservation keeps counting until a later settle (the
                    # next waiting call or the reaper settles it from the finished row).
                    logger.warning("Budget charges of call %s not settled: %r", call_id, error)
                    await asyncio.sleep(0.1 * (attempt + 1))


def breaker_record(deployment_id: str, state: str) -> None:
    """The gateway's breaker listener: publishes transitions for the provider's page.

    One cache entry per provider maps its deployments to their states; a lost update between two
    processes only delays what the page shows until the next transition.
    """
    key = BREAKER_CACHE_PREFIX + deployment_id.split(":", 1)[0]
    with contextlib.suppress(Exception):  # a status display must never fail a model call
        states = cache.get(key) or {}
        states[deployment_id] = state
        cache.set(key, states, BREAKER_CACHE_SECONDS)


def breaker_states(provider_id: object) -> dict[str, str]:
    """The last known breaker state of each of a provider's deployments."""
    try:
        return dict(cache.get(f"{BREAKER_CACHE_PREFIX}{provider_id}") or {})
    except Exception:  # noqa: BLE001 - an unreachable cache shows no states
        return {}
