"""A consensus node drawn in the builder, run by a real worker, its decision log on the run page."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import screenshot
from tests.browser.test_builder import (
    connect,
    drag_to_canvas,
    graph_of,
    new_nodes,
    node,
    wait_saved,
)
from tests.support.processes import ServerProcess
from tests.workflows.test_consensus_run import COUNCIL_SCRIPT
from workflows.models import Run, Workflow

pytestmark = [pytest.mark.browser, pytest.mark.services, pytest.mark.slow]


@pytest.fixture
def council(logged_in: Any, demo_model: Any, settings: Any) -> Any:
    """Olivia's “Lab” with a planner and three members on the offline demo model, scripted so
    the skeptic objects to the first plan and accepts the revision."""
    from a2a_site.accounts.models import Workspace
    from tests.agents.factories import make_agent, make_provider

    settings.EXECUTION_MODE = "celery"  # run_start below dispatches to the worker
    demo_model.reset()
    demo_model.set_script(COUNCIL_SCRIPT)
    workspace = Workspace.objects.get(name="Lab")
    provider = make_provider(workspace)
    logged_in.agents = {
        name: str(make_agent(workspace, name=name, provider=provider, role=role).pk)
        for name, role in (
            ("Planner", "a planner"),
            ("Skeptic", "a skeptic"),
            ("Ally", "a supportive colleague"),
            ("Steward", "a budget steward"),
        )
    }
    yield logged_in
    demo_model.set_script(None)


def test_draw_a_consensus_node_and_read_its_decision_log(
    council: Any, worker: ServerProcess
) -> None:
    from a2a_site.accounts.models import User
    from workflows.services.runs import run_start

    page = council
    page.goto("/workflows/")
    page.get_by_role("link", name="Draw a new workflow").click()
    page.get_by_label("Name").fill("Council")
    page.get_by_role("button", name="Create and open the builder").click()
    page.locator('workflow-builder[data-ready="true"]').wait_for()

    page.locator(".wf-palette__search").fill("consensus")
    before = {n["id"] for n in graph_of(page)["nodes"]}
    drag_to_canvas(page, page.get_by_test_id("palette-consensus"), 0.4, 0.45)
    (agree,) = new_nodes(page, before)
    node(page, agree).locator(".wf-node__summary", has_text="Choose a proposer").wait_for()

    node(page, agree).click()
    panel = page.locator("#node-panel")
    page.locator(f'#node-panel form[data-node-id="{agree}"]').wait_for()
    panel.get_by_label("Proposer", exact=True).select_option(label="Planner")
    panel.locator(".node-form-status", has_text="Not applied yet").wait_for()  # no members yet
    # One tick at a time, as a person does: each is applied before the next.
    for count, member in enumerate(("Skeptic", "Ally", "Steward"), start=1):
        panel.get_by_label(member, exact=True).check()
        page.wait_for_function(
            """([id, count]) => (document.getElementById('builder').getGraph().nodes
                .find((n) => n.id === id).config.members || []).length === count""",
            arg=[agree, count],
        )
    panel.get_by_label("Quorum", exact=True).select_option("unanimous")
    panel.locator(".node-form-status", has_text="Applied").wait_for()
    node(page, agree).locator(
        ".wf-node__summary", has_text="Planner proposes · 3 members · unanimous · 3 terms"
    ).wait_for()
    connect(page, "start", agree)
    connect(page, agree, "end")
    page.get_by_role("button", name="Auto-layout").click()
    page.get_by_test_id("checklist-ok").wait_for()
    wait_saved(page)
    [config] = [n["config"] for n in graph_of(page)["nodes"] if n["type"] == "consensus"]
    assert config["proposer_agent_id"] == council.agents["Planner"]
    assert config["members"] == [council.agents[name] for name in ("Skeptic", "Ally", "Steward")]
    screenshot(page, "49-builder-consensus")

    page.get_by_role("button", name="Publish…").click()
    page.locator("#publish-dialog").get_by_role("button", name="Publish").click()
    page.locator("#import-report", has_text="Published version 1").wait_for()

    workflow = Workflow.objects.get(name="Council")
    run = run_start(
        workflow=workflow,
        user=User.objects.get(username="olivia"),
        inputs={"task": "How should the team work on Fridays?"},
    )
    page.goto(f"/runs/{run.pk}/")
    log = page.get_by_test_id("run-decisions")
    log.get_by_test_id("decision-verdict").filter(has_text="committed").wait_for(timeout=60_000)
    log.locator('[data-term="2"]').get_by_text("accept", exact=True).first.wait_for()
    assert "Who covers Fridays?" in log.inner_text()
    assert page.locator("#timeline li[data-kind=ballot]").count() == 6
    assert Run.objects.get(pk=run.pk).output.startswith("Plan B")
    screenshot(page, "50-run-decision-log")
    screenshot(page, "50-run-decision-log-dark", theme="dark")

    # The trace nests each proposal, ballot and election under the node, named by its term.
    page.get_by_test_id("open-trace").click()
    page.get_by_text("Consensus · term 2 · proposal").first.wait_for()
    assert page.get_by_text("Consensus · term 1 · member 1").count() >= 1
    screenshot(page, "50-run-decision-trace")
