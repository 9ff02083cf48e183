"""Forking a run in Chromium: from a finished step, with an edited variable, on a real worker."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.browser.conftest import screenshot
from tests.support.processes import ServerProcess
from workflows.models import Run, Step

pytestmark = [pytest.mark.browser, pytest.mark.services, pytest.mark.slow]


@pytest.fixture
def lab(logged_in: Any, demo_model: Any, worker: ServerProcess) -> Any:
    from a2a_site.accounts.models import Workspace
    from tests.agents.factories import make_provider

    demo_model.set_script(None)
    demo_model.reset()
    make_provider(Workspace.objects.get(name="Lab"))
    return logged_in


def test_a_fork_with_an_edited_variable_reuses_the_steps_before_it(
    lab: Any, demo_model: Any
) -> None:
    page = lab
    page.goto("/workflows/")
    page.locator(".template-card", has_text="Research pipeline").get_by_role("button").click()
    page.get_by_label("Topic").fill("green roofs")
    page.get_by_role("button", name="Run version 1").click()
    page.locator('#run-state .badge[data-status="succeeded"]').wait_for(timeout=60_000)
    parent = Run.objects.get()
    # The researcher and the analyst each call their tools, then answer: two requests each.
    assert len(demo_model.requests) == 5

    page.locator('#run-steps [data-step-key="analysis"] [data-testid="fork-link"]').wait_for()
    screenshot(page, "60-run-steps")
    page.get_by_role("link", name="Run again from here: “Analysis”").click()
    page.get_by_role("heading", name="Run again from “Analysis”").wait_for()
    reused = page.get_by_test_id("fork-reused").inner_text()
    assert "research" in reused
    findings = page.get_by_label("findings", exact=True)
    assert "green roofs" in findings.input_value().lower()
    findings.fill("Green roofs cool cities by four degrees.")
    screenshot(page, "61-fork-form")
    screenshot(page, "61-fork-form-dark", theme="dark")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "61-fork-form-phone")
    page.set_viewport_size({"width": 1280, "height": 820})
    page.evaluate("document.documentElement.dataset.theme = 'light'")
    page.get_by_role("button", name="Run again from here").click()

    page.get_by_test_id("forked-from").wait_for()
    page.locator('#run-state .badge[data-status="succeeded"]').wait_for(timeout=60_000)
    fork = Run.objects.exclude(pk=parent.pk).get()
    assert fork.forked_from_id == parent.pk and fork.fork_step_key == "analysis"
    # The fake server's count proves it: research was not asked again, only analysis and writing.
    assert len(demo_model.requests) == 8
    asked = json.dumps(demo_model.requests[5]["body"], ensure_ascii=False)
    assert "Green roofs cool cities by four degrees." in asked
    assert Step.objects.get(run=fork, key="research").reused
    # The reused step's message is in the fork's transcript too, and the note says why.
    page.locator("#timeline li[data-kind=message]").nth(2).wait_for()
    first = page.locator("#timeline li[data-kind=message]").first.inner_text()
    assert f"reused from run {str(parent.pk)[:8]}" in first
    assert "reused" in page.locator("#timeline li[data-kind=log]").first.inner_text()
    assert "Forked from run" in page.get_by_test_id("forked-from").inner_text()
    # The summary and node list catch up when the run state refreshes, just after the status.
    page.locator(".node-state.state-done").nth(4).wait_for()
    calls = page.get_by_test_id("run-summary").locator('dt:has-text("Model calls") + dd')
    assert calls.inner_text() == "3", "the fork's own calls only"
    screenshot(page, "62-fork-run")
    screenshot(page, "62-fork-run-dark", theme="dark")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "62-fork-run-phone", theme="light")
    page.set_viewport_size({"width": 1280, "height": 820})
    page.get_by_test_id("compare-with-parent").click()
    page.wait_for_url(f"**/runs/compare/?a={parent.pk}&b={fork.pk}")
    page.go_back()
    page.get_by_test_id("forked-from").get_by_role("link", name=f"run {str(parent.pk)[:8]}").click()
    page.get_by_test_id("run-forks").wait_for()
    assert str(fork.pk)[:8] in page.get_by_test_id("run-forks").inner_text()
