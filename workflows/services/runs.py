"""Starting, cancelling and answering runs. A run starts as a row; execution comes on commit."""

from __future__ import annotations

import functools
from datetime import timedelta
from typing import Any

from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models.expressions import BaseExpression, DatabaseDefault
from django.db.models.signals import post_save, pre_save
from django.utils import timezone

from a2a_site.accounts.models import User
from a2a_site.api.models import ApiToken
from a2a_site.db import UNFLUSHED_COMMIT, Columns, execute_one
from agents.budgets.models import Budget
from workflows.graph import InputError, graph_load
from workflows.live import announce_status
from workflows.models import (
    TERMINAL_STATUSES,
    LaunchedVia,
    Run,
    RunPriority,
    RunStatus,
    Workflow,
    WorkflowVersion,
)
from workflows.search import search_text_of
from workflows.services.dispatch import dispatch_run
from workflows.services.lease import run_cancel_unattended
from workflows.services.subruns import subrun_answer_target, subrun_settle
from workflows.spend_gate import LaunchRefused, launch_refusal

_VERSION = Columns(WorkflowVersion)
_BUDGET = Columns(Budget)
_VERSION_FIELDS = WorkflowVersion._meta.concrete_fields
_VERSION_ATTNAMES = [field.attname for field in _VERSION_FIELDS]


@functools.cache
def _latest_version_sql() -> str:
    return (
        f"SELECT {', '.join(_VERSION[field.name] for field in _VERSION_FIELDS)} "
        f"FROM {_VERSION.table} WHERE {_VERSION['workflow']} = %s "
        f"ORDER BY {_VERSION['number']} DESC LIMIT 1"
    )


@functools.cache
def _launch_reading_sql() -> str:
    """The latest version (if any) beside whether the workspace has a budget: one row."""
    return (
        f"SELECT v.*, EXISTS (SELECT 1 FROM {_BUDGET.table} WHERE {_BUDGET['workspace']} = %s) "
        f"FROM (SELECT 1) AS one LEFT JOIN ({_latest_version_sql()}) AS v ON true"
    )


def _version_of(workflow: Workflow, row: Any) -> WorkflowVersion:
    values = [
        _VERSION.loaded(field.name, raw) for field, raw in zip(_VERSION_FIELDS, row, strict=True)
    ]
    version = WorkflowVersion.from_db(DEFAULT_DB_ALIAS, _VERSION_ATTNAMES, values)
    version.workflow = workflow
    return version


def workflow_latest_version(workflow: Workflow) -> WorkflowVersion | None:
    """The workflow's highest version, read by one statement written by hand: every launch
    reads it, and the ORM took four times the query's own cost to build it (a fifth of a
    launch's CPU). The version comes as the ORM would give it, its workflow the one given."""
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute(_latest_version_sql(), [_VERSION.value("workflow", workflow.pk)])
        row = cursor.fetchone()
    return None if row is None else _version_of(workflow, row)


def _launch_reading(workflow: Workflow) -> tuple[WorkflowVersion | None, bool]:
    """The workflow's highest version and whether its workspace has any budget (which a
    launch asks next, `launch_refusal`): one round trip, not two."""
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute(
            _launch_reading_sql(),
            [
                _BUDGET.value("workspace", workflow.workspace_id),
                _VERSION.value("workflow", workflow.pk),
            ],
        )
        *row, budgeted = cursor.fetchone()
    if row[0] is None:  # no version: the join found none (an id is never null)
        return None, bool(budgeted)
    return _version_of(workflow, row), bool(budgeted)


def run_start(
    *,
    workflow: Workflow,
    user: User | None,
    inputs: dict[str, Any],
    version: WorkflowVersion | None = None,
    parent: Run | None = None,
    parent_step_key: str = "",
    dispatch: bool = True,
    launched_via: str = LaunchedVia.WEB,
    priority: str | int | None = None,
    api_token: ApiToken | None = None,
    a2a_context_id: str = "",
    a2a_message_id: str = "",
) -> Run:
    """Validates the inputs, pins the version, and queues the run (dispatched after commit).
    `priority`: "low", "normal" or "high"; None takes the workflow's default (a child run
    takes its parent's). `api_token`: the token of a launch over the API or A2A, shown as the
    caller on the run's page."""
    budgeted = None
    if version is None:
        version, budgeted = _launch_reading(workflow)
    if version is None:
        raise ValidationError(
            "Publish the workflow before running it: runs use a published version."
        )
    graph = graph_load(version.graph)
    try:
        clean = graph.inputs.validate_inputs(inputs, allow_unknown=True)
    except InputError as error:
        raise ValidationError(dict(error.errors)) from None
    if priority is None:
        priority = parent.priority if parent is not None else graph.settings.priority
    try:
        rank = RunPriority.parse(priority)
    except ValueError as error:
        raise ValidationError({"priority": [str(error)]}) from None
    refused = launch_refusal(
        workspace_id=workflow.workspace_id,
        workflow_id=workflow.pk,
        user_id=user.pk if user else None,
        agent_versions=version.agent_versions or {},
        budgeted=budgeted,
    )
    if refused:
        raise LaunchRefused(refused)
    # One INSERT, committed on its own unless the caller has a transaction open: Django runs
    # an on_commit callback at once outside a transaction (the row is committed by then) and
    # at the commit of the caller's otherwise, so the run is dispatched after it exists either
    # way. A transaction of its own cost two more round trips per run started.
    #
    # On its own on PostgreSQL, the commit does not wait for the disk before the dispatch:
    # the row is visible to a worker as soon as it is committed, and the launch waits for
    # the disk after the message is sent (`_commits_flush`), while a worker takes the run. So
    # the launch still returns only once the run is durable, and the run's start no longer
    # waits for the flush (3-5 ms on a busy disk). Should the database crash before that
    # flush, the run is lost with all it did (its first durable write would have flushed it),
    # and the launch fails, as it did when its commit failed.
    run = Run(
        workspace_id=workflow.workspace_id,
        workflow=workflow,
        version=version,
        inputs=clean,
        created_by=user,
        parent=parent,
        parent_step_key=parent_step_key,
        depth=(parent.depth + 1) if parent else 0,
        launched_via=LaunchedVia.WORKFLOW if parent else launched_via,
        search_text=search_text_of(inputs=clean),
        deadline=timezone.now() + timedelta(seconds=graph.settings.timeout_s),
        dispatched_at=timezone.now() if dispatch else None,
        priority=rank,
        api_token=api_token,
        a2a_context_id=a2a_context_id,
        a2a_message_id=a2a_message_id,
    )
    unflushed = _run_insert(run)
    if dispatch:
        run_id = run.pk
        transaction.on_commit(lambda: dispatch_run(run_id, priority=rank))
    if unflushed:
        _commits_flush()
    return run


_RUN = Columns(Run)
_RUN_FIELDS = [field for field in Run._meta.local_concrete_fields if not field.generated]


@functools.cache
def _run_insert_sql() -> str:
    columns = ", ".join(_RUN[field.name] for field in _RUN_FIELDS)
    marks = ", ".join(["%s"] * len(_RUN_FIELDS))
    return f"INSERT INTO {_RUN.table} ({columns}) VALUES ({marks})"


def _run_insert(run: Run) -> bool:
    """Inserts a new run's row as `Run.objects.create` would (each field's default, pre-save
    and preparation), by one statement written by hand: the ORM took half a launch's CPU to
    build its forty-column INSERT. The ORM's own save stays for anything that listens to it.

    True if the row was committed without waiting for the disk (PostgreSQL, no transaction
    open): the caller then owes a `_commits_flush`."""
    if pre_save.has_listeners(Run) or post_save.has_listeners(Run):
        run.save(force_insert=True)
        return False
    run._prepare_related_fields_for_save(operation_name="save")  # type: ignore[attr-defined]
    current = connections[DEFAULT_DB_ALIAS]
    params = []
    for field in _RUN_FIELDS:
        value = field.pre_save(run, True)
        if isinstance(value, DatabaseDefault):
            # What the database would fill in (and the ORM read back): the plain default.
            value = field.db_default
            if isinstance(value, BaseExpression):
                raise ImproperlyConfigured(f"Run.{field.name}: a computed db_default")
            setattr(run, field.attname, value)
        params.append(field.get_db_prep_save(value, current))
    unflushed = (
        current.vendor == "postgresql" and current.get_autocommit() and not current.in_atomic_block
    )
    sql = _run_insert_sql() + (f" RETURNING {UNFLUSHED_COMMIT}" if unflushed else "")
    with transaction.mark_for_rollback_on_error(DEFAULT_DB_ALIAS), current.cursor() as cursor:
        execute_one(cursor, sql, params)
    run._state.adding = False
    run._state.db = DEFAULT_DB_ALIAS
    return unflushed


def _commits_flush() -> None:
    """Waits until every commit made so far, unflushed ones included, is on the disk: a
    transaction of its own that writes to the WAL (an empty transactional message, which
    any role may emit and nothing stores) commits flushed, and a flush takes everything
    written to the WAL before it. A transaction that only took an id would not wait."""
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT pg_logical_emit_message(true, 'a2a', '')")


def run_cancel(*, run: Run, user: User | None) -> Run:
    """Cancels a run: at once if no live worker executes it (queued, waiting, or its worker
    died), else the engine stops within a second."""
    who = f" by {user.username}" if user else ""
    reason = f"Cancelled{who}."
    stopped = run_cancel_unattended(run.pk, reason=reason)
    if not stopped:
        flagged = Run.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(
            cancel_requested=True
        )
        # The lease may have expired between the two writes; the reaper also ends such a run.
        stopped = bool(flagged) and run_cancel_unattended(
            run.pk, reason=reason, requested_only=True
        )
    if stopped:
        _announce(run.pk, RunStatus.CANCELLED, reason)
        if run.parent_id is not None:
            # A parent waiting on this run learns at once that it will not finish.
            parent_id = run.parent_id
            transaction.on_commit(lambda: subrun_settle(parent_id))
    # Its sub-runs are part of it: one waiting for a person must not wait on for ever.
    for child in Run.objects.filter(parent_id=run.pk).exclude(status__in=TERMINAL_STATUSES):
        run_cancel(run=child, user=user)
    run.refresh_from_db()
    return run


def run_answer(*, run: Run, step_key: str, answer: Any, user: User | None) -> Run:
    """A person's answer to a waiting run's question; the run continues from where it waited.

    A parent waiting on its sub-workflow's question passes the answer to the child, which goes
    on; the parent stays waiting until the child stops (`workflows.services.subruns`)."""
    with transaction.atomic():
        locked = Run.objects.select_for_update().get(pk=run.pk)
        waiting = locked.waiting_request or {}
        if locked.status != RunStatus.WAITING or waiting.get("step_key") != step_key:
            raise ValidationError("This run is not waiting for that answer any more.")
        target = subrun_answer_target(waiting)
        if target is not None:
            if waiting.get("kind") == "subrun":
                raise ValidationError(
                    "Its sub-workflow is still working: there is nothing to answer yet."
                )
            child, child_key = target
            run_answer(run=child, step_key=child_key, answer=answer, user=user)
            run.refresh_from_db()
            return run
        locked.answers = {**locked.answers, step_key: answer}
        if user is not None:
            name = user.get_full_name() or user.get_username()
            locked.answered_by = {**(locked.answered_by or {}), step_key: name}
        locked.waiting_request = None
        locked.status = RunStatus.QUEUED
        locked.dispatched_at = timezone.now()
        locked.save(
            update_fields=["answers", "answered_by", "waiting_request", "status", "dispatched_at"]
        )
        run_id = locked.pk
        transaction.on_commit(lambda: dispatch_run(run_id))
        parent_id = locked.parent_id
        if parent_id is not None:
            # The parent showing this question shows that it was answered.
            transaction.on_commit(lambda: subrun_settle(parent_id))
    run.refresh_from_db()
    return run


def _announce(run_id: Any, status: str, reason: str) -> None:
    transaction.on_commit(lambda: announce_status(run_id, status, reason))


def run_retry(*, run: Run, user: User | None) -> Run:
    """Continues a failed run from its failed step: finished steps are kept, not redone."""
    refused = launch_refusal(
        workspace_id=run.workspace_id,
        workflow_id=run.workflow_id,
        user_id=run.created_by_id,
        agent_versions=run.version.agent_versions or {},
    )
    if refused:
        raise LaunchRefused(refused.replace("Not started", "Not retried", 1))
    now = timezone.now()
    with transaction.atomic():
        updated = Run.objects.filter(pk=run.pk, status=RunStatus.FAILED).update(
            status=RunStatus.QUEUED,
            reason="",
            output=None,
            started_at=None,  # a retry is timed from its own start
            finished_at=None,
            attempts=0,
            cancel_requested=False,
            lease_owner="",
            lease_until=None,
            dispatched_at=now,
            deadline=now + timedelta(seconds=graph_load(run.version.graph).settings.timeout_s),
        )
        if not updated:
            raise ValidationError("Only a failed run can be retried.")
        run_id = run.pk
        transaction.on_commit(lambda: dispatch_run(run_id))
    run.refresh_from_db()
    return run


def run_again(*, run: Run, user: User | None) -> Run:
    """A new run of the same version with the same inputs."""
    return run_start(
        workflow=run.workflow,
        user=user,
        inputs=dict(run.inputs),
        version=run.version,
        priority=run.priority,
    )
