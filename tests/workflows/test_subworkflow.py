"""A sub-workflow runs as a child run of its own, and its output comes back to the parent."""

from __future__ import annotations

import pytest

from tests.conftest import Personas
from tests.workflows.conftest import finished
from workflows.graph.examples import edge, graph, node, text_variable
from workflows.models import Run, RunStatus
from workflows.services.runs import run_start
from workflows.services.workflows import workflow_create, workflow_publish

pytestmark = pytest.mark.django_db(transaction=True)


def _parent(personas: Personas, child_id: str) -> object:
    parent_graph = graph(
        nodes=[
            node("start", "start", 0, 0, input_mapping={"topic": "topic"}),
            node(
                "delegate",
                "subworkflow",
                200,
                0,
                workflow_id=child_id,
                input_mapping={"topic": "{{ topic }}"},
            ),
            node("end", "end", 400, 0),
        ],
        edges=[edge("start", "delegate"), edge("delegate", "end")],
        variables=[text_variable("topic")],
        output="delegate",
    )
    workflow = workflow_create(
        workspace=personas.workspace, user=personas.owner, name="Delegator", graph=parent_graph
    )
    workflow_publish(workflow=workflow, user=personas.owner)
    return workflow


def test_the_child_runs_and_its_output_is_the_parents(
    personas: Personas, pipeline, executor, llm_server
) -> None:
    parent = run_start(
        workflow=_parent(personas, str(pipeline.pk)), user=personas.owner, inputs={"topic": "moss"}
    )
    parent = finished(parent, timeout=60)
    assert parent.status == RunStatus.SUCCEEDED, parent.reason
    child = Run.objects.get(parent=parent)
    assert child.status == RunStatus.SUCCEEDED
    assert child.depth == 1 and child.parent_step_key == "delegate"
    assert child.inputs == {"topic": "moss"}
    assert parent.output == child.output
    assert len(llm_server.requests) == 3, "the child's three agents, once each"


def test_a_failing_child_fails_the_parent_with_its_reason(
    personas: Personas, pipeline, executor, llm_server
) -> None:
    llm_server.set_script({"rules": [{"fault": "auth"}]})
    parent = finished(
        run_start(
            workflow=_parent(personas, str(pipeline.pk)), user=personas.owner, inputs={"topic": "x"}
        ),
        timeout=60,
    )
    assert parent.status == RunStatus.FAILED
    assert "Sub-workflow" in parent.reason
    assert Run.objects.get(parent=parent).status == RunStatus.FAILED
