"""The engine's RunStore on the database: steps, events and variables, written atomically.

Every write is fenced by the lease: it happens only while this executor still owns the run, in the
same transaction that locks the run row, so a worker that lost its lease (paused, partitioned,
presumed dead) cannot add a step or an event behind the back of the one that took over. A step is
completed by compare-and-swap on its status, so a duplicate completion stores nothing.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from django.db import connection, transaction
from django.utils import timezone

from a2a_site.accounts.models import Workspace
from a2a_site.db import (
    Columns,
    execute_one,
    execute_statements,
    in_db_thread,
    statement_before_call,
    statement_due,
    statements_drop,
)
from agents.budgets.models import Budget
from agents.ledger import (
    LedgerFinish,
    ledger_finishes_defer,
    ledger_finishes_take,
    ledger_finishes_write,
    ledger_finishes_write_alone,
    ledger_payload_statement,
    ledger_payloads_keep,
    ledger_run_facets,
)
from agents.llm.redaction import redact_secrets
from agents.models import LedgerEntry
from agents.rollups import ledger_finish_followed, ledger_finish_statement
from workflows.engine.contracts import (
    Control,
    EventDraft,
    ForkEdit,
    LeaseLost,
    RunSnapshot,
    StepRecord,
)
from workflows.engine.engine import variables_apply
from workflows.live import publish_events
from workflows.models import Run, RunEvent, RunStatus, Step, WorkflowVersion
from workflows.run_usage import usage_sums_params, usage_sums_sql
from workflows.services.lease import run_ancestors_totals_refresh

logger = logging.getLogger(__name__)

# Node types whose step begins with a model call (and so with a ledger row).
_STARTS_WITH_A_MODEL_CALL = frozenset({"agent"})

# How old the control state read by the last write may be before `control()` reads again.
CONTROL_FRESH_S = 1.0

# What a fenced write reads and writes of the run row (its graph stays unread).
_LOCKED_FIELDS = (
    "id",
    "cancel_requested",
    "status",
    "lease_owner",
    "last_seq",
    "variables",
    "steps_completed",
    "prompt_tokens",
    "completion_tokens",
    "cost",
    "model_calls",
    "waiting_request",
)


# Steps start and finish by hand-written SQL: per step, the ORM's compiling of these few
# statements cost more than the database took to run them.
_RUN = Columns(Run)
_STEP = Columns(Step)
_EVENT = Columns(RunEvent)
_LEDGER = Columns(LedgerEntry)
_VERSION = Columns(WorkflowVersion)
_WORKSPACE = Columns(Workspace)
_BUDGET = Columns(Budget)


def _completed_fields(record: StepRecord, now: datetime) -> dict[str, Any]:
    """A finished step's columns, as both ways of completing it write them."""
    return {
        "status": Step.Status.COMPLETED,
        "output": record.output,
        "branch": record.branch or "",
        "variables": dict(record.variables),
        "finished_at": now,
        "error": "",
    }


# The text of the statements written on every step, built once per shape: joining their quoted
# names anew each time cost a good part of what SQLite took to run them.
@functools.lru_cache(maxsize=8)
def _in_place_step_sql(fields: tuple[str, ...]) -> str:
    """The step completed by compare-and-swap, while this executor holds the run's lease."""
    r, st = _RUN, _STEP
    return (
        f"UPDATE {st.table} SET "
        + ", ".join(f"{st[name]} = %s" for name in fields)
        + f" WHERE {st['run']} = %s AND {st['key']} = %s AND {st['status']} <> %s "
        f"AND EXISTS (SELECT 1 FROM {r.table} WHERE {r['id']} = %s "
        f"AND {r['lease_owner']} = %s AND {r['status']} = %s)"
    )


@functools.lru_cache(maxsize=32)
def _in_place_run_sql(variables: int) -> str:
    """The run's counters, `variables` variables (each replacing its value: a JSON path and a
    value each) and totals, returning what the events and the control state need."""
    r = _RUN
    merged = f"COALESCE({r['variables']}, '{{}}')"
    for _ in range(variables):
        merged = f"json_set({merged}, %s, json(%s))"
    return (
        f"UPDATE {r.table} SET {r['last_seq']} = {r['last_seq']} + %s, "
        f"{r['steps_completed']} = {r['steps_completed']} + 1, "
        f"{r['variables']} = {merged}, "
        f"({r['prompt_tokens']}, {r['completion_tokens']}, {r['cost']}, "
        f"{r['model_calls']}) = ({usage_sums_sql()}) WHERE {r['id']} = %s "
        f"RETURNING {r['last_seq']}, {r['cancel_requested']}, {r['prompt_tokens']}, "
        f"{r['completion_tokens']}, {r['cost']}"
    )


@functools.lru_cache(maxsize=16)
def _events_insert_sql(count: int) -> str:
    names = ("run", "seq", "step_key", "kind", "data", "created_at")
    row = "(" + ", ".join(["%s"] * len(names)) + ")"
    return (
        f"INSERT INTO {_EVENT.table} ({', '.join(_EVENT[name] for name in names)}) "
        f"VALUES {', '.join([row] * count)}"
    )


def _event_json(event: RunEvent) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "kind": event.kind,
        "step_key": event.step_key,
        "data": event.data,
        "at": event.created_at.isoformat(),
    }


def fork_edits_loaded(stored: Any) -> tuple[ForkEdit, ...]:
    """A fork's edits as `Run.fork_edits` keeps them (JSON), for the engine."""
    return tuple(
        ForkEdit(
            step=str(edit["step"]),
            variables=dict(edit.get("variables") or {}),
            before=frozenset(edit.get("before") or ()),
        )
        for edit in stored or ()
    )


_STEP_FIELDS = ("key", "node_id", "status", "attempt", "output", "branch", "variables")


def _steps_sql() -> str:
    """A subquery of the run's steps (`r` in the outer query) as one JSON array of arrays (by
    _STEP_FIELDS), so that the run, its version and its steps are one statement."""
    st = _STEP
    if connection.vendor == "postgresql":
        aggregate, array = "json_agg", "json_build_array"
        columns = [f"s.{st[name]}" for name in _STEP_FIELDS]
    else:  # SQLite keeps JSON as text: json() embeds it as JSON
        aggregate, array = "json_group_array", "json_array"
        columns = [
            f"json(s.{st[name]})" if name in ("output", "variables") else f"s.{st[name]}"
            for name in _STEP_FIELDS
        ]
    return (
        f"(SELECT {aggregate}({array}({', '.join(columns)})) FROM {st.table} s "
        f"WHERE s.{st['run']} = r.{_RUN['id']})"
    )


@functools.cache
def _load_sql(vendor: str) -> str:
    """The text of a run's one read (`DatabaseRunStore.load_statement`), built once per
    database vendor: the same for every run."""
    fields = DatabaseRunStore._RUN_FIELDS
    return (
        "SELECT "
        + ", ".join(f"r.{_RUN[name]}" for name in fields)
        + ", "
        + ", ".join(f"v.{_VERSION[name]}" for name in DatabaseRunStore._VERSION_FIELDS)
        + f", w.{_WORKSPACE['runtime_stamp']}"
        + f", EXISTS (SELECT 1 FROM {_BUDGET.table} b WHERE b.{_BUDGET['workspace']} = "
        f"r.{_RUN['workspace']}), {_steps_sql()}"
        + f" FROM {_RUN.table} r JOIN {_VERSION.table} v ON v.{_VERSION['id']} = "
        f"r.{_RUN['version']} JOIN {_WORKSPACE.table} w ON w.{_WORKSPACE['id']} = "
        f"r.{_RUN['workspace']} WHERE r.{_RUN['id']} = %s"
    )


class ControlBoard:
    """The control state of every run one executor holds, read for all of them in one query.

    While a step is in flight each run's engine checks its control state every second, and
    before each step again; a process holding hundreds of runs sent hundreds of small queries a
    second for it. The board reads the rows of all the runs it holds twice per CONTROL_FRESH_S
    and the executor's stores serve control checks from it. It only ever makes the state
    fresher: every write stays fenced by the lease in the database.
    """

    def __init__(self, *, owner: str, interval: float = CONTROL_FRESH_S / 2) -> None:
        self.owner = owner
        self.interval = interval
        self._held: dict[str, int] = {}
        self._seen: dict[str, tuple[float, Control]] = {}
        self._task: asyncio.Task[None] | None = None

    def hold(self, run_id: str) -> None:
        """Starts reading the run's state (on the executor's loop)."""
        run_id = str(run_id)
        self._held[run_id] = self._held.get(run_id, 0) + 1
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._read_while_held())

    def release(self, run_id: str) -> None:
        run_id = str(run_id)
        left = self._held.get(run_id, 0) - 1
        if left > 0:
            self._held[run_id] = left
        else:
            self._held.pop(run_id, None)
            self._seen.pop(run_id, None)
        if not self._held:
            self.close()

    def close(self) -> None:
        """Stops reading (on the executor's loop); `hold` starts again."""
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def seen(self, run_id: str) -> tuple[float, Control] | None:
        return self._seen.get(str(run_id))

    async def _read_while_held(self) -> None:
        while self._held:
            await asyncio.sleep(self.interval)
            wanted = list(self._held)
            if not wanted:
                break
            asked = time.monotonic()  # the state is as old as the question, not the answer
            try:
                rows = await in_db_thread(self._read, wanted)
            except Exception:  # noqa: BLE001 - the stores read for themselves meanwhile
                logger.warning("Reading the control state of %d runs failed.", len(wanted))
                continue
            for run_id, control in rows.items():
                if run_id in self._held:
                    self._seen[run_id] = (asked, control)

    def _read(self, run_ids: list[str]) -> dict[str, Control]:
        rows = Run.objects.filter(pk__in=run_ids).values_list(
            "pk",
            "cancel_requested",
            "lease_owner",
            "status",
            "prompt_tokens",
            "completion_tokens",
            "cost",
        )
        return {
            str(pk): Control(
                cancel_requested=cancel,
                lease_held=owner == self.owner and status == RunStatus.RUNNING,
                tokens_used=prompt + completion,
                cost_used=cost,
            )
            for pk, cancel, owner, status, prompt, completion, cost in rows
        }


class DatabaseRunStore:
    def __init__(self, *, owner: str, board: ControlBoard | None = None) -> None:
        self.owner = owner
        # Control states read for all the executor's runs at once, if the executor keeps them.
        self.board = board
        # Attempts of unfinished steps, read at load: a resumed step is attempt n + 1.
        self._attempts: dict[tuple[str, str], int] = {}
        # Each run's variable reducers, read once from its pinned graph.
        self._reducers: dict[str, dict[str, str]] = {}
        # The run's control state as the last read of its row found it, and when.
        self._controls: dict[str, tuple[float, Control]] = {}
        # The agent versions each run's workflow version pinned, read at load.
        self._agent_versions: dict[str, dict[str, int]] = {}
        # Sub-runs held here: their usage is their parents' too.
        self._nested: set[str] = set()
        # Read with each run: its workspace's runtime stamp (agents/stamps.py), and (workflow
        # id, launching user id, priority) as its ledger rows and calls' place in line use them.
        self._stamps: dict[str, int] = {}
        self._dimensions: dict[str, tuple[str, str, int]] = {}
        # Whether the run's workspace had a budget when the run was loaded.
        self._budgeted: dict[str, bool] = {}
        # Whether the last `_with_finishes` rewrote a call the reaper had closed.
        self._rewritten = False
        # (seq, text) of the messages of runs executed here from their start (None: resumed).
        self._said: dict[str, list[tuple[int, str]] | None] = {}

    # --- reads ------------------------------------------------------------------------------------

    _RUN_FIELDS: Final = (
        "workspace",
        "inputs",
        "variables",
        "answers",
        "answered_by",
        "depth",
        "deadline",
        "prompt_tokens",
        "completion_tokens",
        "cost",
        "cancel_requested",
        "lease_owner",
        "status",
        "fork_edits",
        "workflow",
        "created_by",
        "priority",
        "last_seq",
    )
    _VERSION_FIELDS: Final = ("graph", "agent_versions")

    @staticmethod
    def load_statement(run_id: str) -> tuple[str, list[Any]]:
        """The one read of a run that `load` makes (its row, version, workspace's stamp,
        whether it has a budget, and its steps), for a caller that sends it with another
        statement in one round trip (the lease: `run_lease_acquire_reading`)."""
        return _load_sql(connection.vendor), [_RUN.value("id", run_id)]

    def _load(self, run_id: str) -> RunSnapshot:
        # One statement by hand, the run with its version and the steps: building the models
        # cost more than reading them.
        with connection.cursor() as cursor:
            execute_one(cursor, *self.load_statement(run_id))
            found = cursor.fetchone()
        return self.loaded(run_id, found)

    def loaded(self, run_id: str, found: Any) -> RunSnapshot:
        """The run as `load_statement` read it (`found`: its one row, or None)."""
        if found is None:
            raise Run.DoesNotExist(f"Run {run_id} does not exist.")
        run_fields = self._RUN_FIELDS
        version_fields = self._VERSION_FIELDS
        step_rows = found[-1] or []
        if isinstance(step_rows, str | bytes):
            step_rows = json.loads(step_rows)
        found = found[:-1]
        values = {
            name: _RUN.loaded(name, raw) for name, raw in zip(run_fields, found, strict=False)
        }
        graph, agent_versions = (
            _VERSION.loaded(name, raw)
            for name, raw in zip(version_fields, found[len(run_fields) : -2], strict=True)
        )
        self._stamps[str(run_id)] = int(found[-2])
        self._budgeted[str(run_id)] = bool(found[-1])
        # The run's calls that finish are completed with its next write (agents/ledger.py).
        ledger_finishes_defer(run_id)
        workflow_id, created_by = values.pop("workflow"), values.pop("created_by")
        self._dimensions[str(run_id)] = (
            str(workflow_id),
            "" if created_by is None else str(created_by),
            int(values.pop("priority")),
        )
        # A run that said nothing and started no step yet: all it will say and call is seen
        # here, which spares reading it back at its end (`said`).
        fresh = values.pop("last_seq") == 0 and not step_rows
        self._said[str(run_id)] = [] if fresh else None
        run = Run(pk=run_id, workspace_id=values.pop("workspace"), **values)
        completed = {}
        for raw_step in step_rows:
            # JSON columns come as their values already (the rows are one JSON array).
            step = dict(zip(_STEP_FIELDS, raw_step, strict=True))
            if step["status"] == Step.Status.COMPLETED:
                completed[step["key"]] = StepRecord(
                    key=step["key"],
                    node_id=step["node_id"],
                    output=step["output"],
                    branch=step["branch"] or None,
                    variables=step["variables"],
                )
            else:
                self._attempts[(run_id, step["key"])] = step["attempt"]
        self._reducers[str(run_id)] = {
            variable.get("name"): variable.get("reducer", "replace")
            for variable in graph.get("variables") or []
        }
        self._agent_versions[str(run_id)] = dict(agent_versions or {})
        if run.depth:
            self._nested.add(str(run_id))
        # The row just read is the control state until a write or a check reads a newer one.
        self._control_of(run)
        settings = graph.get("settings") or {}
        deadline = None
        if run.deadline is not None:
            deadline = time.monotonic() + (run.deadline - timezone.now()).total_seconds()
        budget = settings.get("cost_budget_usd")
        return RunSnapshot(
            run_id=str(run.pk),
            workspace_id=str(run.workspace_id),
            graph=graph,
            inputs=run.inputs,
            variables=run.variables,
            completed=completed,
            answers=run.answers,
            answered_by=run.answered_by or {},
            depth=run.depth,
            deadline=deadline,
            token_budget=settings.get("token_budget"),
            cost_budget=Decimal(str(budget)) if budget is not None else None,
            budget_action=settings.get("budget_action", "stop"),
            tokens_used=run.total_tokens,
            cost_used=run.cost,
            fork_edits=fork_edits_loaded(run.fork_edits),
        )

    async def load(self, run_id: str) -> RunSnapshot:
        return await in_db_thread(self._load, run_id)

    def agent_versions(self, run_id: str) -> dict[str, int]:
        """The agent versions pinned by the run's workflow version (after `load`)."""
        return self._agent_versions[str(run_id)]

    def runtime_stamp(self, run_id: str) -> int:
        """The run's workspace's runtime stamp when the run was loaded (after `load`)."""
        return self._stamps[str(run_id)]

    def said(self, run_id: str) -> tuple[tuple[str, ...], dict[str, list[str]]] | None:
        """The run's messages in order and the facets of its calls (as the history's search
        fields want them), if this store saw all of them; None otherwise. Before `release`."""
        said = self._said.get(str(run_id))
        facets = ledger_run_facets(run_id)
        if said is None or facets is None:
            return None
        return tuple(text for _, text in sorted(said)), facets

    def _heard(self, run_id: str, stored: Sequence[Mapping[str, Any]]) -> None:
        said = self._said.get(str(run_id))
        if said is None:
            return
        for event in stored:
            data = event["data"]
            if event["kind"] == "message" and isinstance(data, dict):
                said.append((event["seq"], str(data.get("text") or "")))

    def budgeted(self, run_id: str) -> bool:
        """Whether the run's workspace had any budget when the run was loaded (after `load`)."""
        return self._budgeted[str(run_id)]

    def dimensions(self, run_id: str) -> tuple[str, str, int]:
        """(workflow id, launching user id or "", priority) of the run (after `load`)."""
        return self._dimensions[str(run_id)]

    def _control_of(self, run: Run) -> Control:
        control = Control(
            cancel_requested=run.cancel_requested,
            lease_held=run.lease_owner == self.owner and run.status == RunStatus.RUNNING,
            tokens_used=run.total_tokens,
            cost_used=run.cost,
        )
        self._controls[str(run.pk)] = (time.monotonic(), control)
        return control

    def _control(self, run_id: str) -> Control:
        # Six columns, not the row: this runs every second of every step.
        run = Run(pk=run_id)
        (
            run.cancel_requested,
            run.lease_owner,
            run.status,
            run.prompt_tokens,
            run.completion_tokens,
            run.cost,
        ) = (
            Run.objects.filter(pk=run_id)
            .values_list(
                "cancel_requested",
                "lease_owner",
                "status",
                "prompt_tokens",
                "completion_tokens",
                "cost",
            )
            .get()
        )
        return self._control_of(run)

    async def control(self, run_id: str) -> Control:
        # Every fenced write reads the run row anyway; between steps that happen in quick
        # succession the engine gets what the last one saw, at most CONTROL_FRESH_S old.
        seen = self._controls.get(str(run_id))
        if self.board is not None:
            polled = self.board.seen(run_id)
            if polled is not None and (seen is None or polled[0] > seen[0]):
                seen = polled
        if seen is not None and time.monotonic() - seen[0] < CONTROL_FRESH_S:
            return seen[1]
        return await in_db_thread(self._control, run_id)

    # --- fenced writes ----------------------------------------------------------------------------

    def _locked_run(self, run_id: str) -> Run:
        run = Run.objects.select_for_update().only(*_LOCKED_FIELDS).get(pk=run_id)
        if run.lease_owner != self.owner or run.status != RunStatus.RUNNING:
            raise LeaseLost(f"run {run_id} is no longer leased by {self.owner}")
        return run

    def _remember(self, run: Run) -> None:
        """What a fenced write saw becomes the control state (totals as just saved)."""
        self._control_of(run)

    def _append_events(self, run: Run, events: Sequence[EventDraft]) -> list[RunEvent]:
        if not events:
            return []
        first = run.last_seq + 1
        rows = [
            RunEvent(
                run=run,
                seq=first + index,
                step_key=event.step_key or "",
                kind=event.kind,
                data=dict(event.data),
            )
            for index, event in enumerate(events)
        ]
        RunEvent.objects.bulk_create(rows)
        run.last_seq = first + len(rows) - 1
        return rows

    def _refresh_totals(self, run: Run) -> None:
        # The ledger is the truth about usage and cost; the run keeps a copy for list pages and
        # budgets. Plain SQL: this runs after every step, and building the ORM aggregate costs
        # more than the query itself.
        with connection.cursor() as cursor:
            cursor.execute(usage_sums_sql(), usage_sums_params(run.pk))
            prompt, completion, cost, calls = cursor.fetchone()
        run.prompt_tokens = int(prompt)
        run.completion_tokens = int(completion)
        run.cost = _RUN.loaded("cost", cost) if cost is not None else Decimal(0)
        run.model_calls = int(calls)

    def _step_start_statement(
        self, run_id: str, key: str, node_id: str, node_type: str, attempt: int, payload: Any
    ) -> tuple[str, list[Any]]:
        # One statement, no lock: marking a step as running changes nothing that matters if a
        # stale worker does it; completing one is what the lease fences. After a crash the
        # engine counts attempts from 1 again, so the row adds what it remembers.
        previous = self._attempts.get((run_id, key), 0)
        self._attempts[(run_id, key)] = attempt = max(attempt, previous + 1)
        row = {
            "run": run_id,
            "key": key,
            "node_id": node_id,
            "node_type": node_type,
            "status": Step.Status.RUNNING,
            "attempt": attempt,
            "input": payload,
            "output": None,
            "branch": "",
            "variables": {},
            "error": "",
            "started_at": timezone.now(),
            "finished_at": None,
        }
        columns = ", ".join(_STEP[name] for name in row)
        marks = ", ".join(["%s"] * len(row))
        refreshed = ", ".join(
            f"{_STEP[name]} = excluded.{_STEP[name]}"
            for name in ("attempt", "input", "started_at", "node_type")
        )
        return (
            f"INSERT INTO {_STEP.table} ({columns}) VALUES ({marks}) "
            f"ON CONFLICT ({_STEP['run']}, {_STEP['key']}) DO UPDATE SET {refreshed}",
            _STEP.values(row),
        )

    def _step_started(
        self, run_id: str, key: str, node_id: str, node_type: str, attempt: int, payload: Any
    ) -> None:
        sql, params = self._step_start_statement(run_id, key, node_id, node_type, attempt, payload)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)

    async def step_started(
        self, run_id: str, *, key: str, node_id: str, node_type: str, attempt: int, input: Any
    ) -> None:
        if node_type in _STARTS_WITH_A_MODEL_CALL:
            # An agent step's first write is the ledger row of its model call, made before the
            # call: the start goes with it, in the same statement batch, instead of a database
            # call of its own. A step that fails or finishes without a call writes it first.
            # Nothing happens outside in between, so a crash loses no more than a crash just
            # before this point would.
            statement = self._step_start_statement(
                str(run_id), key, node_id, node_type, attempt, input
            )
            statement_before_call(run_id, key, *statement)
            return
        await in_db_thread(self._step_started, run_id, key, node_id, node_type, attempt, input)

    @staticmethod
    def _start_due(run_id: str, key: str) -> None:
        """A deferred start of the step is written before anything else about it."""
        due = statement_due(run_id, key)
        if due is not None:
            with connection.cursor() as cursor:
                cursor.execute(*due)

    def release(self, run_id: str) -> None:
        """The executor stopped touching the run: starts never written are forgotten, and its
        calls are completed by themselves (those finished meanwhile, by its next write or at
        most FINISH_DEFER_S later)."""
        statements_drop(run_id)
        ledger_finishes_defer(run_id, deferring=False)
        self._said.pop(str(run_id), None)

    def _step_completed(
        self, run_id: str, record: StepRecord, events: Sequence[EventDraft]
    ) -> list[dict[str, Any]] | None:
        return self._step_completed_locked(run_id, record, events)

    def _step_completed_locked(
        self, run_id: str, record: StepRecord, events: Sequence[EventDraft]
    ) -> list[dict[str, Any]] | None:
        self._start_due(run_id, record.key)  # a step that finished without a model call
        # The run's calls that finished since its last write (this step's, most often) are
        # completed with it: one hand-off, and on PostgreSQL one round trip, for both.
        finished = ledger_finishes_take(run_id)
        reducers = self._reducers.get(str(run_id), {})
        stored = None
        replaces = all(reducers.get(name, "replace") == "replace" for name in record.variables)
        try:
            if replaces and connection.vendor == "postgresql":
                stored = self._step_completed_at_once(run_id, record, events, finished)
                finished = []  # written, whatever the step's own outcome
                if stored is None:
                    # Not leased, a duplicate, or no row to complete: the step by step path says.
                    stored = self._step_completed_by_steps(run_id, record, events)
            elif replaces and self._sqlite_at_once(record):
                with transaction.atomic():
                    with connection.cursor() as cursor:
                        ledger_finishes_write(cursor, finished)
                    stored = self._step_completed_in_place(run_id, record, events)
                    if stored is None:  # the step by step path says why, in the same transaction
                        stored = self._step_completed_by_steps(run_id, record, events)
                ledger_payloads_keep(finished)
            else:
                stored = self._step_completed_by_steps(run_id, record, events, finished)
                ledger_payloads_keep(finished)
        except Exception:
            try:  # rolled back with the step: not lost for all that
                ledger_finishes_write_alone(finished)
            except Exception:  # noqa: BLE001 - the reaper closes them, their cost estimated
                logger.warning("Run %s: %d finished calls not completed.", run_id, len(finished))
            raise
        if stored is not None:
            self._parents_follow(run_id)
        return stored

    def _parents_follow(self, run_id: str) -> None:
        """A sub-run's step changed its totals: so did its parents'. Never fails the step (it
        is stored); the parents' own next write sums them again anyway."""
        if str(run_id) not in self._nested:
            return
        try:
            run_ancestors_totals_refresh(run_id)
        except Exception:  # noqa: BLE001 - a copy of the totals, made again at the next write
            logger.warning("Run %s: its parents' totals were not refreshed.", run_id)

    def _step_completed_at_once(
        self,
        run_id: str,
        record: StepRecord,
        events: Sequence[EventDraft],
        finished: list[LedgerFinish] = (),  # type: ignore[assignment]
    ) -> list[dict[str, Any]] | None:
        """The completion as one PostgreSQL statement, so one round trip: the fence locks the
        run row while this executor holds the lease; the step is completed only if it was not
        yet (compare-and-swap); only then do the run's counters, variables and totals change and
        the events get their numbers after the run's last one. Variables that replace their
        value merge into the row's; a statement is atomic, so it all happens or none of it.
        None when nothing was written."""
        run_pk = _RUN.value("id", run_id)
        now = timezone.now()
        fields = _completed_fields(record, now)
        count = len(events)
        params: list[Any] = [run_pk, self.owner, RunStatus.RUNNING]
        params += [*_STEP.values(fields), record.key, Step.Status.COMPLETED]
        params += [
            count,
            _RUN.value("variables", dict(record.variables)),
            *usage_sums_params(run_id),
        ]
        r, st, ev = _RUN, _STEP, _EVENT
        sql = (
            f"WITH fence AS (SELECT {r['id']} FROM {r.table} WHERE {r['id']} = %s "
            f"AND {r['lease_owner']} = %s AND {r['status']} = %s FOR UPDATE), "
            f"done AS (UPDATE {st.table} SET "
            + ", ".join(f"{st[name]} = %s" for name in fields)
            + f" WHERE {st['run']} IN (SELECT {r['id']} FROM fence) AND {st['key']} = %s "
            f"AND {st['status']} <> %s RETURNING {st['run']}), "
            f"saved AS (UPDATE {r.table} SET {r['last_seq']} = {r['last_seq']} + %s, "
            f"{r['steps_completed']} = {r['steps_completed']} + 1, "
            f"{r['variables']} = {r['variables']} || %s::jsonb, "
            f"({r['prompt_tokens']}, {r['completion_tokens']}, {r['cost']}, {r['model_calls']}) "
            f"= ({usage_sums_sql()}) "
            f"WHERE {r['id']} IN (SELECT {st['run']} FROM done) RETURNING {r['last_seq']}, "
            f"{r['cancel_requested']}, {r['prompt_tokens']}, {r['completion_tokens']}, "
            f"{r['cost']})"
        )
        drafts = []
        if events:
            rows = []
            for index, event in enumerate(events, start=1):
                data = dict(event.data)
                step_key = event.step_key or ""
                drafts.append((index, event.kind, step_key, data))
                rows.append("(%s::integer, %s::text, %s::text, %s::jsonb)")
                params += [index, step_key, event.kind, _EVENT.value("data", data)]
            params += [run_pk, count, _EVENT.value("created_at", now)]
            sql += (
                f", numbered (i, step_key, kind, data) AS (VALUES {', '.join(rows)}), "
                f"events AS (INSERT INTO {ev.table} ({ev['run']}, {ev['seq']}, {ev['step_key']}, "
                f"{ev['kind']}, {ev['data']}, {ev['created_at']}) SELECT %s, "
                f"saved.{r['last_seq']} - %s + numbered.i, numbered.step_key, numbered.kind, "
                f"numbered.data, %s FROM saved, numbered)"
            )
        sql += (
            f" SELECT saved.{r['last_seq']}, saved.{r['cancel_requested']}, "
            f"saved.{r['prompt_tokens']}, saved.{r['completion_tokens']}, saved.{r['cost']} "
            f"FROM saved"
        )
        with connection.cursor() as cursor:
            row = self._with_finishes(cursor, finished, (sql, params))
            if row is not None and finished and self._rewritten:
                # A call the reaper had closed took its answer after the sums: sum again.
                cursor.execute(
                    f"UPDATE {r.table} SET ({r['prompt_tokens']}, {r['completion_tokens']}, "
                    f"{r['cost']}, {r['model_calls']}) = ({usage_sums_sql()}) "
                    f"WHERE {r['id']} = %s RETURNING {r['prompt_tokens']}, "
                    f"{r['completion_tokens']}, {r['cost']}",
                    [*usage_sums_params(run_id), run_pk],
                )
                row = (row[0], row[1], *cursor.fetchone())
        if row is None:
            return None
        last_seq, cancel_requested, prompt, completion, cost = row
        self._control_of_row(run_id, cancel_requested, (int(prompt), int(completion), cost))
        first = last_seq - count
        at = now.isoformat()
        return [
            {"seq": first + index, "kind": kind, "step_key": step_key, "data": data, "at": at}
            for index, kind, step_key, data in drafts
        ]

    def _with_finishes(
        self, cursor: Any, finished: list[LedgerFinish], statement: tuple[str, list[Any]]
    ) -> Any:
        """PostgreSQL: the calls' completions (each adding to the rollups), then `statement`
        (whose one row, or None, is returned), then the calls' payloads, in one round trip
        (client-side binding, Django's default: one implicit transaction). The completions come
        first so the statement's sums of the ledger include them."""
        if not finished:
            execute_one(cursor, *statement)
            return cursor.fetchone()
        completions = [ledger_finish_statement(f.call_id, f.fields, f.started) for f in finished]
        payloads: list[tuple[str, list[Any]]] = []
        for finish in finished:
            try:
                payload = ledger_payload_statement(finish)
            except Exception:  # noqa: BLE001 - a payload that cannot be kept loses only itself
                logger.warning("The payload of call %s could not be kept.", finish.call_id)
                continue
            if payload is not None:
                payloads.append(payload)
        batched = not connection.settings_dict.get("OPTIONS", {}).get("server_side_binding")
        for attempt in (payloads, []) if payloads else ([],):
            statements = [*completions, statement, *attempt]
            try:
                if batched:
                    execute_statements(cursor, statements)
                    counts = []
                    for _ in completions:
                        counts.append(cursor.fetchone()[0])
                        cursor.nextset()
                    row = cursor.fetchone()
                else:
                    counts = []
                    for sql, params in completions:
                        cursor.execute(sql, params)
                        counts.append(cursor.fetchone()[0])
                    cursor.execute(*statement)
                    row = cursor.fetchone()
                    for sql, params in attempt:
                        cursor.execute(sql, params)
            except Exception:
                if not attempt:
                    raise
                # A payload the database refused: the rest again without the payloads, which
                # are then kept one by one (a payload that cannot be kept loses only itself).
                logger.warning("Payloads refused with run %s's step; kept one by one.", finished)
                continue
            break
        self._rewritten = not all(counts)
        for finish, count in zip(finished, counts, strict=True):
            ledger_finish_followed(
                cursor, finish.call_id, finish.fields, finish.started, completed=bool(count)
            )
        if payloads and not attempt:
            ledger_payloads_keep(finished)
        return row

    @staticmethod
    def _sqlite_at_once(record: StepRecord) -> bool:
        """Whether SQLite can complete the step in place: RETURNING, and variable names that
        a JSON path can name as they are."""
        return connection.vendor == "sqlite" and (
            connection.features.can_return_columns_from_insert
            and not any('"' in name or "\\" in name for name in record.variables)
        )

    def _step_completed_in_place(
        self, run_id: str, record: StepRecord, events: Sequence[EventDraft]
    ) -> list[dict[str, Any]] | None:
        """SQLite, in the caller's transaction (which holds the database's write lock): the
        step completed by compare-and-swap only while this executor holds the lease, then the
        run's counters, variables (each replacing its value) and totals in one UPDATE that
        returns the numbers the events take. Three statements; None when the step was not
        completed here (not leased, a duplicate, or no row), before anything else changed."""
        run_pk = _RUN.value("id", run_id)
        now = timezone.now()
        fields = _completed_fields(record, now)
        with connection.cursor() as cursor:
            cursor.execute(
                _in_place_step_sql(tuple(fields)),
                [
                    *_STEP.values(fields),
                    run_pk,
                    record.key,
                    Step.Status.COMPLETED,
                    run_pk,
                    self.owner,
                    RunStatus.RUNNING,
                ],
            )
            if cursor.rowcount != 1:
                return None
            params: list[Any] = [len(events)]
            for name, value in record.variables.items():
                params += [f'$."{name}"', _RUN.value("variables", value)]
            cursor.execute(
                _in_place_run_sql(len(record.variables)),
                [*params, *usage_sums_params(run_id), run_pk],
            )
            last_seq, cancel_requested, prompt, completion, cost = cursor.fetchone()
            stored = self._insert_events(cursor, run_pk, last_seq - len(events), events, now)
        totals = (int(prompt), int(completion), _RUN.loaded("cost", cost))
        self._control_of_row(run_id, cancel_requested, totals)
        return stored

    def _step_completed_by_steps(
        self,
        run_id: str,
        record: StepRecord,
        events: Sequence[EventDraft],
        finished: list[LedgerFinish] = (),  # type: ignore[assignment]
    ) -> list[dict[str, Any]] | None:
        run_pk = _RUN.value("id", run_id)
        with transaction.atomic(), connection.cursor() as cursor:
            # The calls that finished first: the run's totals below sum them.
            ledger_finishes_write(cursor, finished)
            # The fence: the run row, locked, and only while this executor holds the lease.
            lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
            cursor.execute(
                f"SELECT {_RUN['last_seq']}, {_RUN['variables']}, {_RUN['cancel_requested']} "
                f"FROM {_RUN.table} WHERE {_RUN['id']} = %s AND {_RUN['lease_owner']} = %s "
                f"AND {_RUN['status']} = %s{lock}",
                [run_pk, self.owner, RunStatus.RUNNING],
            )
            fenced = cursor.fetchone()
            if fenced is None:
                raise LeaseLost(f"run {run_id} is no longer leased by {self.owner}")
            last_seq, stored_variables, cancel_requested = fenced
            now = timezone.now()
            fields = _completed_fields(record, now)
            # Compare-and-swap: only a step not yet completed becomes completed.
            assignments = ", ".join(f"{_STEP[name]} = %s" for name in fields)
            cursor.execute(
                f"UPDATE {_STEP.table} SET {assignments} WHERE {_STEP['run']} = %s "
                f"AND {_STEP['key']} = %s AND {_STEP['status']} <> %s",
                [*_STEP.values(fields), run_pk, record.key, Step.Status.COMPLETED],
            )
            if cursor.rowcount == 0:
                if Step.objects.filter(run_id=run_id, key=record.key).exists():
                    return None  # a duplicate: the first completion stands
                Step.objects.create(
                    run_id=run_id,
                    key=record.key,
                    node_id=record.node_id,
                    node_type="",
                    started_at=now,
                    **fields,
                )
            stored = self._insert_events(cursor, run_pk, last_seq, events, now)
            variables = dict(_RUN.loaded("variables", stored_variables) or {})
            variables_apply(variables, record.variables, self._reducers.get(str(run_id), {}))
            totals = self._save_run(cursor, run_pk, last_seq + len(stored), variables)
            self._control_of_row(run_id, cancel_requested, totals)
            return stored

    def _insert_events(
        self, cursor: Any, run_pk: Any, last_seq: int, events: Sequence[EventDraft], now: Any
    ) -> list[dict[str, Any]]:
        """The events as rows numbered after `last_seq`, in one statement; their JSON for
        viewers."""
        if not events:
            return []
        params: list[Any] = []
        stored = []
        at = now.isoformat()
        created = _EVENT.value("created_at", now)
        for index, event in enumerate(events, start=last_seq + 1):
            data = dict(event.data)
            step_key = event.step_key or ""
            params += [run_pk, index, step_key, event.kind, _EVENT.value("data", data), created]
            stored.append(
                {"seq": index, "kind": event.kind, "step_key": step_key, "data": data, "at": at}
            )
        cursor.execute(_events_insert_sql(len(events)), params)
        return stored

    def _save_run(
        self, cursor: Any, run_pk: Any, last_seq: int, variables: dict[str, Any]
    ) -> tuple[int, int, Decimal]:
        """Writes the run's counters and variables, its totals summed from the ledger (the truth
        about usage and cost; the run keeps a copy for list pages and budgets). Returns the
        totals (prompt tokens, completion tokens, cost)."""
        sums = usage_sums_sql()
        totals = f"{_RUN['prompt_tokens']}, {_RUN['completion_tokens']}, {_RUN['cost']}"
        update = (
            f"UPDATE {_RUN.table} SET {_RUN['last_seq']} = %s, {_RUN['variables']} = %s, "
            f"{_RUN['steps_completed']} = {_RUN['steps_completed']} + 1, "
            f"({totals}, {_RUN['model_calls']}) = ({sums}) WHERE {_RUN['id']} = %s"
        )
        params = [last_seq, _RUN.value("variables", variables), *usage_sums_params(run_pk), run_pk]
        if connection.features.can_return_columns_from_insert:
            cursor.execute(f"{update} RETURNING {totals}", params)
            prompt, completion, cost = cursor.fetchone()
        else:  # SQLite before 3.35
            cursor.execute(update, params)
            cursor.execute(f"SELECT {totals} FROM {_RUN.table} WHERE {_RUN['id']} = %s", [run_pk])
            prompt, completion, cost = cursor.fetchone()
        # As the ORM reads the column back (SQLite sums decimals as floats).
        return int(prompt), int(completion), _RUN.loaded("cost", cost)

    def _control_of_row(
        self, run_id: str, cancel_requested: bool, totals: tuple[int, int, Decimal]
    ) -> None:
        """What a fenced write saw becomes the control state (totals as just saved)."""
        control = Control(
            cancel_requested=bool(cancel_requested),
            lease_held=True,
            tokens_used=totals[0] + totals[1],
            cost_used=totals[2],
        )
        self._controls[str(run_id)] = (time.monotonic(), control)

    async def step_completed(
        self, run_id: str, record: StepRecord, events: Sequence[EventDraft]
    ) -> bool:
        stored = await in_db_thread(self._step_completed, run_id, record, events)
        if stored is None:
            return False
        self._heard(run_id, stored)
        await publish_events(run_id, stored)  # after the commit: viewers never see a rollback
        return True

    def _step_failed(
        self, run_id: str, key: str, attempt: int, error: str, events: Sequence[EventDraft]
    ) -> list[dict[str, Any]]:
        return self._step_failed_locked(run_id, key, attempt, error, events)

    def _step_failed_locked(
        self, run_id: str, key: str, attempt: int, error: str, events: Sequence[EventDraft]
    ) -> list[dict[str, Any]]:
        finished = ledger_finishes_take(run_id)
        try:
            stored = self._step_failed_with(run_id, key, attempt, error, events, finished)
        except Exception:
            try:  # rolled back with the step: not lost for all that
                ledger_finishes_write_alone(finished)
            except Exception:  # noqa: BLE001 - the reaper closes them, their cost estimated
                logger.warning("Run %s: %d finished calls not completed.", run_id, len(finished))
            raise
        ledger_payloads_keep(finished)
        self._parents_follow(run_id)
        return stored

    def _step_failed_with(
        self,
        run_id: str,
        key: str,
        attempt: int,
        error: str,
        events: Sequence[EventDraft],
        finished: list[LedgerFinish],
    ) -> list[dict[str, Any]]:
        with transaction.atomic():
            run = self._locked_run(run_id)
            self._start_due(run_id, key)
            with connection.cursor() as cursor:
                ledger_finishes_write(cursor, finished)  # the run's totals below sum them
            Step.objects.filter(run=run, key=key).exclude(status=Step.Status.COMPLETED).update(
                status=Step.Status.FAILED,
                attempt=attempt,
                error=redact_secrets(error)[:5000],
                finished_at=timezone.now(),
            )
            rows = self._append_events(run, events)
            self._refresh_totals(run)
            run.save(
                update_fields=[
                    "last_seq",
                    "prompt_tokens",
                    "completion_tokens",
                    "cost",
                    "model_calls",
                ]
            )
            return [_event_json(row) for row in rows]

    async def step_failed(
        self,
        run_id: str,
        *,
        key: str,
        attempt: int,
        error: str,
        events: Sequence[EventDraft] = (),
    ) -> None:
        stored = await in_db_thread(self._step_failed, run_id, key, attempt, error, events)
        self._heard(run_id, stored)
        await publish_events(run_id, stored)

    def _emit(self, run_id: str, events: Sequence[EventDraft]) -> list[dict[str, Any]]:
        with transaction.atomic():
            run = self._locked_run(run_id)
            rows = self._append_events(run, events)
            run.save(update_fields=["last_seq"])
            return [_event_json(row) for row in rows]

    async def emit(self, run_id: str, events: Sequence[EventDraft]) -> None:
        if events:
            stored = await in_db_thread(self._emit, run_id, events)
            self._heard(run_id, stored)
            await publish_events(run_id, stored)

    def _wait_for_human(self, run_id: str, key: str, request: Mapping[str, Any]) -> None:
        with transaction.atomic():
            run = self._locked_run(run_id)
            run.waiting_request = {
                "step_key": key,
                **dict(request),
                "since": timezone.now().isoformat(),
            }
            run.save(update_fields=["waiting_request"])

    async def wait_for_human(self, run_id: str, *, key: str, request: Mapping[str, Any]) -> None:
        await in_db_thread(self._wait_for_human, run_id, key, request)
