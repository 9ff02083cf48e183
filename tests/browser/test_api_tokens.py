"""The API token page and the API reference, in Chromium: a token is made, shown once, used
from the reference page's “Try it out”, and revoked."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.services, pytest.mark.slow]


def test_a_person_makes_a_token_sees_it_once_and_revokes_it(logged_in: Any) -> None:
    from a2a_site.api.models import ApiToken

    page = logged_in
    page.goto("/settings/api-tokens/")
    page.get_by_text("No tokens yet").wait_for()
    screenshot(page, "api-tokens-empty")
    page.get_by_label("Name").fill("CI pipeline")
    page.get_by_label("Scope").select_option("run")
    page.get_by_role("button", name="Create token").click()
    secret = page.get_by_test_id("token-secret").locator("code.secret-box").inner_text()
    assert secret.startswith("a2a_")
    token = ApiToken.objects.get(name="CI pipeline")
    assert token.scope == "run" and token.prefix == secret[:12]
    row = page.get_by_test_id(f"token-{token.prefix}")
    assert "CI pipeline" in row.inner_text()
    screenshot(page, "api-tokens-created")
    screenshot(page, "api-tokens-created-dark", theme="dark")

    page.reload()  # shown once: gone after a reload
    assert secret not in page.content()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_test_id(f"token-{token.prefix}").get_by_role("button", name="Revoke").click()
    page.get_by_role("status").filter(has_text="Revoked").wait_for()
    token.refresh_from_db()
    assert token.revoked_at is not None
    screenshot(page, "api-tokens-revoked")


def test_the_reference_page_renders_the_schema_without_a_cdn(
    logged_in: Any, daphne_server: str
) -> None:
    page = logged_in
    elsewhere: list[str] = []
    page.on(
        "request",
        lambda request: (
            None
            if request.url.startswith((daphne_server, "data:"))
            else elsewhere.append(request.url)
        ),
    )
    page.goto("/api/v1/docs/")
    page.get_by_text("A2A Studio API").first.wait_for()
    page.locator(
        ".opblock-summary-path", has_text="/api/v1/workflows/{workflow_id}/runs"
    ).first.wait_for()
    screenshot(page, "api-reference")
    # Signed in, the page calls the API with the session.
    page.locator(".opblock-summary", has_text="/api/v1/me").first.click()
    page.get_by_role("button", name="Try it out").click()
    page.get_by_role("button", name="Execute").click()
    page.locator(".live-responses-table .response-col_status", has_text="200").wait_for()
    assert elsewhere == []


def test_the_workflow_page_offers_code_to_launch_and_follow(logged_in: Any) -> None:
    from a2a_site.accounts.models import Workspace
    from tests.api.test_contract import GRAPH
    from workflows.services.workflows import workflow_create, workflow_publish

    workspace = Workspace.objects.get(name="Lab")
    workflow = workflow_create(workspace=workspace, user=None, name="Digest", graph=GRAPH)
    workflow_publish(workflow=workflow, user=None)
    page = logged_in
    page.goto(f"/workflows/{workflow.pk}/")
    panel = page.get_by_test_id("api-panel")
    assert str(workflow.pk) in panel.get_by_test_id("snippet-curl").inner_text()
    assert "requests.post(" in panel.get_by_test_id("snippet-python").inner_text()
    screenshot(page, "workflow-api-panel")
