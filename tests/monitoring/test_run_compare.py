"""Two runs compared: inputs, versions, each step's output, and differences per node."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.conftest import Personas
from tests.workflows.conftest import finished
from workflows.models import Run, RunStatus, Workflow
from workflows.services.workflows import EMPTY_GRAPH, workflow_create, workflow_publish

pytestmark = pytest.mark.django_db(transaction=True)


def _launch(client, workflow: Workflow, topic: str) -> Run:
    client.post(reverse("workflow_run", args=[workflow.pk]), {"topic": topic})
    return finished(Run.objects.filter(workflow=workflow).order_by("-created_at").first())


def test_two_runs_of_a_workflow_side_by_side(
    personas: Personas, pipeline: Workflow, client_for, executor, llm_server
) -> None:
    editor = client_for(personas.editor)
    first = _launch(editor, pipeline, "bees")
    # The second run on a new version whose writer got new instructions.
    graph = pipeline.versions.get().graph
    for node in graph["nodes"]:
        if node["id"] == "writing":
            node["config"]["input_template"] = "Write a short report from:\n{{ analysis }}"
    pipeline.draft = graph
    pipeline.save()
    workflow_publish(workflow=pipeline, user=personas.owner, note="shorter")
    second = _launch(editor, pipeline, "wasps")
    assert first.status == second.status == RunStatus.SUCCEEDED

    page = client_for(personas.viewer).get(
        reverse("run_compare"), {"a": str(first.pk), "b": str(second.pk)}
    )
    assert page.status_code == 200
    html = page.content.decode()
    assert "bees" in html and "wasps" in html and "differs" in html  # the inputs
    assert 'data-testid="compare-diff"' in html and "Writing" in html  # v1 → v2
    assert 'data-testid="compare-nodes"' in html and "Research" in html
    assert 'data-testid="compare-steps"' in html
    # The demo model is free: costs compare, and say they are the same.
    assert "cannot be compared" not in html


def test_runs_of_two_workflows_say_what_cannot_be_compared(
    personas: Personas, pipeline: Workflow, client_for
) -> None:
    other = workflow_create(
        workspace=personas.workspace, user=personas.owner, name="Other", graph=EMPTY_GRAPH
    )
    workflow_publish(workflow=other, user=personas.owner)
    runs = [
        Run.objects.create(
            workspace=personas.workspace,
            workflow=workflow,
            version=workflow.versions.get(),
            status=RunStatus.SUCCEEDED,
            inputs={"topic": "bees"},
        )
        for workflow in (pipeline, other)
    ]
    html = (
        client_for(personas.viewer)
        .get(reverse("run_compare"), {"a": str(runs[0].pk), "b": str(runs[1].pk)})
        .content.decode()
    )
    assert "two workflows" in html and "are not" in html
    assert 'data-testid="compare-nodes"' not in html and 'data-testid="compare-inputs"' in html


def test_compare_asks_for_what_is_missing_and_refuses_what_is_malformed(
    personas: Personas, pipeline: Workflow, client_for
) -> None:
    run = Run.objects.create(
        workspace=personas.workspace, workflow=pipeline, version=pipeline.versions.get()
    )
    other = Run.objects.create(
        workspace=personas.workspace, workflow=pipeline, version=pipeline.versions.get()
    )
    client = client_for(personas.viewer)
    url = reverse("run_compare")
    pick = client.get(url, {"a": str(run.pk)})
    assert pick.status_code == 200 and f"b={other.pk}" in pick.content.decode()
    assert client.get(url).status_code == 400
    assert client.get(url, {"a": "not-a-uuid"}).status_code == 400
    assert client.get(url, {"a": str(run.pk), "b": "../etc"}).status_code == 400
    # A list's "select two, then Compare" sends them as run=…&run=….
    two = client.get(f"{url}?run={run.pk}&run={other.pk}&csrfmiddlewaretoken=x&next=/runs/")
    assert two.status_code == 302 and two["Location"] == f"{url}?a={run.pk}&b={other.pk}"
    assert client.get(url, {"run": str(run.pk)}).status_code == 400
    # Another workspace's run is not found, whichever side it is on.
    foreign = client_for(personas.outsider).get(url, {"a": str(run.pk), "b": str(other.pk)})
    assert foreign.status_code == 404
