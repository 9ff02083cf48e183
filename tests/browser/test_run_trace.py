"""The trace of a run and two runs compared, in Chromium: a real daphne, a real Celery worker,
the fake LLM server."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import screenshot
from tests.support.processes import ServerProcess
from workflows.models import Run

pytestmark = [pytest.mark.browser, pytest.mark.services, pytest.mark.slow]


@pytest.fixture
def csp_refusals(page: Any) -> list[str]:
    """What the Content-Security-Policy refused on the pages visited (nothing, we hope)."""
    found: list[str] = []
    page.on(
        "console",
        lambda message: (
            found.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    return found


@pytest.fixture
def lab(logged_in: Any, demo_model: Any, worker: ServerProcess) -> Any:
    from a2a_site.accounts.models import Workspace
    from tests.agents.factories import make_provider

    demo_model.set_script(None)
    demo_model.reset()
    make_provider(Workspace.objects.get(name="Lab"))
    return logged_in


def _launch(page: Any, topic: str) -> None:
    from workflows.models import Workflow

    existing = Workflow.objects.filter(name="Research pipeline").first()
    if existing is None:
        page.goto("/workflows/")
        page.locator(".template-card", has_text="Research pipeline").get_by_role("button").click()
    else:
        page.goto(f"/workflows/{existing.pk}/")
    page.get_by_test_id("run-form").wait_for()
    page.get_by_label("Topic").fill(topic)
    page.get_by_role("button", name="Run version 1").click()
    page.get_by_test_id("run-summary").wait_for()


def test_open_a_trace_and_inspect_a_call(
    lab: Any, demo_model: Any, csp_refusals: list[str]
) -> None:
    page = lab
    # Slow enough answers that the trace is watched while the run goes on.
    demo_model.set_script({"rules": [{"reply": "Noted, with care.", "delay_ms": 1500}]})
    _launch(page, "green roofs")
    page.get_by_test_id("open-trace").click()
    waterfall = page.get_by_test_id("waterfall")
    waterfall.wait_for()
    # Live: spans appear while the run executes, without a reload.
    page.locator('.span-row.span-step[data-span="step:research"]').wait_for(timeout=30_000)
    assert page.locator("#trace-live[data-live=true]").count() == 1
    screenshot(page, "60-trace-live")
    page.locator('.span-row.span-step[data-span="step:writing"].status-ok').wait_for(timeout=60_000)
    page.locator("#trace-live:not([data-live])").wait_for(timeout=10_000)
    assert Run.objects.get().status == "succeeded"
    assert page.locator(".span-row.span-step").count() == 3
    assert page.locator(".span-row.span-call").count() == 3

    # Select the analyst's call: the inspector shows what it sent and received.
    analysis_call = page.locator(".span-row.span-call").nth(1).locator(".span-link")
    analysis_call.click()
    inspector = page.get_by_test_id("inspector")
    inspector.get_by_test_id("sent").wait_for()
    sent = inspector.get_by_test_id("sent").inner_text()
    assert "system" in sent and "Analyse these findings" in sent
    assert "Noted, with care." in inspector.get_by_test_id("received").inner_text()
    assert "span=call" in page.url  # the selection is in the address, to share
    assert page.locator('.span-row.span-call[aria-current="true"]').count() == 1

    # The keyboard walks the waterfall: down to the next span, Enter opens it.
    analysis_call.focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    page.locator('#trace-inspector[data-span^="step:writing"]').wait_for()
    inspector.get_by_test_id("step-output").wait_for()
    assert page.locator("table[data-testid=node-totals] tbody tr").count() == 3
    screenshot(page, "61-trace-inspected")
    screenshot(page, "61-trace-inspected-dark", theme="dark")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "62-trace-phone", theme="light")
    assert csp_refusals == []  # nothing refused by the Content-Security-Policy


def test_compare_two_runs(lab: Any, demo_model: Any, csp_refusals: list[str]) -> None:
    page = lab
    # The second run's every call fails: a failed run compared with one that succeeded.
    demo_model.set_script({"rules": [{"last_message_contains": "wasps", "fault": "500"}]})
    _launch(page, "bees")
    page.locator('#run-state .badge[data-status="succeeded"]').wait_for(timeout=60_000)
    first = Run.objects.get()
    _launch(page, "wasps")
    page.locator('#run-state .badge[data-status="failed"]').wait_for(timeout=60_000)
    second = Run.objects.exclude(pk=first.pk).get()

    page.get_by_test_id("open-trace").click()
    page.locator(".span-row.span-attempt.status-failed").first.wait_for()
    screenshot(page, "63-trace-failed")

    page.goto(f"/runs/{second.pk}/")
    page.get_by_role("link", name="Compare with…").click()
    page.get_by_test_id("compare-candidates").get_by_role("link").first.click()
    page.get_by_test_id("compare-runs").wait_for()
    assert f"a={second.pk}" in page.url and f"b={first.pk}" in page.url
    inputs = page.get_by_test_id("compare-inputs").inner_text()
    assert "wasps" in inputs and "bees" in inputs and "differs" in inputs
    nodes = page.get_by_test_id("compare-nodes").inner_text()
    assert "Research" in nodes
    steps = page.get_by_test_id("compare-steps").inner_text()
    assert "not in this run" in steps  # the failed run never reached the writer
    screenshot(page, "64-compare")
    screenshot(page, "64-compare-dark", theme="dark")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "65-compare-phone", theme="light")

    # From the history list: tick two runs, then "Compare two selected".
    page.goto("/runs/")
    page.get_by_label(f"Select run {str(first.pk)[:8]}").check()
    page.get_by_label(f"Select run {str(second.pk)[:8]}").check()
    page.get_by_test_id("bulk-compare").click()
    page.get_by_test_id("compare-runs").wait_for()
    assert "csrfmiddlewaretoken" not in page.url and "a=" in page.url and "b=" in page.url

    # A run that never got to call anything says so on its trace.
    page.set_viewport_size({"width": 1280, "height": 820})
    empty = Run.objects.create(
        workspace=first.workspace,
        workflow=first.workflow,
        version=first.version,
        status="failed",
        reason="The workflow graph cannot run: a node's agent was deleted.",
    )
    page.goto(f"/runs/{empty.pk}/trace/")
    page.get_by_test_id("trace-empty").wait_for()
    screenshot(page, "66-trace-no-calls")
    assert csp_refusals == []
