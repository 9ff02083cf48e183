"""Watching runs live in Chromium: a real daphne, a real Celery worker, the fake LLM server."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import screenshot
from tests.support.processes import ServerProcess
from workflows.models import Run

pytestmark = [pytest.mark.browser, pytest.mark.services, pytest.mark.slow]


@pytest.fixture
def lab(logged_in: Any, demo_model: Any, worker: ServerProcess) -> Any:
    from a2a_site.accounts.models import Workspace
    from tests.agents.factories import make_provider

    demo_model.set_script(None)
    demo_model.reset()
    make_provider(Workspace.objects.get(name="Lab"))
    return logged_in


def _use_template(page: Any, name: str) -> None:
    page.goto("/workflows/")
    page.locator(".template-card", has_text=name).get_by_role("button").click()
    page.get_by_test_id("run-form").wait_for()


def _transcript(page: Any) -> list[str]:
    return page.locator("#timeline li[data-seq]").evaluate_all(
        "items => items.map(item => item.dataset.seq + ':' + item.innerText)"
    )


def test_a_pipeline_streams_to_completion(lab: Any) -> None:
    page = lab
    page.set_viewport_size({"width": 1440, "height": 900})
    _use_template(page, "Research pipeline")
    screenshot(page, "20-workflow-detail")
    page.get_by_label("Topic").fill("green roofs")
    page.get_by_role("button", name="Run version 1").click()
    # On a laptop screen the live messages are in view without scrolling.
    first = page.locator("#timeline li[data-kind=message]").first
    first.wait_for(timeout=60_000)
    box = first.bounding_box()
    assert box is not None and box["y"] + 40 < 900, box
    assert page.evaluate("window.scrollY") == 0
    page.locator('#run-state .badge[data-status="succeeded"]').wait_for(timeout=60_000)
    messages = page.locator("#timeline li[data-kind=message]")
    messages.nth(2).wait_for()
    assert messages.count() == 3
    assert "green roofs" in page.locator("#timeline").inner_text().lower()
    # The node list catches up when the run state refreshes, just after the status changes.
    page.locator(".node-state.state-done").nth(4).wait_for()
    assert page.locator(".node-state.state-done").count() == 5
    # The graph on the run page shows the same states on its canvas.
    for node_id in ("research", "analysis", "writing"):
        page.locator(f'#run-builder [data-testid="node-{node_id}"][data-status="done"]').wait_for()
    meta = messages.first.locator(".tl-meta").inner_text()
    assert "demo via Demo" in meta and "tokens" in meta
    screenshot(page, "21-run-succeeded")
    screenshot(page, "21-run-succeeded-dark", theme="dark")
    page.goto("/runs/")
    assert page.get_by_test_id("history-row").count() == 1


def test_model_output_is_rendered_inert(lab: Any, demo_model: Any) -> None:
    page = lab
    demo_model.set_script(
        {
            "rules": [
                {
                    "reply": "Plain **bold** text <script>window.__xss = 1</script> "
                    '<img src="/steal" onerror="window.__xss = 2"> '
                    "[click me](javascript:window.__xss=3)"
                }
            ]
        }
    )
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    _use_template(page, "Research pipeline")
    page.get_by_label("Topic").fill("anything")
    page.get_by_role("button", name="Run version 1").click()
    page.locator('#run-state .badge[data-status="succeeded"]').wait_for(timeout=60_000)
    body = page.locator("#timeline li[data-kind=message] .tl-body").first
    assert body.locator("strong").inner_text() == "bold"
    assert page.evaluate("window.__xss") is None
    assert body.locator("script, img").count() == 0
    assert body.locator("a[href^='javascript']").count() == 0
    assert not [url for url in requested if url.endswith("/steal")]
    assert dialogs == []


def test_a_person_approves_a_draft_inline(lab: Any) -> None:
    page = lab
    _use_template(page, "Draft with human approval")
    page.get_by_label("Topic").fill("heat pumps")
    page.get_by_role("button", name="Run version 1").click()
    page.get_by_test_id("human-request").wait_for(timeout=60_000)
    # The node asking is shown as waiting for a person, not as one not reached.
    page.locator('#run-nodes .node-state[data-state="waiting"]').wait_for()
    assert "waiting for a person" in page.locator('#run-nodes [data-state="waiting"]').inner_text()
    assert "heat pumps" in page.get_by_test_id("run-io").inner_text()
    screenshot(page, "22-run-waiting")
    page.get_by_role("button", name="Approve").click()
    page.locator('#run-state .badge[data-status="succeeded"]').wait_for(timeout=60_000)
    run = Run.objects.get()
    assert run.status == "succeeded" and run.attempts == 2
    # The answer reads as what the person said, under their name.
    answer = page.locator("#timeline li.tl-human")
    answer.wait_for()
    assert answer.locator(".tl-who").inner_text() == "olivia"
    assert answer.locator(".tl-body").inner_text() == "Approved."
    # Elapsed counts from the first start, the wait included.
    assert page.get_by_test_id("run-elapsed").inner_text() != "0.0 s"
    # Only the end of the branch taken is done; nothing stays pending on a finished run.
    # (The node states arrive with the page's next refresh: awaited, not counted at once.)
    page.locator('#run-nodes .node-state[data-state="done"]').first.wait_for()
    expect(page.locator('#run-nodes [data-state="pending"]')).to_have_count(0, timeout=10_000)
    screenshot(page, "22-run-approved")


def test_a_run_is_cancelled_from_its_page(lab: Any, demo_model: Any) -> None:
    page = lab
    demo_model.set_script({"rules": [{"reply": "Slowly now.", "delay_ms": 4000}]})
    _use_template(page, "Research pipeline")
    page.get_by_label("Topic").fill("patience")
    page.get_by_role("button", name="Run version 1").click()
    page.locator('#run-state .badge[data-status="running"]').wait_for(timeout=30_000)
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel").click()
    page.locator('#run-state .badge[data-status="cancelled"]').wait_for(timeout=30_000)
    assert Run.objects.get().status == "cancelled"


def test_a_reload_mid_run_shows_the_same_transcript(
    lab: Any, demo_model: Any, browser: Any
) -> None:
    page = lab
    demo_model.set_script({"rules": [{"reply": "A measured answer.", "delay_ms": 1500}]})
    _use_template(page, "Research pipeline")
    page.get_by_label("Topic").fill("continuity")
    page.get_by_role("button", name="Run version 1").click()
    page.locator("#timeline li[data-kind=message]").first.wait_for(timeout=30_000)
    run_url = page.url
    watcher = page.context.new_page()  # an uninterrupted viewer, from the start
    watcher.goto(run_url)
    page.reload()
    for viewer in (page, watcher):
        viewer.locator('#run-state .badge[data-status="succeeded"]').wait_for(timeout=60_000)
        viewer.locator("#timeline li[data-kind=message]").nth(2).wait_for()
    assert _transcript(page) == _transcript(watcher)
    assert len(_transcript(page)) == len(set(_transcript(page)))


def test_a_reload_mid_message_restores_it_from_its_first_word(lab: Any, demo_model: Any) -> None:
    page = lab
    reply = "Alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi."
    demo_model.set_script({"rules": [{"reply": reply, "chunks": 24, "chunk_delay_ms": 200}]})
    _use_template(page, "Research pipeline")
    page.get_by_label("Topic").fill("continuity")
    page.get_by_role("button", name="Run version 1").click()
    streaming = page.locator("#timeline .tl-streaming .tl-body")
    page.wait_for_function(
        "() => { const b = document.querySelector('#timeline .tl-streaming .tl-body');"
        " return b && b.textContent.length > 20; }",
        timeout=30_000,
    )
    before = streaming.first.inner_text()

    page.reload()

    streaming.first.wait_for(timeout=10_000)
    after = streaming.first.inner_text()
    assert after.startswith("Alpha beta"), (before, after)
    assert len(after) >= len(before) or before.startswith(after[: len(before)]), (before, after)
    screenshot(page, "23-run-reloaded-mid-message")
    # The finished messages are whole, each shown once.
    page.locator('#run-state .badge[data-status="succeeded"]').wait_for(timeout=60_000)
    bodies = page.locator("#timeline li[data-kind=message] .tl-body").all_inner_texts()
    assert bodies == [reply] * 3


def test_the_demo_debate_hears_both_sides_and_hands_on_its_transcript(lab: Any) -> None:
    page = lab
    _use_template(page, "Round-robin debate")
    page.get_by_label("Topic").fill("four-day weeks")
    page.get_by_role("button", name="Run version 1").click()
    page.locator('#run-state .badge[data-status="succeeded"]').wait_for(timeout=90_000)
    messages = page.locator("#timeline li[data-kind=message]")
    speakers = messages.locator(".tl-who").all_inner_texts()
    # Two rounds: the moderator sums up once both sides have answered each other.
    assert speakers == ["Optimist", "Skeptic", "Moderator"] * 2
    # The chat's end is said in words, not as a raw event name.
    ended = page.locator("#timeline li[data-kind=node_finished]").inner_text()
    assert ended == "■ debate ended after 6 messages."
    output = page.get_by_test_id("run-io").locator(".run-output").inner_text()
    assert output.startswith("Optimist: ") and "\nSkeptic: " in output
    screenshot(page, "24-run-debate")
