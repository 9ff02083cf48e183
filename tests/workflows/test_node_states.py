"""What a run's canvas shows of each node: from its steps, and for fan-outs and loops (which
record no step of their own) from what ran after them."""

from __future__ import annotations

from django.utils import timezone

from tests.agents.factories import make_agent
from tests.conftest import Personas
from workflows.graph import examples
from workflows.models import Run, RunEvent, Step
from workflows.selectors import run_capacity_wait, run_node_states
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


def step(run: Run, node_id: str, status: str, *, branch: str = "") -> None:
    Step.objects.create(
        run=run,
        key=node_id,
        node_id=node_id,
        node_type="agent",
        status=status,
        branch=branch,
        started_at=timezone.now(),
    )


def states(run: Run) -> dict[str, str]:
    return {node["id"]: node["state"] for node in run_node_states(run)}


def test_a_fan_out_is_done_once_a_branch_ran(personas: Personas) -> None:
    run = parallel_run(personas, "running")
    assert states(run)["fan-out"] == "pending"
    step(run, "research-a", Step.Status.RUNNING)

    shown = states(run)

    assert shown["start"] == "done"
    assert shown["fan-out"] == "done"
    assert shown["research-a"] == "running"
    assert shown["research-b"] == "pending"


def test_a_finished_run_marks_what_never_ran_as_skipped(personas: Personas) -> None:
    run = parallel_run(personas, "failed")
    step(run, "research-a", Step.Status.COMPLETED)
    step(run, "research-b", Step.Status.FAILED)

    shown = states(run)

    assert shown["fan-out"] == "done"
    assert shown["research-b"] == "failed"
    assert shown["join"] == "skipped" and shown["analysis"] == "skipped"
    assert shown["end"] == "skipped"


def test_nodes_are_listed_in_the_order_the_graph_runs(personas: Personas) -> None:
    run = parallel_run(personas, "running")
    # Drawn in another order than they run: the list still follows the edges.
    graph = run.version.graph
    graph["nodes"] = list(reversed(graph["nodes"]))
    run.version.graph = graph
    run.version.save(update_fields=["graph"])

    order = [node["id"] for node in run_node_states(run)]

    assert order == ["start", "fan-out", "research-a", "research-b", "join", "analysis", "end"]


def test_a_node_waiting_for_a_person_is_not_shown_as_not_reached(personas: Personas) -> None:
    run = parallel_run(personas, "waiting")
    # As a human node asks: no step of its own until answered; the request names the node.
    run.waiting_request = {"step_key": "research-a", "node_id": "research-a", "kind": "input"}
    run.save(update_fields=["waiting_request"])

    nodes = {node["id"]: node for node in run_node_states(run)}

    assert nodes["research-a"]["state"] == "waiting"
    assert nodes["research-a"]["state_label"] == "waiting for a person"
    assert nodes["research-b"]["state"] == "pending"
    assert nodes["research-b"]["state_label"] == "not reached yet"


def test_a_node_whose_call_waits_for_capacity_says_so(personas: Personas) -> None:
    run = parallel_run(personas, "running")
    capacity = {"deployment": "Slow lane", "position": 2}
    RunEvent.objects.create(
        run=run,
        seq=1,
        step_key="research-a",
        kind="log",
        data={"level": "info", "message": "Waiting for capacity", "capacity": capacity},
    )

    nodes = {n["id"]: n for n in run_node_states(run, capacity_wait=run_capacity_wait(run))}

    assert nodes["research-a"]["state"] == "running"
    assert nodes["research-a"]["state_label"] == "waiting for capacity"
    assert nodes["research-b"]["state_label"] == "not reached yet"

    # Once the step moves on (its call got its turn), the label is the step's own again.
    RunEvent.objects.create(run=run, seq=2, step_key="research-a", kind="token", data={})
    nodes = {n["id"]: n for n in run_node_states(run, capacity_wait=run_capacity_wait(run))}
    assert nodes["research-a"]["state_label"] == "not reached yet"


def test_only_the_end_of_the_branch_taken_is_done(personas: Personas) -> None:
    run = parallel_run(personas, "succeeded")
    run.version.graph = {
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "triage", "type": "router"},
            {"id": "billing", "type": "agent"},
            {"id": "support", "type": "agent"},
            {"id": "end-billing", "type": "end"},
            {"id": "end-support", "type": "end"},
        ],
        "edges": [
            {"id": "1", "source": "start", "target": "triage"},
            {"id": "2", "source": "triage", "target": "billing", "source_handle": "billing"},
            {"id": "3", "source": "triage", "target": "support", "source_handle": "support"},
            {"id": "4", "source": "billing", "target": "end-billing"},
            {"id": "5", "source": "support", "target": "end-support"},
        ],
    }
    run.version.save(update_fields=["graph"])
    step(run, "triage", Step.Status.COMPLETED, branch="support")
    step(run, "support", Step.Status.COMPLETED)

    shown = states(run)

    assert shown["end-support"] == "done"
    assert shown["end-billing"] == "skipped"
    assert shown["billing"] == "skipped"
