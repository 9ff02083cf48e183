"""The run executor: one per process, an event loop on its own thread, runs as coroutines.

LLM calls are slow and I/O-bound, so one process holds hundreds of runs at once: each run is a
coroutine on this loop, and a process never runs more than RUNS_PER_PROCESS of them. A Celery
worker hands each delivered run id here; in the embedded mode the web process does, and this
loop also runs the reaper and the process's heartbeat.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import logging
import os
import socket
import threading
import uuid
from typing import Any

from django.conf import settings
from django.db import connections
from django.db.models import Q
from django.utils import timezone

from a2a_site.db import in_db_thread
from a2a_site.tracing import run_span
from workflows.a2a_client import DjangoRemoteAgentRunner
from workflows.engine import Engine
from workflows.engine.contracts import LeaseLost, RunFailed, RunSnapshot, SubrunWaiting
from workflows.live import ChannelLive, publish_status
from workflows.models import Run, RunStatus
from workflows.runtime import DjangoAgentRunner, RegistryToolRunner
from workflows.services.lease import (
    RunKnown,
    run_finish,
    run_lease_acquire_reading,
    run_lease_renew_all,
    run_leases_release,
)
from workflows.services.subruns import subrun_request, subruns_follow
from workflows.spend_gate import DatabaseSpendGate
from workflows.store import ControlBoard, DatabaseRunStore

logger = logging.getLogger(__name__)


class SubworkflowRunnerOnExecutor:
    """Runs a sub-workflow as a child run on the same loop, identified by the parent's step, so
    a resumed parent finds its child instead of starting another.

    A child that waits for a person makes the parent wait with it (SubrunWaiting); the child
    then runs on its own once answered, and its stop wakes the parent
    (`workflows.services.subruns`), whose replay finds the child finished here."""

    def __init__(self, executor: RunExecutor, workspace_id: str) -> None:
        self.executor = executor
        self.workspace_id = workspace_id

    async def run(
        self,
        *,
        workflow_id: str,
        version: int | str,
        inputs: Any,
        parent_run_id: str,
        step_key: str,
        depth: int,
    ) -> Any:
        child_id = await in_db_thread(
            _child_run,
            self.workspace_id,
            workflow_id,
            version,
            dict(inputs),
            parent_run_id,
            step_key,
        )
        await self.executor.execute(child_id)
        child = await in_db_thread(
            Run.objects.select_related("workflow")
            .only("status", "output", "reason", "waiting_request", "workflow__name")
            .get,
            pk=child_id,
        )
        if child.status == RunStatus.SUCCEEDED:
            return child.output
        if child.status == RunStatus.WAITING and child.waiting_request:
            raise SubrunWaiting(str(child_id), subrun_request(child))
        if child.status in (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.WAITING):
            # Executing in another worker (resumed there after a worker died): the parent
            # waits for it instead of running it twice.
            raise SubrunWaiting(str(child_id), subrun_request(child))
        raise RunFailed(f"The sub-workflow {child.status}: {child.reason}")


def _child_run(
    workspace_id: str,
    workflow_id: str,
    version: int | str,
    inputs: dict[str, Any],
    parent_run_id: str,
    step_key: str,
) -> str:
    from workflows.models import Workflow
    from workflows.services.runs import run_start

    existing = Run.objects.filter(
        parent_id=uuid.UUID(parent_run_id), parent_step_key=step_key
    ).first()
    if existing is not None:
        # Its executor died with the parent's: take it over right away (a live lease elsewhere
        # is left alone, and the parent waits for that execution).
        Run.objects.filter(
            Q(lease_until__isnull=True) | Q(lease_until__lt=timezone.now()),
            pk=existing.pk,
            status=RunStatus.RUNNING,
        ).update(status=RunStatus.QUEUED, lease_owner="")
        return str(existing.pk)
    workflow = Workflow.objects.filter(pk=workflow_id, workspace_id=workspace_id).first()
    if workflow is None:
        raise RunFailed(f"The sub-workflow {workflow_id} does not exist in this workspace.")
    chosen = None
    if version not in ("latest", "latest_published"):
        chosen = workflow.versions.filter(number=int(version)).first()
        if chosen is None:
            raise RunFailed(f"Version {version} of “{workflow.name}” does not exist.")
    parent = Run.objects.get(pk=parent_run_id)
    try:
        child = run_start(
            workflow=workflow,
            user=parent.created_by,
            inputs=inputs,
            version=chosen,
            parent=parent,
            parent_step_key=step_key,
            dispatch=False,
        )
    except Exception as error:  # noqa: BLE001 - bad inputs or no published version
        raise RunFailed(f"The sub-workflow could not start: {error}") from None
    return str(child.pk)


class RunExecutor:
    def __init__(self, *, capacity: int | None = None, embedded: bool = False) -> None:
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.capacity = capacity or settings.RUNS_PER_PROCESS
        self.embedded = embedded
        self._slots = threading.BoundedSemaphore(self.capacity)
        self._active: dict[str, concurrent.futures.Future[Any]] = {}
        # Runs delivered again while executing here: submitted anew once that execution ends.
        self._again: set[str] = set()
        self._lock = threading.Lock()
        self._heartbeat_thread: Any = None
        self._renewal: asyncio.Task[None] | None = None
        self._leased = 0  # runs executing on the loop under a lease (only the loop changes it)
        # Set by the memory guard: this process takes no new runs (workflows/memory_guard.py).
        self.draining = False
        # Control checks of all the runs executing here, read in one query per round.
        self.controls = ControlBoard(owner=self.owner)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name="run-executor", daemon=True)
        self._thread.start()
        # Read off the loop: the first priced call would otherwise hold every run's loop for
        # the second it takes (a worker has read it already; see workflows/signals.py).
        from agents.llm.pricing import price_map

        threading.Thread(target=price_map, name="price-list", daemon=True).start()
        from a2a_site.process_gauges import gauges

        gauges.lag_probe_ensure(self.loop)
        gauges.publisher_ensure(kind="embedded" if embedded else "celery")
        if not embedded and settings.WORKER_MAX_RSS_MB:
            from workflows.memory_guard import memory_guard

            asyncio.run_coroutine_threadsafe(memory_guard(self), self.loop)
        if embedded:
            asyncio.run_coroutine_threadsafe(self._embedded_duties(), self.loop)

    def _serve(self) -> None:
        from workflows.workers import loop_watch

        asyncio.set_event_loop(self.loop)
        loop_watch(self.loop)
        self.loop.run_forever()

    @property
    def active(self) -> int:
        return len(self._active)

    def submit(self, run_id: str, *, block: bool = True) -> concurrent.futures.Future[Any] | None:
        """Starts executing the run on the loop. Blocks while the process is full, unless
        `block` is False: then the run stays queued and the reaper sends it again later."""
        run_id = str(run_id)
        with self._lock:
            existing = self._active.get(run_id)
            if existing is not None:
                # Executing here already. Either a duplicate delivery, or a resume sent while
                # that execution winds down (a run answered the moment it began to wait): look
                # again when it ends — the lease makes a true duplicate find nothing to do.
                self._again.add(run_id)
                return existing
        if not self._slots.acquire(blocking=block):
            return None
        future = asyncio.run_coroutine_threadsafe(self.execute(run_id), self.loop)
        with self._lock:
            self._active[run_id] = future

        def done(ended: concurrent.futures.Future[Any]) -> None:
            with self._lock:
                self._active.pop(run_id, None)
                again = run_id in self._again
                self._again.discard(run_id)
            self._slots.release()
            # Not when shutting down (cancelled): the reaper hands the run to another executor.
            if again and not ended.cancelled() and self.loop.is_running():
                self.submit(run_id, block=False)

        future.add_done_callback(done)
        return future

    def _engine(
        self,
        run_id: str,
        workspace_id: str,
        agent_versions: dict[str, int],
        store: DatabaseRunStore,
        dimensions: tuple[str, str, int] = ("", "", 1),
        runtime_stamp: int | None = None,
        budgeted: bool = True,
    ) -> Engine:
        return Engine(
            store=store,
            agents=DjangoAgentRunner(
                run_id=run_id,
                workspace_id=workspace_id,
                agent_versions=agent_versions,
                workflow_id=dimensions[0],
                user_id=dimensions[1],
                priority=dimensions[2],
                runtime_stamp=runtime_stamp,
            ),
            tools=RegistryToolRunner(run_id=run_id, workspace_id=workspace_id),
            subworkflows=SubworkflowRunnerOnExecutor(self, workspace_id),
            live=ChannelLive(),
            spend_gate=DatabaseSpendGate(
                workspace_id=workspace_id,
                workflow_id=dimensions[0],
                user_id=dimensions[1],
                # No budget over the run when it started: the gate has nothing to ask.
                _budgets=None if budgeted else [],
            ),
            remote_agents=DjangoRemoteAgentRunner(run_id=run_id, workspace_id=workspace_id),
        )

    async def execute(self, run_id: str) -> str | None:
        """Executes the run if this process can lease it; returns the final status or None."""
        store = DatabaseRunStore(owner=self.owner, board=self.controls)

        def lease_and_load() -> tuple[bool, RunSnapshot | Exception | None, bool]:
            # The lease, then (if taken) the run's one read that serves the executor and the
            # engine, and whether any budget may stop it: one hop to the database threads.
            taken, row = run_lease_acquire_reading(
                run_id, owner=self.owner, read=store.load_statement(run_id)
            )
            if not taken:
                return False, None, True
            try:
                # Read with the take on PostgreSQL; read now otherwise.
                snapshot = store._load(run_id) if row is None else store.loaded(run_id, row)
                return True, snapshot, store.budgeted(run_id)
            except Exception as error:  # noqa: BLE001 - raised below, under the lease
                return True, error, True

        acquired, loaded, budgeted = await in_db_thread(lease_and_load)
        if not acquired:
            return None  # finished, cancelled, or another worker holds it: nothing to do
        await publish_status(run_id, RunStatus.RUNNING)
        self._leased += 1
        if self._renewal is None or self._renewal.done():
            self._renewal = asyncio.create_task(self._renew_leases())
        self.controls.hold(run_id)
        known: RunKnown | None = None
        try:
            if isinstance(loaded, Exception):
                raise loaded
            assert loaded is not None
            snapshot = loaded
            known = RunKnown(inputs=snapshot.inputs, nested=snapshot.depth > 0)
            engine = self._engine(
                run_id,
                snapshot.workspace_id,
                store.agent_versions(run_id),
                store,
                store.dimensions(run_id),
                store.runtime_stamp(run_id),
                budgeted,
            )
            with run_span(run_id) as span:
                outcome = await engine.run(run_id, snapshot=snapshot)
                if span is not None:
                    span.set_attribute("a2a.run.status", str(outcome.status))
            status, reason, output = outcome.status, outcome.reason, outcome.output
        except LeaseLost:
            logger.warning("Run %s: lease lost; another worker continues it.", run_id)
            return None
        except asyncio.CancelledError:
            raise  # the executor is shutting down; the lease expires and the reaper resumes
        except Exception as error:
            logger.exception("Run %s failed inside the engine", run_id)
            status, reason, output = (
                RunStatus.FAILED,
                f"Internal error ({type(error).__name__}).",
                None,
            )
        finally:
            self._leased -= 1
            self.controls.release(run_id)
            said = store.said(run_id)
            if known is not None and said is not None:
                # All the run said and called was seen here: no need to read it back.
                known = dataclasses.replace(known, messages=said[0], facets=said[1])
            store.release(run_id)
        finished = await in_db_thread(
            run_finish,
            run_id,
            owner=self.owner,
            status=status,
            reason=reason,
            output=output,
            known=known,
        )
        if finished:
            await publish_status(run_id, status, reason)
            # A parent waiting on this run, or this run waiting on a child, moves on now (a
            # top-level run that stopped has neither).
            if known is None or known.nested or status == RunStatus.WAITING:
                try:
                    await in_db_thread(subruns_follow, run_id)
                except Exception:  # noqa: BLE001 - the reaper settles such waits on its rounds
                    logger.warning("Run %s: the runs waiting on it were not woken.", run_id)
            return str(status)
        return None

    async def _renew_leases(self) -> None:
        """Renews the leases of every run executing here in one UPDATE per heartbeat, while
        any does. A run whose lease was lost meanwhile is not renewed (the UPDATE is fenced by
        the owner); its engine sees the loss at its next control check."""
        while self._leased:
            await asyncio.sleep(settings.RUN_HEARTBEAT_SECONDS)
            try:
                await in_db_thread(run_lease_renew_all, owner=self.owner)
            except Exception:  # noqa: BLE001 - a missed renewal is retried next beat
                logger.warning("Renewing the run leases failed; retrying.")

    async def _stop_renewal(self) -> None:
        if self._renewal is not None:
            self._renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewal

    async def _embedded_duties(self) -> None:
        """Without Celery beat, this process reaps its own runs, probes the Ollama nodes and
        reports itself."""
        from agents.services.nodes import fleet_probe
        from workflows.housekeeping import housekeeping_duties
        from workflows.services.reaper import runs_reap
        from workflows.workers import HeartbeatThread

        self._heartbeat_thread = HeartbeatThread(
            name=f"embedded@{socket.gethostname()}:{os.getpid()}", kind="embedded"
        )
        self._heartbeat_thread.start()
        last_probe = float("-inf")
        last_run: dict[str, float] = {}
        while True:
            try:
                await in_db_thread(runs_reap)
                if self.loop.time() - last_probe >= settings.OLLAMA_PROBE_SECONDS:
                    last_probe = self.loop.time()
                    await in_db_thread(fleet_probe)
            except Exception:  # noqa: BLE001 - the next round tries again
                logger.exception("The embedded housekeeping failed; retrying.")
            for duty in housekeeping_duties():
                if self.loop.time() - last_run.get(duty.name, float("-inf")) < duty.every_seconds():
                    continue
                last_run[duty.name] = self.loop.time()
                try:
                    await in_db_thread(duty.run)
                except Exception:  # noqa: BLE001 - the next round tries again
                    logger.exception("The embedded duty %s failed; retrying.", duty.name)
            await asyncio.sleep(min(settings.RUN_REAPER_SECONDS, settings.OLLAMA_PROBE_SECONDS))

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stops the loop. Runs still executing keep their lease until it expires, and the
        reaper hands them to another executor: nothing is lost, only delayed."""
        from agents.llm import gateway_close_for_loop

        if self._heartbeat_thread is not None:
            self._heartbeat_thread.stop()
        for future in list(self._active.values()):
            future.cancel()
        with contextlib.suppress(Exception):  # shutting down: a pool that will not close is moot
            asyncio.run_coroutine_threadsafe(gateway_close_for_loop(), self.loop).result(timeout)
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._stop_renewal(), self.loop).result(timeout)
        self.loop.call_soon_threadsafe(self.controls.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)
        # The runs left here are not executing any more: their leases end now, so the reaper
        # hands them to another executor at its next round instead of after the lease.
        with contextlib.suppress(Exception):  # else they expire on their own
            run_leases_release(owner=self.owner)
        connections.close_all()


_executor: RunExecutor | None = None
_executor_lock = threading.Lock()


def process_executor() -> RunExecutor:
    """This process's executor, created on first use."""
    global _executor
    with _executor_lock:
        if _executor is None:
            from a2a_site.gc_tuning import gc_settle_startup

            # The process executes runs from now on: what start-up built stays put.
            gc_settle_startup()
            _executor = RunExecutor(embedded=settings.EXECUTION_MODE == "embedded")
        return _executor
