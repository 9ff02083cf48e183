"""What a person sees when the server refuses what the browser sent: the builder says why the
draft was not saved (and does not retry for ever), and a form too large gets a page that says so."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.services, pytest.mark.slow]


@pytest.fixture
def workflow(logged_in: Any) -> Any:
    from a2a_site.accounts.models import Workspace
    from workflows.services.workflows import BLANK_GRAPH, workflow_create, workflow_publish

    workspace = Workspace.objects.get(name="Lab")
    graph = {**BLANK_GRAPH, "edges": [{"id": "e1", "source": "start", "target": "end"}]}
    workflow = workflow_create(workspace=workspace, user=None, name="Refusals", graph=graph)
    workflow_publish(workflow=workflow, user=None)
    return workflow


def test_a_draft_nested_too_deep_is_not_saved_and_the_builder_says_why(
    logged_in: Any, workflow: Any
) -> None:
    page = logged_in
    page.goto(f"/workflows/{workflow.pk}/builder/")
    page.locator('workflow-builder[data-ready="true"]').wait_for()
    # What the island would send if a node's config nested 100 levels deep.
    page.evaluate(
        """() => {
        let deep = {};
        for (let i = 0; i < 100; i++) deep = {inner: deep};
        const graph = document.getElementById('builder').getGraph();
        graph.nodes[0].config = {...(graph.nodes[0].config || {}), deep};
        document.getElementById('graph-input').value = JSON.stringify(graph);
        window.htmx.trigger(document.getElementById('draft-form'), 'wf:autosave');
    }"""
    )
    status = page.locator('#save-status[data-state="error"]')
    status.wait_for()
    assert "more than 64 levels deep" in status.inner_text()
    page.locator("#checklist").get_by_test_id("refusal").wait_for()
    screenshot(page, "80-builder-draft-refused")
    workflow.refresh_from_db()
    assert "deep" not in workflow.draft["nodes"][0].get("config", {})


def test_a_form_over_the_size_limit_gets_a_page_that_says_so(logged_in: Any, workflow: Any) -> None:
    page = logged_in
    page.goto(f"/workflows/{workflow.pk}/")
    page.evaluate(
        """url => {
        const form = document.createElement('form');
        form.method = 'post';
        form.action = url;
        const token = document.querySelector('[name=csrfmiddlewaretoken]');
        const task = document.createElement('textarea');
        task.name = 'task';
        task.value = 'x'.repeat(3000000);
        form.append(token.cloneNode(), task);
        document.body.append(form);
        form.submit();
    }""",
        f"/workflows/{workflow.pk}/run/",
    )
    page.get_by_role("heading", name="Too much at once").wait_for()
    assert "larger than 2.6 MB" in page.get_by_test_id("refusal").inner_text()
    screenshot(page, "81-request-too-large")
    assert not workflow.runs.exists()
