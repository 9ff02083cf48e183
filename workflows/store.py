"""The engine's RunStore on the database: steps, events and variables, written atomically.

Every write is fenced by the lease: it happens only while this executor still owns the run, in the
same transaction that locks the run row, so a worker that lost its lease (paused, partitioned,
presumed dead) cannot add a step or an event behind the back of the one that took over. A step is
completed by compare-and-swap on its status, so a duplicate completion stores nothing.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from a2a_site.db import in_db_thread
from agents.models import LedgerEntry
from workflows.engine.contracts import (
    Control,
    EventDraft,
    LeaseLost,
    RunSnapshot,
    StepRecord,
)
from workflows.engine.engine import variables_apply
from workflows.live import publish_events
from workflows.models import Run, RunEvent, RunStatus, Step

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


def _event_json(event: RunEvent) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "kind": event.kind,
        "step_key": event.step_key,
        "data": event.data,
        "at": event.created_at.isoformat(),
    }


class DatabaseRunStore:
    def __init__(self, *, owner: str) -> None:
        self.owner = owner
        # Attempts of unfinished steps, read at load: a resumed step is attempt n + 1.
        self._attempts: dict[tuple[str, str], int] = {}
        # Each run's variable reducers, read once from its pinned graph.
        self._reducers: dict[str, dict[str, str]] = {}
        # The run's control state as the last read of its row found it, and when.
        self._controls: dict[str, tuple[float, Control]] = {}

    # --- reads ------------------------------------------------------------------------------------

    def _load(self, run_id: str) -> RunSnapshot:
        run = Run.objects.select_related("version").get(pk=run_id)
        completed = {}
        for step in Step.objects.filter(run_id=run_id):
            if step.status == Step.Status.COMPLETED:
                completed[step.key] = StepRecord(
                    key=step.key,
                    node_id=step.node_id,
                    output=step.output,
                    branch=step.branch or None,
                    variables=step.variables,
                )
            else:
                self._attempts[(run_id, step.key)] = step.attempt
        self._reducers[str(run_id)] = {
            variable.get("name"): variable.get("reducer", "replace")
            for variable in run.version.graph.get("variables") or []
        }
        settings = run.version.graph.get("settings") or {}
        deadline = None
        if run.deadline is not None:
            deadline = time.monotonic() + (run.deadline - timezone.now()).total_seconds()
        budget = settings.get("cost_budget_usd")
        return RunSnapshot(
            run_id=str(run.pk),
            workspace_id=str(run.workspace_id),
            graph=run.version.graph,
            inputs=run.inputs,
            variables=run.variables,
            completed=completed,
            answers=run.answers,
            depth=run.depth,
            deadline=deadline,
            token_budget=settings.get("token_budget"),
            cost_budget=Decimal(str(budget)) if budget is not None else None,
            budget_action=settings.get("budget_action", "stop"),
            tokens_used=run.total_tokens,
            cost_used=run.cost,
        )

    async def load(self, run_id: str) -> RunSnapshot:
        return await in_db_thread(self._load, run_id)

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
        field = LedgerEntry._meta.get_field("run_id")
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0), "
                f"SUM(cost), COUNT(*) FROM {LedgerEntry._meta.db_table} WHERE run_id = %s",
                [field.get_db_prep_value(run.pk, connection)],
            )
            prompt, completion, cost, calls = cursor.fetchone()
        run.prompt_tokens = int(prompt)
        run.completion_tokens = int(completion)
        run.cost = Decimal(str(cost)) if cost is not None else Decimal(0)
        run.model_calls = int(calls)

    def _step_started(
        self, run_id: str, key: str, node_id: str, node_type: str, attempt: int, payload: Any
    ) -> None:
        # One statement, no lock: marking a step as running changes nothing that matters if a
        # stale worker does it; completing one is what the lease fences. After a crash the
        # engine counts attempts from 1 again, so the row adds what it remembers.
        previous = self._attempts.get((run_id, key), 0)
        self._attempts[(run_id, key)] = attempt = max(attempt, previous + 1)
        Step.objects.bulk_create(
            [
                Step(
                    run_id=run_id,
                    key=key,
                    node_id=node_id,
                    node_type=node_type,
                    attempt=attempt,
                    input=payload,
                    started_at=timezone.now(),
                )
            ],
            update_conflicts=True,
            unique_fields=["run", "key"],
            update_fields=["attempt", "input", "started_at", "node_type"],
        )

    async def step_started(
        self, run_id: str, *, key: str, node_id: str, node_type: str, attempt: int, input: Any
    ) -> None:
        await in_db_thread(self._step_started, run_id, key, node_id, node_type, attempt, input)

    def _step_completed(
        self, run_id: str, record: StepRecord, events: Sequence[EventDraft]
    ) -> list[dict[str, Any]] | None:
        with transaction.atomic():
            run = self._locked_run(run_id)
            now = timezone.now()
            fields = {
                "status": Step.Status.COMPLETED,
                "output": record.output,
                "branch": record.branch or "",
                "variables": dict(record.variables),
                "finished_at": now,
                "error": "",
            }
            # Compare-and-swap: only a step not yet completed becomes completed.
            changed = (
                Step.objects.filter(run=run, key=record.key)
                .exclude(status=Step.Status.COMPLETED)
                .update(**fields)
            )
            if not changed:
                if Step.objects.filter(run=run, key=record.key).exists():
                    return None  # a duplicate: the first completion stands
                Step.objects.create(
                    run=run,
                    key=record.key,
                    node_id=record.node_id,
                    node_type="",
                    started_at=now,
                    **fields,
                )
            rows = self._append_events(run, events)
            variables = dict(run.variables)
            variables_apply(variables, record.variables, self._reducers.get(str(run_id), {}))
            run.variables = variables
            run.steps_completed += 1
            self._refresh_totals(run)
            run.save(
                update_fields=[
                    "last_seq",
                    "variables",
                    "steps_completed",
                    "prompt_tokens",
                    "completion_tokens",
                    "cost",
                    "model_calls",
                ]
            )
            self._remember(run)
            return [_event_json(row) for row in rows]

    async def step_completed(
        self, run_id: str, record: StepRecord, events: Sequence[EventDraft]
    ) -> bool:
        stored = await in_db_thread(self._step_completed, run_id, record, events)
        if stored is None:
            return False
        await publish_events(run_id, stored)  # after the commit: viewers never see a rollback
        return True

    def _step_failed(
        self, run_id: str, key: str, attempt: int, error: str, events: Sequence[EventDraft]
    ) -> list[dict[str, Any]]:
        with transaction.atomic():
            run = self._locked_run(run_id)
            Step.objects.filter(run=run, key=key).exclude(status=Step.Status.COMPLETED).update(
                status=Step.Status.FAILED,
                attempt=attempt,
                error=error[:5000],
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
        await publish_events(run_id, stored)

    def _emit(self, run_id: str, events: Sequence[EventDraft]) -> list[dict[str, Any]]:
        with transaction.atomic():
            run = self._locked_run(run_id)
            rows = self._append_events(run, events)
            run.save(update_fields=["last_seq"])
            return [_event_json(row) for row in rows]

    async def emit(self, run_id: str, events: Sequence[EventDraft]) -> None:
        if events:
            await publish_events(run_id, await in_db_thread(self._emit, run_id, events))

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
