"""What someone who mistyped their password too often sees, in Chromium."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.services, pytest.mark.slow]


def test_too_many_wrong_passwords_say_when_to_try_again(page: Any) -> None:
    from tests.conftest import make_user

    make_user("olivia")
    page.goto("/accounts/login/")
    for attempt in range(6):
        page.get_by_label("Username").fill("olivia")
        page.get_by_label("Password").fill(f"wrong-{attempt}")
        with page.expect_navigation():
            page.get_by_role("button", name="Log in").click()
    message = page.locator(".errorlist").inner_text()
    assert "Too many failed log-ins for this account or from your address" in message
    assert "Try again in 15 minutes" in message
    screenshot(page, "07-login-throttled")

    # Even the right password waits.
    page.get_by_label("Username").fill("olivia")
    page.get_by_label("Password").fill("correct horse")
    with page.expect_navigation():
        page.get_by_role("button", name="Log in").click()
    assert page.url.endswith("/accounts/login/")
    assert "Too many failed log-ins" in page.locator(".errorlist").inner_text()
