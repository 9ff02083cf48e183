"""Limits on the run page, in Chromium: a run launched at high priority whose answer a token
budget cut short (the text kept, marked, the reason given), and a run waiting in line for a
model at its rate limit (where it stands, what it waits for)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import screenshot
from tests.support.processes import ServerProcess
from workflows.models import Run

pytestmark = [pytest.mark.browser, pytest.mark.services, pytest.mark.slow]


def _one_step_workflow(agent_id: str, **settings: Any) -> Any:
    from a2a_site.accounts.models import User, Workspace
    from workflows.graph import examples
    from workflows.services.workflows import workflow_create, workflow_publish

    graph = examples.graph(
        nodes=[
            examples.node("start", "start", 0, 0, input_mapping={"topic": "topic"}),
            examples.agent("answer", agent_id, 250, "Answer: {{ topic }}", "answer"),
            examples.node("end", "end", 500, 0, output="answer"),
        ],
        edges=[examples.edge("start", "answer"), examples.edge("answer", "end")],
        variables=[examples.text_variable("topic"), examples.text_variable("answer")],
        output="answer",
    )
    graph["settings"] = settings
    owner = User.objects.get(username="olivia")
    workflow = workflow_create(
        workspace=Workspace.objects.get(name="Lab"), user=owner, name="Briefing", graph=graph
    )
    workflow_publish(workflow=workflow, user=owner)
    return workflow


def test_a_cut_answer_and_a_wait_for_capacity_are_shown(
    logged_in: Any, demo_model: Any, worker: ServerProcess
) -> None:
    from a2a_site.accounts.models import Workspace
    from tests.agents.factories import make_agent, make_provider

    page = logged_in
    demo_model.reset()
    demo_model.set_script(
        {"rules": [{"reply": "abcdefghi " * 200, "chunks": 50, "ignore_max_tokens": True}]}
    )
    lab = Workspace.objects.get(name="Lab")
    # One request a minute: the second run must wait for the first one's.
    provider = make_provider(lab, name="Slow lane", rpm_limit=1)
    agent = make_agent(lab, name="Briefer", provider=provider)
    workflow = _one_step_workflow(str(agent.pk), token_budget=150)

    page.goto(f"/workflows/{workflow.pk}/")
    page.get_by_label("Topic").fill("tides")
    page.get_by_label("Priority").select_option("high")
    page.get_by_role("button", name="Run version 1").click()
    page.locator('#run-state .badge[data-status="failed"]').wait_for(timeout=60_000)
    assert (
        "The run's token budget of 150 was reached"
        in page.get_by_test_id("run-reason").inner_text()
    )
    cut = page.locator("#timeline li[data-kind=message] .tl-warning")
    cut.wait_for()
    assert "cut short" in cut.inner_text()
    assert page.get_by_test_id("run-priority").inner_text() == "high"
    screenshot(page, "60-run-cut-by-token-budget")

    page.goto(f"/workflows/{workflow.pk}/")
    page.get_by_label("Topic").fill("currents")
    page.get_by_role("button", name="Run version 1").click()
    banner = page.get_by_test_id("capacity-wait")
    banner.wait_for(timeout=30_000)
    text = banner.inner_text()
    assert "Waiting for capacity on Slow lane" in text and "position 1" in text
    page.locator("#timeline li", has_text="Waiting for capacity on Slow lane").first.wait_for()
    # The node list says it too, rather than "not reached yet".
    page.locator("#run-nodes li", has_text="waiting for capacity").wait_for()
    screenshot(page, "61-run-waiting-for-capacity")

    waiting = Run.objects.filter(status="running").get()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel").click()
    page.locator('#run-state .badge[data-status="cancelled"]').wait_for(timeout=30_000)
    waiting.refresh_from_db()
    assert waiting.status == "cancelled"
