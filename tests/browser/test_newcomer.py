"""A newcomer's first minutes, in a real browser against a real daphne process."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from a2a_site.accounts.models import Membership, Role, User
from a2a_site.accounts.services import signup_token
from tests.browser.conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.services, pytest.mark.slow]


def test_newcomer_signs_up_creates_a_workspace_and_logs_out(page: Any) -> None:
    page.goto("/")
    # Anonymous visitors land on the login page, which offers sign-up.
    assert page.url.endswith("/accounts/login/?next=/")
    screenshot(page, "01-login")
    page.get_by_role("link", name="Create an account").click()

    page.get_by_label("Username").fill("nadia")
    page.get_by_label("Email").fill("nadia@example.com")
    screenshot(page, "02-signup")
    page.get_by_role("button", name="Create account").click()
    page.get_by_test_id("signup-sent").wait_for()
    screenshot(page, "02-signup-sent")

    # She follows the link her e-mail carries (the server's outbox is in another process; the
    # link is the one it signs for her username and address).
    token = signup_token(username="nadia", email="nadia@example.com")
    page.goto(reverse("signup_confirm", args=[token]))
    page.get_by_label("Password:", exact=True).fill("a-long-passphrase-42")
    page.get_by_label("Password confirmation").fill("a-long-passphrase-42")
    screenshot(page, "02-signup-password")
    page.get_by_role("button", name="Create account").click()

    # The empty state tells her what to do first.
    welcome = page.get_by_test_id("welcome")
    welcome.wait_for()
    assert "Start with a workspace" in welcome.inner_text().replace("\n", " ")
    screenshot(page, "03-welcome-empty-state")
    screenshot(page, "03-welcome-empty-state-dark", theme="dark")
    page.evaluate("document.documentElement.dataset.theme = 'light'")

    page.get_by_label("Workspace name").fill("Nadia's lab")
    page.get_by_role("button", name="Create workspace").click()
    page.get_by_role("heading", name="Nadia's lab").wait_for()
    assert "is ready and now current" in page.locator(".messages").inner_text()
    screenshot(page, "04-workspace-overview")

    user = User.objects.get(username="nadia")
    membership = Membership.objects.get(user=user)
    assert membership.workspace.name == "Nadia's lab"
    assert membership.role == Role.OWNER

    # Every section shows a guiding empty state rather than a blank page.
    for link, test_id in (
        ("Agents", "empty-agents"),
        ("Workflows", "empty-workflows"),
        ("Runs", "empty-runs"),
    ):
        page.get_by_role("navigation", name="Sections").get_by_role(
            "link", name=link, exact=True
        ).click()
        page.get_by_test_id(test_id).wait_for()
        screenshot(page, f"05-{link.lower()}-empty")
    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Monitoring").click()
    page.get_by_test_id("health").wait_for()
    screenshot(page, "06-monitoring")
    page.get_by_role("navigation", name="Sections").get_by_role(
        "link", name="Workspace settings"
    ).click()
    page.get_by_test_id("member-nadia").wait_for()
    screenshot(page, "07-workspace-settings")

    page.get_by_label("Account menu for nadia").click()
    page.get_by_role("button", name="Log out").click()
    page.get_by_role("heading", name="Log in").wait_for()
    assert page.url.endswith("/accounts/login/")
    page.goto("/")
    assert "/accounts/login/?next=/" in page.url
