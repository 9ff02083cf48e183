"""From nothing to a working agent: add the demo model, define an agent, chat with it."""

from __future__ import annotations

from typing import Any

import pytest

from agents.models import Agent, LedgerEntry, Provider
from tests.browser.conftest import screenshot
from tests.support.canary import CANARY

pytestmark = [pytest.mark.browser, pytest.mark.services, pytest.mark.slow]


def test_a_newcomer_connects_the_demo_model_and_chats_with_an_agent(
    logged_in: Any, demo_model: Any
) -> None:
    page = logged_in
    nav = page.get_by_role("navigation", name="Sections")
    nav.get_by_role("link", name="Providers").click()
    page.get_by_test_id("empty-providers").wait_for()
    screenshot(page, "10-providers-empty")
    page.get_by_role("link", name="Add your first provider").click()
    screenshot(page, "11-provider-kinds")
    page.get_by_test_id("kind-demo").click()
    page.get_by_label("First byte within (seconds)").wait_for()
    screenshot(page, "11-provider-form")
    # Tested before the first save: the result shows on the form, and nothing is stored.
    page.get_by_test_id("provider-test-button").click()
    page.locator("#provider-test .badge-ok").wait_for()
    tested = page.locator("#provider-test").inner_text()
    assert "Connected in" in tested and "models available" in tested
    screenshot(page, "11b-provider-tested-before-save")
    assert not Provider.objects.exists()
    page.get_by_role("button", name="Save provider").click()
    page.locator("#provider-check").get_by_role("button", name="Test connection").click()
    page.locator("#provider-check .badge-ok").wait_for()
    check = page.locator("#provider-check").inner_text()
    assert "Connection working" in check and "Tested just now" in check
    assert check.count("models available") == 1 and "model(s)" not in check
    screenshot(page, "12-provider-connected")
    assert Provider.objects.get().last_check_ok is True

    page.get_by_role("link", name="Create an agent with this provider").click()
    page.get_by_label("Name", exact=True).fill("Researcher")
    page.get_by_label("Role").fill("a meticulous research analyst")
    provider_id = str(Provider.objects.get().pk)
    assert page.get_by_label("Provider", exact=True).input_value() == provider_id
    page.get_by_label("Model", exact=True).fill("demo")
    page.get_by_label("calculator").check()
    screenshot(page, "13-agent-form")
    page.get_by_role("button", name="Create agent").click()
    page.get_by_role("heading", name="Researcher").wait_for()
    screenshot(page, "14-agent-detail")
    agent = Agent.objects.get()
    assert agent.versions.get().config["tools"] == ["calculator"]

    page.get_by_role("link", name="Open playground").click()
    page.locator("#chat-form[data-ready=true]").wait_for()  # its script is listening
    page.get_by_label("Your message").fill("What do we know about heat pumps in old houses?")
    page.get_by_label("Your message").press("Enter")
    reply = page.locator(".chat-assistant[data-done=true]")
    reply.wait_for()
    text = reply.locator(".chat-body").inner_text()
    assert "heat pumps" in text.lower()
    meta = reply.locator(".chat-meta").inner_text()
    assert "demo via Offline demo model" in meta and "tokens" in meta and "ms" in meta
    screenshot(page, "15-playground")
    screenshot(page, "15-playground-dark", theme="dark")
    # The demo model uses the agent's calculator first, then answers: two calls, both booked.
    entries = list(LedgerEntry.objects.all())
    assert len(entries) == 2
    assert all(e.status == "completed" and e.source["source"] == "playground" for e in entries)
    assert any(r["path"] == "/v1/chat/completions" for r in demo_model.requests)


def test_keys_never_come_back_to_the_browser(logged_in: Any, demo_model: Any) -> None:
    page = logged_in
    canary = CANARY
    page.goto("/agents/providers/new/?kind=openai_compatible")
    page.get_by_label("Name").fill("Local gateway")
    page.get_by_label("Base URL").fill(f"{demo_model.url}/v1")
    page.get_by_label("API key").fill(canary)
    page.get_by_role("button", name="Save provider").click()
    page.get_by_role("button", name="Test connection").click()
    page.locator("#provider-check .badge").wait_for()
    for path in ("", "edit/"):
        page.goto(
            page.url.split("/agents/providers/")[0]
            + "/agents/providers/"
            + str(Provider.objects.get().pk)
            + "/"
            + path
        )
        assert canary not in page.content()
    assert canary[-4:] in page.content() or "Stored" in page.content()


def test_a_refused_save_says_the_key_must_be_entered_again(logged_in: Any, demo_model: Any) -> None:
    page = logged_in
    page.goto("/agents/providers/new/?kind=openai_compatible")
    page.get_by_label("Name").fill("Local gateway")
    page.get_by_label("Base URL").fill(f"{demo_model.url}/v1")
    page.get_by_label("API key").fill(CANARY)
    page.get_by_test_id("provider-test-button").click()
    page.locator("#provider-test .badge").wait_for()
    assert "Connected in" in page.locator("#provider-test").inner_text()
    page.get_by_label("Base URL").fill("ftp://example.com/v1")
    page.get_by_role("button", name="Save provider").click()
    page.get_by_text("The key you entered was not saved").wait_for()
    assert "keep the stored key" not in page.content()
    assert CANARY not in page.content()
    assert page.get_by_label("API key").input_value() == ""
    screenshot(page, "16-provider-refused-save")
    assert not Provider.objects.exists()
