"""Budgets in Chromium: one made on its page stops a run, whose page says why."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import screenshot
from tests.support.processes import ServerProcess
from workflows.models import Run

pytestmark = [pytest.mark.browser, pytest.mark.services, pytest.mark.slow]


@pytest.fixture
def priced_lab(logged_in: Any, demo_model: Any, worker: ServerProcess, settings: Any) -> Any:
    """Olivia's “Lab” with a three-agent workflow on a gateway serving gpt-4o-mini (priced)."""
    from a2a_site.accounts.models import User, Workspace
    from tests.agents.factories import make_agent, make_provider
    from workflows.graph import examples
    from workflows.services.workflows import workflow_create, workflow_publish

    demo_model.set_script(None)
    demo_model.reset()
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]  # as the live server and worker have it
    workspace = Workspace.objects.get(name="Lab")
    gateway = make_provider(
        workspace, kind="openai_compatible", name="Gateway", base_url=f"{demo_model.url}/v1"
    )
    ids = [
        str(
            make_agent(
                workspace,
                name=name,
                provider=gateway,
                model={"provider_id": str(gateway.pk), "model": "gpt-4o-mini"},
            ).pk
        )
        for name in ("Researcher", "Analyst", "Writer")
    ]
    owner = User.objects.get(username="olivia")
    workflow = workflow_create(
        workspace=workspace,
        user=owner,
        name="Priced pipeline",
        graph=examples.research_pipeline(*ids),
    )
    workflow_publish(workflow=workflow, user=owner)
    return logged_in, workflow


def test_a_hard_budget_stops_a_run_with_its_reason_on_the_run_page(priced_lab: Any) -> None:
    page, workflow = priced_lab
    page.goto("/budgets/")
    page.get_by_test_id("empty-budgets").wait_for()
    screenshot(page, "60-budgets-empty")
    page.get_by_role("link", name="Create your first budget").click()

    # Only the target the chosen scope needs is shown.
    page.get_by_label("Name").fill("Pipeline cap")
    page.get_by_label("Workflow").wait_for(state="hidden")  # once the page's script ran
    page.get_by_label("Covers").select_option("workflow")
    page.get_by_label("Workflow").select_option(label="Priced pipeline")
    assert not page.get_by_label("Agent").is_visible()
    page.get_by_label("Hard limit (USD)").fill("0.000001")
    screenshot(page, "61-budget-form")
    page.get_by_role("button", name="Save budget").click()
    page.get_by_role("heading", name="Pipeline cap").wait_for()

    page.goto(f"/workflows/{workflow.pk}/")
    page.get_by_label("Topic").fill("green roofs")
    page.get_by_role("button", name="Run version 1").click()
    page.locator('#run-state .badge[data-status="failed"]').wait_for(timeout=60_000)
    reason = page.get_by_test_id("run-reason").inner_text()
    assert "Budget “Pipeline cap” reached its hard limit of $0.000001" in reason
    screenshot(page, "62-run-stopped-by-budget")
    run = Run.objects.get()
    assert run.status == "failed" and run.steps.filter(status="completed").exists()

    # The budget's page shows it spent; a new launch is refused with the same reason.
    page.goto("/budgets/")
    row = page.get_by_test_id("budget-pipeline-cap")
    assert "hard limit reached" in row.inner_text()
    screenshot(page, "63-budgets")
    screenshot(page, "63-budgets-dark", theme="dark")
    page.goto(f"/workflows/{workflow.pk}/")
    page.get_by_label("Topic").fill("again")
    page.get_by_role("button", name="Run version 1").click()
    page.get_by_text("Not started: Budget “Pipeline cap”").wait_for()
    assert Run.objects.count() == 1

    page.get_by_role("link", name="Budgets").first.click()
    page.get_by_role("link", name="Pipeline cap").click()
    page.get_by_test_id("budget-history").wait_for()
    screenshot(page, "64-budget-detail")
    screenshot(page, "64-budget-detail-dark", theme="dark")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "65-budget-detail-phone", theme="light")
    page.goto("/budgets/")
    screenshot(page, "66-budgets-phone")
