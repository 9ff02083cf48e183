"""The agent playground: another model and parameters for a try, a new conversation, another
agent; and the workflow playground, where a team answers in a live transcript."""

from __future__ import annotations

from typing import Any

import pytest

from agents.models import Agent, LedgerEntry, Provider
from tests.browser.conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.services, pytest.mark.slow]


def _workspace_of(page: Any) -> Any:
    from a2a_site.accounts.models import Workspace

    return Workspace.objects.get(name="Lab")


def test_the_agent_playground_tries_settings_resets_and_switches(
    logged_in: Any, demo_model: Any
) -> None:
    from tests.agents.factories import make_agent, make_provider

    page = logged_in
    workspace = _workspace_of(page)
    provider = make_provider(workspace, name="Demo")
    Provider.objects.filter(pk=provider.pk).update(models_available=["demo", "demo-large"])
    researcher = make_agent(workspace, name="Researcher", provider=provider)
    make_agent(workspace, name="Writer", provider=provider)

    page.goto(f"/agents/{researcher.pk}/playground/")
    page.get_by_label("Model").select_option(f"{provider.pk}|demo-large")
    page.get_by_label("Temperature").fill("0.9")
    page.get_by_label("Max tokens").fill("120")
    page.locator("#chat-form[data-ready=true]").wait_for()  # its script is listening
    page.get_by_label("Your message").fill("Tell me about heat pumps")
    page.get_by_label("Your message").press("Enter")
    reply = page.locator(".chat-assistant[data-done=true]")
    reply.wait_for()
    meta = reply.locator(".chat-meta").inner_text()
    assert "demo-large via Demo" in meta
    assert "temperature 0.9" in meta and "max tokens 120" in meta
    assert not page.get_by_role("button", name="Switch").is_visible(), "choosing switches"
    screenshot(page, "20-playground-try-settings")
    sent = [r for r in demo_model.requests if r["path"] == "/v1/chat/completions"][-1]
    assert sent["model"] == "demo-large" and sent["body"]["temperature"] == 0.9
    assert LedgerEntry.objects.get().model == "demo-large"
    assert researcher.versions.count() == 1, "the agent itself is not changed"

    page.get_by_role("button", name="New conversation").click()
    assert page.locator(".chat-msg").count() == 0
    page.get_by_text("A new conversation").wait_for()
    page.locator("#chat-form[data-ready=true]").wait_for()  # its script is listening
    page.get_by_label("Your message").fill("Hello again")
    page.get_by_label("Your message").press("Enter")
    page.locator(".chat-assistant[data-done=true]").wait_for()
    again = [r for r in demo_model.requests if r["path"] == "/v1/chat/completions"][-1]
    said = [m["content"] for m in again["body"]["messages"] if m["role"] == "user"]
    assert said == ["Hello again"], "the new conversation starts afresh"
    screenshot(page, "21-playground-new-conversation")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "21b-playground-phone")
    page.set_viewport_size({"width": 1280, "height": 820})

    page.get_by_label("Agent", exact=True).select_option(label="Writer")
    page.get_by_role("heading", name="Playground · Writer").wait_for()
    writer = Agent.objects.get(name="Writer")
    assert page.url.endswith(f"/agents/{writer.pk}/playground/")


def test_a_workflow_answers_as_a_team_with_its_live_transcript(
    logged_in: Any, demo_model: Any, worker: Any
) -> None:
    from tests.agents.factories import make_provider
    from workflows.models import Run

    page = logged_in
    demo_model.set_script(None)
    demo_model.reset()
    make_provider(_workspace_of(page))
    page.goto("/workflows/")
    page.locator(".template-card", has_text="Research pipeline").get_by_role("button").click()
    page.get_by_role("link", name="Chat with the team").click()
    page.get_by_role("heading", name="Team chat · Research pipeline").wait_for()

    page.get_by_label("Your message to the team").fill("green roofs")
    page.get_by_label("Your message to the team").press("Enter")
    first = page.locator('.team-turn[data-status="succeeded"]').first
    first.wait_for(timeout=60_000)
    first.locator("li[data-kind=message]").nth(2).wait_for()
    assert "green roofs" in first.inner_text().lower()
    run = Run.objects.get()
    assert run.inputs == {"topic": "green roofs"}
    assert page.get_by_role("button", name="Send").is_enabled()

    # The writer takes its time, so its reply is seen arriving piece by piece.
    demo_model.set_script(
        {"rules": [{"system_regex": "(?i)writer", "chunks": 30, "chunk_delay_ms": 100}]}
    )
    page.get_by_label("Your message to the team").fill("And what about their cost?")
    page.get_by_label("Your message to the team").press("Enter")
    streaming = page.locator(".team-turn").nth(1).locator(".tl-streaming")
    streaming.wait_for(timeout=30_000)
    assert streaming.inner_text().strip(), "partial text is shown while the writer writes"
    assert not page.get_by_role("button", name="Send").is_enabled(), "one turn at a time"
    screenshot(page, "22a-team-chat-streaming")
    second = page.locator('.team-turn[data-status="succeeded"]').nth(1)
    second.wait_for(timeout=60_000)
    second.locator("li[data-kind=message]").nth(2).wait_for()
    latest = Run.objects.latest("created_at")
    topic = latest.inputs["topic"]
    assert topic.startswith("The conversation so far") and "You: green roofs" in topic
    assert topic.endswith("And what about their cost?")
    assert page.locator(".team-turn").count() == 2
    screenshot(page, "22-team-chat")
    screenshot(page, "22-team-chat-dark", theme="dark")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "22b-team-chat-phone")
    page.set_viewport_size({"width": 1280, "height": 820})

    page.get_by_role("button", name="New conversation").click()
    assert page.locator(".team-turn").count() == 0
    page.get_by_label("Your message to the team").fill("hedgehogs")
    page.get_by_label("Your message to the team").press("Enter")
    page.locator('.team-turn[data-status="succeeded"]').wait_for(timeout=60_000)
    assert Run.objects.latest("created_at").inputs == {"topic": "hedgehogs"}
