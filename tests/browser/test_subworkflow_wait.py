"""A parent run waiting on its sub-workflow's person step, in Chromium, on a real worker.

The parent's page says what the child asks and links to the child; the answer given there goes
to the child, which finishes and wakes the parent; the parent's totals are the child's calls.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import screenshot
from tests.support.processes import ServerProcess
from workflows.models import Run

pytestmark = [pytest.mark.browser, pytest.mark.services, pytest.mark.slow]

# The run's own status (the sub-run's badge is in the summary too).
STATUS = '#run-state .run-summary-head .badge[data-status="{}"]'


@pytest.fixture
def delegator(logged_in: Any, demo_model: Any, worker: ServerProcess) -> Any:
    from a2a_site.accounts.models import User, Workspace
    from tests.agents.factories import make_agent, make_provider
    from tests.conftest import Personas
    from tests.workflows.test_subworkflow import _asking_child, _delegator

    demo_model.set_script(None)
    demo_model.reset()
    lab = Workspace.objects.get(name="Lab")
    olivia = User.objects.get(username="olivia")
    writer = make_agent(
        lab, name="Writer", provider=make_provider(lab), role="a clear technical writer"
    )
    personas = Personas(olivia, olivia, olivia, olivia, lab, lab)
    child = _asking_child(personas, str(writer.pk))
    return _delegator(personas, child, **{"*": "report"})


def test_the_parent_shows_its_childs_question_and_finishes_once_answered(
    delegator: Any, page: Any, settings: Any
) -> None:
    from a2a_site.accounts.models import User
    from workflows.services.runs import run_start

    settings.EXECUTION_MODE = "celery"
    parent = run_start(
        workflow=delegator, user=User.objects.get(username="olivia"), inputs={"topic": "moss"}
    )
    page.goto(f"/runs/{parent.pk}/")
    page.locator(STATUS.format("waiting")).wait_for(timeout=60_000)
    card = page.get_by_test_id("human-request")
    card.get_by_text("Which angle on moss?").wait_for()
    asked_in = page.get_by_test_id("asked-in-subrun")
    assert "Asked inside its sub-workflow Asking child" in asked_in.inner_text()
    child = Run.objects.get(parent=parent)
    assert asked_in.get_by_role("link").get_attribute("href") == f"/runs/{child.pk}/"
    page.locator("#timeline li[data-kind=human_request]").wait_for()
    screenshot(page, "70-parent-waits-on-child")
    screenshot(page, "70-parent-waits-on-child-dark", theme="dark")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "70-parent-waits-on-child-phone", theme="light")
    page.set_viewport_size({"width": 1280, "height": 820})

    page.get_by_label("Your answer").fill("its role in old forests")
    page.get_by_role("button", name="Send answer").click()
    page.locator(STATUS.format("succeeded")).wait_for(timeout=60_000)
    child.refresh_from_db()
    parent.refresh_from_db()
    assert child.answers == {"ask": "its role in old forests"}
    assert parent.output == child.output and parent.model_calls == child.model_calls == 1
    calls = page.get_by_test_id("run-summary").locator('dt:has-text("Model calls") + dd')
    calls.get_by_text("1", exact=True).wait_for()
    screenshot(page, "71-parent-after-child-answered")
