"""The database run store keeps the engine's promises on both databases: a completed step is
stored with its events, variables and totals in one go, fenced by the lease, exactly once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from agents.models import LedgerEntry
from tests.conftest import Personas
from workflows.engine.contracts import EventDraft, LeaseLost, StepRecord
from workflows.engine.envelope import ENVELOPE
from workflows.models import Run, RunEvent, Step
from workflows.services.lease import run_lease_acquire
from workflows.services.runs import run_start
from workflows.services.workflows import workflow_create, workflow_publish
from workflows.store import ControlBoard, DatabaseRunStore

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def leased(personas: Personas, pipeline: Any) -> Run:
    run = run_start(workflow=pipeline, user=personas.owner, inputs={"topic": "x"}, dispatch=False)
    assert run_lease_acquire(run.pk, owner="worker-a")
    return run


def _ledger_row(run: Run, *, prompt: int, completion: int, cost: str) -> None:
    LedgerEntry.objects.create(
        call_id=uuid.uuid4(),
        workspace_id=run.workspace_id,
        deployment_id="d",
        provider_kind="demo",
        model="demo",
        status=LedgerEntry.Status.COMPLETED,
        prompt_tokens=prompt,
        completion_tokens=completion,
        cost=Decimal(cost),
        run_id=run.pk,
        started_at=timezone.now(),
    )


def _complete(
    store: DatabaseRunStore, run: Run, key: str, variables: dict[str, Any], *texts: str
) -> bool:
    async def go() -> bool:
        await store.load(str(run.pk))
        await store.step_started(
            str(run.pk), key=key, node_id=key, node_type="agent", attempt=1, input={"k": key}
        )
        record = StepRecord(key, key, f"output of {key}", None, variables)
        events = [EventDraft("message", {"text": text}, key) for text in texts]
        return await store.step_completed(str(run.pk), record, events)

    return asyncio.run(go())


def test_a_completed_step_is_stored_with_its_events_variables_and_totals(leased: Run) -> None:
    _ledger_row(leased, prompt=10, completion=5, cost="0.00012")
    _ledger_row(leased, prompt=7, completion=3, cost="0.00001")
    store = DatabaseRunStore(owner="worker-a")

    assert _complete(store, leased, "research", {"findings": "facts"}, "one", "two") is True

    step = Step.objects.get(run=leased, key="research")
    assert (step.status, step.output, step.variables) == (
        "completed",
        "output of research",
        {"findings": "facts"},
    )
    events = list(RunEvent.objects.filter(run=leased).values_list("seq", "kind", "data"))
    assert [(seq, kind, data["text"]) for seq, kind, data in events] == [
        (1, "message", "one"),
        (2, "message", "two"),
    ]
    # Every event carries its envelope: what it is, who sent it, what it answers.
    assert {name: events[0][2][name] for name in ENVELOPE} == {
        "type": "message",
        "sender": "research",
        "receiver": None,
        "correlation_id": "step:research",
    }
    leased.refresh_from_db()
    assert leased.variables["findings"] == "facts"
    assert (leased.last_seq, leased.steps_completed, leased.model_calls) == (2, 1, 2)
    assert (leased.prompt_tokens, leased.completion_tokens) == (17, 8)
    assert leased.cost == Decimal("0.00013")
    resumed = asyncio.run(DatabaseRunStore(owner="worker-a").load(str(leased.pk)))
    assert resumed.workspace_id == str(leased.workspace_id)
    assert resumed.completed["research"].output == "output of research"
    assert resumed.variables["findings"] == "facts"
    assert (resumed.tokens_used, resumed.cost_used) == (25, Decimal("0.00013"))
    control = asyncio.run(store.control(str(leased.pk)))
    assert (control.lease_held, control.tokens_used, control.cost_used) == (
        True,
        25,
        Decimal("0.00013"),
    )


def test_a_store_that_lost_its_lease_writes_nothing(leased: Run) -> None:
    store = DatabaseRunStore(owner="worker-a")
    asyncio.run(store.load(str(leased.pk)))
    Run.objects.filter(pk=leased.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert run_lease_acquire(leased.pk, owner="worker-b")

    with pytest.raises(LeaseLost):
        _complete(store, leased, "research", {"findings": "stale"}, "late")

    leased.refresh_from_db()
    assert (leased.last_seq, leased.steps_completed, leased.variables.get("findings")) == (
        0,
        0,
        None,
    )
    assert not RunEvent.objects.filter(run=leased).exists()
    assert Step.objects.get(run=leased, key="research").status == "running"


def test_a_duplicate_completion_stores_nothing(leased: Run) -> None:
    store = DatabaseRunStore(owner="worker-a")
    assert _complete(store, leased, "research", {"findings": "first"}, "first") is True

    assert _complete(store, leased, "research", {"findings": "second"}, "second") is False

    leased.refresh_from_db()
    assert (leased.last_seq, leased.steps_completed, leased.variables["findings"]) == (
        1,
        1,
        "first",
    )
    texts = [
        data["text"] for data in RunEvent.objects.filter(run=leased).values_list("data", flat=True)
    ]
    assert texts == ["first"]


def test_parallel_completions_number_every_event_and_keep_every_variable(leased: Run) -> None:
    store = DatabaseRunStore(owner="worker-a")
    asyncio.run(store.load(str(leased.pk)))
    keys = [f"branch-{index}" for index in range(8)]

    async def complete_all() -> list[bool]:
        async def one(key: str) -> bool:
            await store.step_started(
                str(leased.pk), key=key, node_id=key, node_type="agent", attempt=1, input=None
            )
            record = StepRecord(key, key, key, None, {key.replace("-", "_"): key})
            drafts = [EventDraft("message", {"n": n}, key) for n in range(3)]
            return await store.step_completed(str(leased.pk), record, drafts)

        return await asyncio.gather(*(one(key) for key in keys))

    assert asyncio.run(complete_all()) == [True] * 8

    leased.refresh_from_db()
    assert leased.steps_completed == 8
    assert list(RunEvent.objects.filter(run=leased).values_list("seq", flat=True)) == list(
        range(1, 25)
    )
    assert leased.last_seq == 24
    assert {name: leased.variables[name] for name in leased.variables if "branch" in name} == {
        key.replace("-", "_"): key for key in keys
    }


def test_appending_variables_accumulate_across_steps(personas: Personas, pipeline: Any) -> None:
    graph = dict(pipeline.versions.get().graph)
    graph["variables"] = [
        *graph["variables"],
        {"name": "notes", "type": "array", "reducer": "append", "default": []},
    ]
    workflow = workflow_create(
        workspace=personas.workspace, user=personas.owner, name="Notes", graph=graph
    )
    workflow_publish(workflow=workflow, user=personas.owner)
    run = run_start(workflow=workflow, user=personas.owner, inputs={"topic": "x"}, dispatch=False)
    assert run_lease_acquire(run.pk, owner="worker-a")
    store = DatabaseRunStore(owner="worker-a")

    _complete(store, run, "research", {"notes": "a", "findings": "f"}, "one")
    _complete(store, run, "analysis", {"notes": "b"}, "two")

    run.refresh_from_db()
    assert run.variables["notes"] == ["a", "b"]
    assert run.variables["findings"] == "f"
    assert list(RunEvent.objects.filter(run=run).values_list("seq", flat=True)) == [1, 2]


def test_the_control_board_reads_every_held_run_at_once(leased: Run) -> None:
    async def watch() -> tuple[bool, bool]:
        board = ControlBoard(owner="worker-a", interval=0.01)
        store = DatabaseRunStore(owner="worker-a", board=board)
        board.hold(str(leased.pk))
        for _ in range(500):
            if board.seen(str(leased.pk)) is not None:
                break
            await asyncio.sleep(0.01)
        before = (await store.control(str(leased.pk))).cancel_requested
        await asyncio.to_thread(
            lambda: Run.objects.filter(pk=leased.pk).update(cancel_requested=True)
        )
        for _ in range(500):
            if (await store.control(str(leased.pk))).cancel_requested:
                break
            await asyncio.sleep(0.01)
        after = (await store.control(str(leased.pk))).cancel_requested
        board.release(str(leased.pk))
        return before, after

    assert asyncio.run(watch()) == (False, True)


def research_call(run: Run, *, deployment_id: str) -> Any:
    """The ledger start of the research step's first model call."""
    from agents.llm.ledger import LedgerStart

    return LedgerStart(
        call_id=str(uuid.uuid4()),
        deployment_id=deployment_id,
        provider_kind="demo",
        model="demo",
        attempt=1,
        prompt_tokens_estimate=3,
        metadata={
            "workspace_id": str(run.workspace_id),
            "run_id": str(run.pk),
            "step_key": "research",
        },
        started_at=timezone.now(),
    )


def test_an_agent_steps_start_is_written_with_its_first_ledger_row(leased: Run) -> None:
    from agents.ledger import DatabaseLedger
    from agents.models import Provider

    provider = Provider.objects.filter(workspace_id=leased.workspace_id).first()
    assert provider is not None
    store = DatabaseRunStore(owner="worker-a")
    run_id = str(leased.pk)

    async def start_then_call() -> tuple[bool, bool]:
        await store.load(run_id)
        await store.step_started(
            run_id, key="research", node_id="research", node_type="agent", attempt=1, input=None
        )
        before = await asyncio.to_thread(
            lambda: Step.objects.filter(run=leased, key="research").exists()
        )
        await DatabaseLedger().call_started(
            research_call(leased, deployment_id=f"{provider.pk}:demo")
        )
        after = await asyncio.to_thread(
            lambda: Step.objects.filter(run=leased, key="research", status="running").exists()
        )
        return before, after

    # Not written on its own; written, still running, with the row made before the call.
    assert asyncio.run(start_then_call()) == (False, True)
    assert LedgerEntry.objects.filter(run_id=leased.pk, status="pending").count() == 1


def test_an_agent_step_that_fails_before_any_call_is_recorded_as_failed(leased: Run) -> None:
    store = DatabaseRunStore(owner="worker-a")
    run_id = str(leased.pk)

    async def start_then_fail() -> None:
        await store.load(run_id)
        await store.step_started(
            run_id, key="research", node_id="research", node_type="agent", attempt=1, input=None
        )
        await store.step_failed(run_id, key="research", attempt=1, error="no route")

    asyncio.run(start_then_fail())

    step = Step.objects.get(run=leased, key="research")
    assert (step.status, step.error, step.node_type) == ("failed", "no route", "agent")


def test_a_start_whose_ledger_row_failed_is_written_by_the_steps_failure(leased: Run) -> None:
    from agents.ledger import DatabaseLedger

    store = DatabaseRunStore(owner="worker-a")
    run_id = str(leased.pk)

    async def start_call_fail() -> None:
        await store.load(run_id)
        await store.step_started(
            run_id, key="research", node_id="research", node_type="agent", attempt=1, input=None
        )
        with pytest.raises(Exception):  # noqa: B017 - the database's own error class
            await DatabaseLedger().call_started(
                research_call(leased, deployment_id=f"{uuid.uuid4()}:demo")  # no such provider
            )
        await store.step_failed(run_id, key="research", attempt=1, error="ledger down")

    asyncio.run(start_call_fail())

    assert not LedgerEntry.objects.filter(run_id=leased.pk).exists()
    step = Step.objects.get(run=leased, key="research")
    assert (step.status, step.error) == ("failed", "ledger down")


def _finished_outcome() -> Any:
    from agents.llm.ledger import LedgerOutcome
    from agents.llm.types import Usage

    return LedgerOutcome(
        status="completed",
        usage=Usage(30, 12, 42),
        cost=Decimal("0.0005"),
        cost_estimated=False,
        latency_ms=12.0,
        error_kind=None,
        http_status=200,
        price_source="configured",
    )


def _call_then(leased: Run, then: Any) -> Any:
    """Loads the run, starts the research step, makes its call's ledger start and end, then
    awaits `then(store, run_id, call_id)`."""
    from agents.ledger import DatabaseLedger
    from agents.models import Provider

    provider = Provider.objects.filter(workspace_id=leased.workspace_id).first()
    assert provider is not None
    store = DatabaseRunStore(owner="worker-a")
    run_id = str(leased.pk)

    async def go() -> Any:
        await store.load(run_id)
        await store.step_started(
            run_id, key="research", node_id="research", node_type="agent", attempt=1, input=None
        )
        ledger = DatabaseLedger()
        entry = research_call(leased, deployment_id=f"{provider.pk}:demo")
        await ledger.call_started(entry)
        await ledger.call_finished(entry.call_id, _finished_outcome())
        return await then(store, run_id, entry.call_id)

    return asyncio.run(go())


def test_a_finished_call_is_completed_with_its_steps_completion(leased: Run) -> None:
    from agents.models import LedgerRollup
    from agents.rollups import rollups_check

    async def complete(store: DatabaseRunStore, run_id: str, call_id: str) -> str:
        pending = await asyncio.to_thread(lambda: LedgerEntry.objects.get(call_id=call_id).status)
        record = StepRecord("research", "research", "facts", None, {"findings": "facts"})
        assert await store.step_completed(run_id, record, [EventDraft("message", {}, "research")])
        return pending

    # Still pending until the step's write, which completes it (and counts it) first.
    assert _call_then(leased, complete) == "pending"

    row = LedgerEntry.objects.get(run_id=leased.pk)
    assert (row.status, row.prompt_tokens, row.completion_tokens) == ("completed", 30, 12)
    assert LedgerRollup.objects.get(workspace_id=leased.workspace_id).calls == 1
    assert rollups_check() == []
    leased.refresh_from_db()
    assert (leased.prompt_tokens, leased.completion_tokens, leased.model_calls) == (30, 12, 1)
    assert leased.cost == Decimal("0.0005")


def test_a_finished_call_whose_step_goes_on_is_completed_by_itself(leased: Run) -> None:
    from agents.rollups import rollups_check

    async def wait(store: DatabaseRunStore, run_id: str, call_id: str) -> str:
        # The step goes on (a tool, say): the call is completed without it, soon.
        deadline = asyncio.get_running_loop().time() + 10
        while asyncio.get_running_loop().time() < deadline:
            status = await asyncio.to_thread(
                lambda: LedgerEntry.objects.get(call_id=call_id).status
            )
            if status != "pending":
                return status
            await asyncio.sleep(0.02)  # another thread's write: polled, bounded
        return "pending"

    assert _call_then(leased, wait) == "completed"
    assert rollups_check() == []


def test_a_finished_call_is_completed_even_when_its_step_lost_the_lease(leased: Run) -> None:
    from agents.rollups import rollups_check

    async def lose_then_complete(store: DatabaseRunStore, run_id: str, call_id: str) -> None:
        def take_over() -> None:
            Run.objects.filter(pk=leased.pk).update(
                lease_until=timezone.now() - timedelta(seconds=1)
            )
            assert run_lease_acquire(leased.pk, owner="worker-b")

        await asyncio.to_thread(take_over)
        record = StepRecord("research", "research", "stale", None, {"findings": "stale"})
        with pytest.raises(LeaseLost):
            await store.step_completed(run_id, record, [])

    _call_then(leased, lose_then_complete)

    assert LedgerEntry.objects.get(run_id=leased.pk).status == "completed"
    assert Step.objects.get(run=leased, key="research").status == "running"
    assert rollups_check() == []


def test_a_steps_variables_replace_their_values_whole(leased: Run) -> None:
    store = DatabaseRunStore(owner="worker-a")
    assert _complete(store, leased, "research", {"notes": {"a": 1, "keep": [1, 2]}, "n": 1})

    replaced = {"notes": {"b": 2}, "n": None, "dotted.name": "x", "quote'd": "y"}
    assert _complete(store, leased, "analysis", replaced)

    leased.refresh_from_db()
    assert {name: leased.variables[name] for name in replaced} == replaced
    assert Step.objects.get(run=leased, key="analysis").variables == replaced


def test_a_finished_call_the_reaper_closed_meanwhile_takes_its_answer(leased: Run) -> None:
    from agents.models import LedgerRollup
    from agents.rollups import ledger_close_pending, rollups_check

    async def close_then_complete(store: DatabaseRunStore, run_id: str, call_id: str) -> None:
        closed = await asyncio.to_thread(
            ledger_close_pending,
            call_id,
            {"status": "unknown", "prompt_tokens": 3, "error_kind": "worker_lost"},
        )
        assert closed == 1
        record = StepRecord("research", "research", "facts", None, {"findings": "facts"})
        assert await store.step_completed(run_id, record, [])

    _call_then(leased, close_then_complete)

    row = LedgerEntry.objects.get(run_id=leased.pk)
    assert (row.status, row.prompt_tokens, row.error_kind) == ("completed", 30, "")
    assert LedgerRollup.objects.get(error_kind="", calls=1).prompt_tokens == 30
    assert LedgerRollup.objects.filter(error_kind="worker_lost", calls=0).exists()
    assert rollups_check() == []
    leased.refresh_from_db()
    assert (leased.prompt_tokens, leased.model_calls) == (30, 1)
