"""An owner closes the workspace's tools to all but two hosts, from the providers page."""

from __future__ import annotations

from typing import Any

import pytest

from agents.models import ToolHostPolicy
from tests.browser.conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.services]


def test_an_owner_narrows_the_tool_hosts(logged_in: Any) -> None:
    page = logged_in
    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Providers").click()
    page.get_by_test_id("tool-hosts-link").get_by_role("link", name="tool hosts").click()
    page.get_by_role("heading", name="Tool hosts").wait_for()
    screenshot(page, "60-tool-hosts")

    page.get_by_label("Tools may fetch from any public host").uncheck()
    page.get_by_label("Hosts").fill("docs.example.com\nhttp://wiki.example.com/")
    page.get_by_role("button", name="Save tool hosts").click()
    page.get_by_text("without http://").wait_for()
    screenshot(page, "61-tool-hosts-error")
    assert not ToolHostPolicy.objects.exists()

    page.get_by_label("Hosts").fill("docs.example.com\n*.wiki.example.com")
    page.get_by_role("button", name="Save tool hosts").click()
    page.get_by_text("Tool hosts saved").wait_for()
    effective = page.get_by_test_id("tool-hosts-effective").inner_text()
    assert "only docs.example.com, *.wiki.example.com" in effective
    screenshot(page, "62-tool-hosts-saved")
    policy = ToolHostPolicy.objects.get()
    assert (policy.public_hosts, policy.hosts) == (
        False,
        ["docs.example.com", "*.wiki.example.com"],
    )
