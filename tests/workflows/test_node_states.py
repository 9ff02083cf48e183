"""What a run's canvas shows of each node: from its steps, and for fan-outs and loops (which
record no step of their own) from what ran after them."""

from __future__ import annotations

from django.utils import timezone

from tests.agents.factories import make_agent
from tests.conftest import Personas
from workflows.graph import examples
from workflows.models import Run, Step
from workflows.selectors import run_node_states
from workflows.services.workflows import workflow_create, workflow_publish


def parallel_run(personas: Personas, status: str) -> Run:
    ids = [str(make_agent(personas.workspace, name=name).pk) for name in ("A", "B", "C")]
    workflow = workflow_create(
        workspace=personas.workspace,
        user=None,
        name="Parallel",
        graph=examples.parallel_research(*ids),
    )
    version = workflow_publish(workflow=workflow, user=None)
    now = timezone.now()
    return Run.objects.create(
        workspace=personas.workspace,
        workflow=workflow,
        version=version,
        status=status,
        started_at=now,
    )


def step(run: Run, node_id: str, status: str) -> None:
    Step.objects.create(
        run=run,
        key=node_id,
        node_id=node_id,
        node_type="agent",
        status=status,
        started_at=timezone.now(),
    )


def states(run: Run) -> dict[str, str]:
    return {node["id"]: node["state"] for node in run_node_states(run)}


def test_a_fan_out_is_done_once_a_branch_ran(personas: Personas) -> None:
    run = parallel_run(personas, "running")
    assert states(run)["fan-out"] == "waiting"
    step(run, "research-a", Step.Status.RUNNING)

    shown = states(run)

    assert shown["start"] == "done"
    assert shown["fan-out"] == "done"
    assert shown["research-a"] == "running"
    assert shown["research-b"] == "waiting"


def test_a_finished_run_marks_what_never_ran_as_skipped(personas: Personas) -> None:
    run = parallel_run(personas, "failed")
    step(run, "research-a", Step.Status.COMPLETED)
    step(run, "research-b", Step.Status.FAILED)

    shown = states(run)

    assert shown["fan-out"] == "done"
    assert shown["research-b"] == "failed"
    assert shown["join"] == "skipped" and shown["analysis"] == "skipped"
    assert shown["end"] == "waiting"
