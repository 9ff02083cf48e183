"""The workflow page's A2A panel in Chromium: an editor turns the agent on and edits its skills,
the card answers at the address the panel shows, and a viewer sees the state but no switch."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.browser.conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.services, pytest.mark.slow]


def test_an_editor_serves_a_workflow_as_an_agent(logged_in: Any, daphne_server: str) -> None:
    from a2a_site.accounts.models import Membership, Role, User
    from tests.conftest import make_user
    from workflows.models import A2AExposure
    from workflows.services.workflows import EMPTY_GRAPH, workflow_create, workflow_publish

    page = logged_in
    owner = User.objects.get(username="olivia")
    workspace = owner.memberships.get().workspace
    workflow = workflow_create(
        workspace=workspace, user=owner, name="Support triage", graph=EMPTY_GRAPH
    )
    page.goto(f"/workflows/{workflow.pk}/")
    panel = page.get_by_test_id("a2a-panel")
    panel.get_by_text("Publish the workflow first").wait_for()
    workflow_publish(workflow=workflow, user=owner)

    page.goto(f"/workflows/{workflow.pk}/")
    assert panel.get_by_test_id("a2a-state").inner_text() == "off"
    card_url = f"{daphne_server}/a2a/{workflow.pk}/.well-known/agent-card.json"
    assert httpx.get(card_url).status_code == 404
    panel.get_by_test_id("a2a-enabled").check()
    panel.get_by_test_id("a2a-skills").fill(
        "triage: Triage a ticket\nSorts it and drafts an answer."
    )
    panel.get_by_role("button", name="Save").click()
    page.get_by_text("Served as an A2A agent.").wait_for()
    assert panel.get_by_test_id("a2a-state").inner_text() == "on"
    assert panel.get_by_test_id("a2a-card-url").inner_text() == card_url
    screenshot(page, "a2a-panel-on")
    card = httpx.get(card_url).json()
    assert [skill["id"] for skill in card["skills"]] == ["triage"]

    # A skill without a description is refused with the reason, and nothing changes.
    panel.get_by_test_id("a2a-skills").fill("Lonely")
    panel.get_by_role("button", name="Save").click()
    panel.get_by_test_id("a2a-error").get_by_text("add a line describing it").wait_for()
    assert panel.get_by_test_id("a2a-skills").input_value() == "Lonely", "what was typed stays"
    screenshot(page, "a2a-panel-refused")
    assert A2AExposure.objects.get(workflow=workflow).skills[0]["id"] == "triage"

    viewer = make_user("vera")
    Membership.objects.create(workspace=workspace, user=viewer, role=Role.VIEWER)
    page.context.clear_cookies()
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("vera")
    page.get_by_label("Password").fill("correct horse")
    page.get_by_role("button", name="Log in").click()
    page.goto(f"/workflows/{workflow.pk}/")
    assert page.get_by_test_id("a2a-state").inner_text() == "on"
    assert page.get_by_test_id("a2a-form").count() == 0
    screenshot(page, "a2a-panel-viewer")
