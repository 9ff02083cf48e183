"""A remote A2A agent saved with its token, drawn in the builder (its card fetched, skills
shown), run by a real worker: its question answered on the run page, its answer streamed in."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import screenshot
from tests.browser.test_builder import (
    connect,
    drag_to_canvas,
    graph_of,
    new_nodes,
    node,
    wait_saved,
)
from tests.support.processes import A2APeer, ServerProcess
from workflows.models import Run, Workflow

pytestmark = [pytest.mark.browser, pytest.mark.services, pytest.mark.slow]

TOKEN = "browser-desk-token-93c1"


@pytest.fixture
def peer() -> Iterator[A2APeer]:
    server = A2APeer(token=TOKEN)
    yield server
    server.stop()


def test_save_a_remote_agent_draw_its_step_and_answer_its_question(
    logged_in: Any, peer: A2APeer, worker: ServerProcess, settings: Any
) -> None:
    from a2a_site.accounts.models import User
    from workflows.services.runs import run_start

    page = logged_in
    page.goto("/agents/remote-agents/")
    page.get_by_test_id("empty-remote-agents").wait_for()
    screenshot(page, "60-remote-agents-empty")
    page.get_by_label("Name").fill("Travel desk")
    page.get_by_label("Agent URL").fill(peer.url)
    page.get_by_label("Bearer token").fill(TOKEN)
    page.get_by_role("button", name="Save and fetch its card").click()
    row = page.get_by_test_id("remote-agent-travel-desk")
    row.get_by_text("2 skills").wait_for()
    assert "••••93c1" in row.inner_text()
    assert TOKEN not in page.content()
    screenshot(page, "61-remote-agents")
    row.get_by_role("link", name="Travel desk").click()
    page.get_by_test_id("remote-card-skills").get_by_text("Book a trip").wait_for()
    assert TOKEN not in page.content() and "••••93c1" in page.content()
    screenshot(page, "61b-remote-agent-edit")
    # An address the policy refuses is explained on the form, and nothing is saved.
    page.goto("/agents/remote-agents/")
    page.get_by_label("Name").fill("Inside")
    page.get_by_label("Agent URL").fill("http://10.20.30.40:9000")
    page.get_by_role("button", name="Save and fetch its card").click()
    page.get_by_text("Refused by the outbound URL policy").wait_for()
    screenshot(page, "61c-remote-agents-refused")

    page.goto("/workflows/")
    page.get_by_role("link", name="Draw a new workflow").click()
    page.get_by_label("Name").fill("Trips")
    page.get_by_role("button", name="Create and open the builder").click()
    page.locator('workflow-builder[data-ready="true"]').wait_for()
    page.locator(".wf-palette__search").fill("remote")
    before = {n["id"] for n in graph_of(page)["nodes"]}
    drag_to_canvas(page, page.get_by_test_id("palette-remote_agent"), 0.4, 0.45)
    (desk,) = new_nodes(page, before)
    node(page, desk).locator(".wf-node__summary", has_text="Enter the agent URL").wait_for()

    node(page, desk).click()
    panel = page.locator("#node-panel")
    page.locator(f'#node-panel form[data-node-id="{desk}"]').wait_for()
    panel.get_by_label("Agent URL", exact=True).fill(peer.url)

    card = panel.get_by_test_id("remote-card")
    card.get_by_test_id("remote-card-name").filter(has_text="Travel desk").wait_for()
    skills = card.get_by_test_id("remote-card-skills")
    assert "Book a trip" in skills.inner_text() and "Echo" in skills.inner_text()
    assert "text/plain" in card.inner_text()
    panel.get_by_label("Skill", exact=True).select_option(label="Book a trip")
    panel.locator(".node-form-status", has_text="Applied").wait_for()
    panel.get_by_label("Saved remote agent (token)", exact=True).select_option(
        label=f"Travel desk — {peer.url}"
    )
    page.wait_for_function(
        """(id) => !!(document.getElementById('builder').getGraph().nodes
            .find((n) => n.id === id).config.remote_agent_id)""",
        arg=desk,
    )
    node(page, desk).locator(
        ".wf-node__summary", has_text=f"A2A · 127.0.0.1:{peer.port} · book"
    ).wait_for()
    connect(page, "start", desk)
    connect(page, desk, "end")
    page.get_by_role("button", name="Auto-layout").click()
    page.get_by_test_id("checklist-ok").wait_for()
    wait_saved(page)
    screenshot(page, "62-builder-remote-agent")

    page.get_by_role("button", name="Publish…").click()
    page.locator("#publish-dialog").get_by_role("button", name="Publish").click()
    page.locator("#import-report", has_text="Published version 1").wait_for()

    settings.EXECUTION_MODE = "celery"
    workflow = Workflow.objects.get(name="Trips")
    run = run_start(
        workflow=workflow, user=User.objects.get(username="olivia"), inputs={"task": "ask"}
    )
    page.goto(f"/runs/{run.pk}/")
    asked = page.get_by_test_id("human-request")
    asked.get_by_text("Travel desk asks: What is your name?").wait_for(timeout=60_000)
    page.locator("#timeline li[data-kind=remote_call]", has_text="input-required").wait_for()
    screenshot(page, "63-run-remote-question")
    page.get_by_label("Your answer").fill("Ada")
    page.get_by_role("button", name="Send answer").click()
    page.locator("#timeline li.tl-message:not(.tl-streaming)", has_text="Hello, Ada!").wait_for(
        timeout=60_000
    )
    page.locator("#timeline li[data-kind=remote_call]", has_text="completed").wait_for()
    assert "cost unknown" in page.locator("#timeline li[data-kind=remote_call]").last.inner_text()
    finished = Run.objects.get(pk=run.pk)
    assert finished.output == "Hello, Ada! Your booking is done.", finished.reason
    assert f"Bearer {TOKEN}" in peer.calls()["authorization"]
    assert TOKEN not in page.content()
    page.reload()
    page.get_by_test_id("remote-unpriced-note").wait_for()
    screenshot(page, "64-run-remote-answered")
    # A streamed answer shows in the transcript piece by piece, before the remote task ends.
    streamed = run_start(
        workflow=workflow,
        user=User.objects.get(username="olivia"),
        inputs={"task": "slow trains to Bergen"},
    )
    page.goto(f"/runs/{streamed.pk}/")
    page.locator("#timeline li.tl-streaming", has_text="Echo: slow").wait_for(timeout=60_000)
    assert Run.objects.get(pk=streamed.pk).status == "running"
    screenshot(page, "66-run-remote-streaming")
    stored = "#timeline li.tl-message:not(.tl-streaming)"
    page.locator(stored, has_text="Echo: slow trains to Bergen").wait_for(timeout=60_000)
    page.locator("#timeline li.tl-streaming").wait_for(state="detached")
    page.goto(f"/runs/{run.pk}/")
    page.get_by_test_id("open-trace").click()
    page.get_by_text(f"Travel desk at 127.0.0.1:{peer.port}").first.wait_for()
    screenshot(page, "65-trace-remote-agent")
