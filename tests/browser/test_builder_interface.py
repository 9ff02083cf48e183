"""The builder as a newcomer meets it: defining the workflow's inputs, nodes that say their name
once, an overview map that leaves the nodes alone, edges that stay visible, a transcript that
follows the stream, and a phone-sized screen."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import screenshot
from tests.browser.test_builder import graph_of, lab, node, open_builder, template_workflow
from tests.support.processes import ServerProcess
from workflows.models import Run, Workflow

pytestmark = [pytest.mark.browser, pytest.mark.services, pytest.mark.slow]

__all__ = ["lab"]  # the fixture, imported for this module's tests

DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}


def boxes_overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


def settle(page: Any) -> None:
    """Waits out the canvas's two-frame deferred fit (and one more frame to paint)."""
    page.evaluate(
        "() => new Promise((done) => requestAnimationFrame(() =>"
        " requestAnimationFrame(() => requestAnimationFrame(done))))"
    )


def new_workflow(page: Any, name: str) -> Workflow:
    page.goto("/workflows/new/")
    page.get_by_label("Name").fill(name)
    page.get_by_role("button", name="Create and open the builder").click()
    page.locator('workflow-builder[data-ready="true"]').wait_for()
    return Workflow.objects.get(name=name)


def wire_one_agent(page: Any, agent_id: str) -> None:
    """start → the agent → end, through the element's API (drawing is tested elsewhere)."""
    page.evaluate(
        """(agent) => {
            const b = document.getElementById('builder');
            const id = b.addNode('agent', {agentId: agent});
            b.connect('start', id);
            b.connect(id, 'end');
            b.autoLayout();
        }""",
        agent_id,
    )
    page.get_by_test_id("checklist-ok").wait_for()


def publish(page: Any, number: int) -> None:
    page.get_by_role("button", name="Publish…").click()
    page.locator("#publish-dialog").get_by_role("button", name="Publish").click()
    page.locator("#import-report", has_text=f"Published version {number}").wait_for()


def test_inputs_defined_in_the_builder_drive_the_run_form(lab: Any, worker: ServerProcess) -> None:
    page = lab
    page.set_viewport_size(DESKTOP)
    workflow = new_workflow(page, "Explainer")
    wire_one_agent(page, lab.agents["Writer"])
    summary = page.get_by_test_id("interface-summary")
    assert "task" in summary.inner_text()

    page.get_by_test_id("edit-interface").click()
    dialog = page.locator("#interface-dialog")
    first = dialog.get_by_test_id("input-row-0")
    first.get_by_label("Name").fill("topic")
    first.get_by_label("Label").fill("Topic")
    first.get_by_label("Description").fill("What to explain.")
    blank = dialog.get_by_test_id("input-row-1")
    blank.get_by_label("Name").fill("audience")
    blank.get_by_label("Type").select_option("choice")
    blank.get_by_label("Choices").fill("children, experts")
    blank.get_by_label("Default").fill("everyone")
    dialog.get_by_role("button", name="Apply").click()
    # The bad default is named on its row and field; nothing reaches the canvas.
    row = dialog.get_by_test_id("input-row-1")
    row.locator(".errorlist", has_text="default does not fit the field").wait_for()
    assert "Not applied" in dialog.get_by_test_id("interface-status").inner_text()
    assert [f["name"] for f in graph_of(page)["inputs"]["fields"]] == ["task"]
    screenshot(page, "49-builder-inputs-error")

    row.get_by_label("Default").fill("experts")
    dialog.get_by_role("button", name="Apply").click()
    dialog.get_by_test_id("interface-status").get_by_text("Applied to the draft").wait_for()
    graph = graph_of(page)
    assert [f["name"] for f in graph["inputs"]["fields"]] == ["topic", "audience"]
    start = next(n for n in graph["nodes"] if n["id"] == "start")
    assert start["config"]["input_mapping"] == {"topic": "task", "audience": "audience"}
    screenshot(page, "49-builder-inputs")
    screenshot(page, "49-builder-inputs-dark", theme="dark")
    page.evaluate("document.documentElement.dataset.theme = 'light'")
    dialog.get_by_role("button", name="Close").click()
    assert "audience" in summary.inner_text() and "one of children, experts" in summary.inner_text()
    page.get_by_test_id("checklist-ok").wait_for()
    page.locator('#save-status[data-state="saved"]').wait_for()

    # Undo takes the whole change back in one step, and redo brings it again.
    page.evaluate("() => document.getElementById('builder').undo()")
    assert [f["name"] for f in graph_of(page)["inputs"]["fields"]] == ["task"]
    page.evaluate("() => document.getElementById('builder').redo()")

    publish(page, 1)
    page.get_by_role("button", name="Run", exact=True).click()
    form = page.get_by_test_id("run-form")
    form.get_by_label("Topic").wait_for()
    assert form.get_by_label("Task").count() == 0
    assert form.get_by_label("Audience").input_value() == "experts"
    assert form.get_by_label("Audience").evaluate("el => el.tagName") == "SELECT"
    screenshot(page, "49-builder-run-form")
    form.get_by_role("button", name="Run version 1").click()
    # Required: the empty topic is refused before anything runs.
    page.get_by_test_id("run-form").locator(".errorlist").wait_for()
    assert not Run.objects.filter(workflow=workflow).exists()
    page.get_by_test_id("run-form").get_by_label("Topic").fill("tides")
    page.get_by_test_id("run-form").get_by_label("Audience").select_option("children")
    page.get_by_test_id("run-form").get_by_role("button", name="Run version 1").click()
    page.locator('#run-panel .badge[data-status="succeeded"]').wait_for(timeout=60_000)
    assert Run.objects.get(workflow=workflow).inputs == {"topic": "tides", "audience": "children"}


def test_nodes_say_their_name_once_and_edges_and_map_stay_clear(lab: Any) -> None:
    page = lab
    page.set_viewport_size(DESKTOP)
    workflow = template_workflow(lab)
    open_builder(page, workflow)
    page.get_by_test_id("checklist-ok").wait_for()
    for node_id in ("research", "analysis", "writing"):
        label = node(page, node_id).locator(".wf-node__label").inner_text()
        summary = node(page, node_id).locator(".wf-node__summary")
        shown = summary.inner_text() if summary.count() else ""
        assert shown.strip().lower() != label.strip().lower(), (label, shown)

    # Fitted beside the overview map: no node lies under it.
    page.get_by_role("button", name="Fit view", exact=True).click()
    minimap = page.locator(".react-flow__minimap")
    settle(page)
    map_box = minimap.bounding_box()
    assert map_box
    for item in page.locator(".react-flow__node").all():
        box = item.bounding_box()
        assert box and not boxes_overlap(box, map_box), item.get_attribute("data-id")
    screenshot(page, "50-builder-map-clear")
    # The map folds away and comes back.
    page.get_by_test_id("toggle-map").click()
    minimap.wait_for(state="detached")
    page.get_by_test_id("toggle-map").click()
    minimap.wait_for()

    # After publishing, the checklist and the canvas toolbar are not covered.
    publish(page, 1)
    layout = page.get_by_role("button", name="Auto-layout")
    layout_box = layout.bounding_box()
    assert layout_box
    hit = page.evaluate(
        "([x, y]) => document.elementFromPoint(x, y).textContent",
        [layout_box["x"] + layout_box["width"] / 2, layout_box["y"] + layout_box["height"] / 2],
    )
    assert hit.strip() == "Auto-layout"
    assert page.locator("#checklist").is_visible()
    screenshot(page, "51-builder-published")

    # A wire drawn straight through a node stays visible over it.
    page.evaluate(
        """() => {
            const b = document.getElementById('builder');
            const g = b.getGraph();
            const research = g.nodes.find((n) => n.id === 'research');
            const writing = g.nodes.find((n) => n.id === 'writing');
            const analysis = g.nodes.find((n) => n.id === 'analysis');
            analysis.position = {x: research.position.x + 0, y: analysis.position.y};
            writing.position = {x: research.position.x, y: writing.position.y};
            g.edges.push({id: 'skip', source: 'research', target: 'writing'});
            b.setGraph(g);
        }"""
    )
    page.get_by_test_id("edge-skip").wait_for(state="attached")
    settle(page)
    box = node(page, "analysis").bounding_box()
    assert box
    # Hit-testing follows paint order: made hittable for a moment, the edge's copy is what lies
    # on top at the node's centre.
    on_top = page.evaluate(
        """([x, y]) => {
            const overlay = document.querySelector('[data-testid="edge-overlay-skip"]');
            const path = overlay.querySelector('path');
            overlay.style.pointerEvents = path.style.pointerEvents = 'stroke';
            path.style.strokeWidth = '12';
            const hit = document.elementFromPoint(x, y);
            overlay.style.pointerEvents = path.style.pointerEvents = path.style.strokeWidth = '';
            return Boolean(hit && hit.closest('[data-testid="edge-overlay-skip"]'));
        }""",
        [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2],
    )
    assert on_top, "the edge runs behind the node"
    # The copy takes no clicks: the node under it is still the one clicked.
    hit = page.evaluate(
        "([x, y]) => document.elementFromPoint(x, y).closest('.react-flow__node')?.dataset.id",
        [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2],
    )
    assert hit == "analysis"
    screenshot(page, "50-builder-edge-over-node")


def test_the_test_run_transcript_follows_the_stream(
    lab: Any, worker: ServerProcess, demo_model: Any
) -> None:
    page = lab
    page.set_viewport_size(DESKTOP)
    reply = "\n\n".join(f"Paragraph {n} of a long answer about tides." for n in range(1, 41))
    demo_model.set_script({"rules": [{"reply": reply, "chunks": 40, "chunk_delay_ms": 120}]})
    try:
        workflow = template_workflow(lab)
        open_builder(page, workflow)
        page.get_by_test_id("checklist-ok").wait_for()
        publish(page, 1)
        page.get_by_role("button", name="Run", exact=True).click()
        page.get_by_test_id("run-form").get_by_label("Topic").fill("tides")
        page.get_by_test_id("run-form").get_by_role("button", name="Run version 1").click()
        timeline = page.locator("#run-panel [data-live-timeline]")
        timeline.wait_for()
        overflowing = "el => el.scrollHeight > el.clientHeight + 50"
        at_bottom = "el => el.scrollHeight - el.scrollTop - el.clientHeight < 24"
        page.wait_for_function(
            f"() => {{ const el = document.querySelector('#run-panel [data-live-timeline]');"
            f" return ({overflowing})(el); }}",
            timeout=30_000,
        )
        assert timeline.evaluate(at_bottom), "the transcript does not follow the stream"

        # Scrolling up to read stops the following; new text offers a way back down.
        timeline.evaluate("el => { el.scrollTop = 0; el.dispatchEvent(new Event('scroll')); }")
        jump = page.get_by_test_id("jump-latest")
        jump.wait_for(timeout=30_000)
        assert timeline.evaluate("el => el.scrollTop") == 0
        screenshot(page, "52-builder-transcript-scrolled-up")
        jump.click()
        jump.wait_for(state="hidden")
        page.wait_for_function(
            f"() => ({at_bottom})(document.querySelector('#run-panel [data-live-timeline]'))"
        )
        page.locator('#run-panel .badge[data-status="succeeded"]').wait_for(timeout=90_000)
        page.wait_for_function(
            f"() => ({at_bottom})(document.querySelector('#run-panel [data-live-timeline]'))"
        )
        screenshot(page, "52-builder-transcript-followed")
    finally:
        demo_model.set_script(None)


def test_a_phone_gets_a_palette_drawer_and_a_top_bar_that_fits(lab: Any) -> None:
    page = lab
    page.set_viewport_size(PHONE)
    workflow = template_workflow(lab)
    open_builder(page, workflow)
    page.get_by_test_id("checklist-ok").wait_for()
    # The canvas has the width; the palette waits behind a button.
    assert page.get_by_test_id("palette").count() == 0
    width = PHONE["width"]
    for button in page.locator(".builder-bar .btn:visible").all():
        box = button.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= width, button.inner_text()
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width
    screenshot(page, "53-builder-phone")

    page.get_by_test_id("open-palette").click()
    palette = page.get_by_test_id("palette")
    palette.wait_for()
    canvas = page.get_by_test_id("rf__wrapper").bounding_box()
    drawer = palette.bounding_box()
    assert canvas and drawer and drawer["width"] <= canvas["width"] * 0.9
    screenshot(page, "53-builder-phone-palette")
    before = len(graph_of(page)["nodes"])
    palette.get_by_test_id("palette-router").click()
    palette.wait_for(state="detached")
    assert len(graph_of(page)["nodes"]) == before + 1
    page.get_by_test_id("open-palette").click()
    page.get_by_test_id("close-palette").click()
    page.get_by_test_id("palette").wait_for(state="detached")

    # The top bar keeps one row of buttons: the secondary actions fold into “More”.
    bar_buttons = [
        b
        for b in page.locator(".builder-actions > .btn, .builder-actions > details > summary").all()
        if b.is_visible()
    ]
    rows = {round(b.bounding_box()["y"]) for b in bar_buttons}
    assert len(rows) == 1, rows
    page.get_by_test_id("more-menu").locator("summary").click()
    more = page.get_by_test_id("more-menu").locator(".menu-panel")
    more.get_by_role("menuitem", name="Export JSON").wait_for()
    box = more.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= width
    screenshot(page, "53-builder-phone-more")
    page.get_by_test_id("more-menu").locator("summary").click()

    # The top bar's menus open inside the screen.
    page.locator("#versions-menu summary").click()
    panel = page.locator("#versions").bounding_box()
    assert panel and panel["x"] >= 0 and panel["x"] + panel["width"] <= width
    screenshot(page, "53-builder-phone-versions")
    page.locator("#versions-menu summary").click()

    # The inputs editor fits the phone: one column, Apply always in reach.
    page.get_by_test_id("edit-interface").click()
    row = page.get_by_test_id("input-row-0")
    row.get_by_label("Name").wait_for()
    name_box, type_box = (
        row.get_by_label("Name").bounding_box(),
        row.get_by_label("Type").bounding_box(),
    )
    assert name_box and type_box and type_box["y"] > name_box["y"]
    assert page.locator("#interface-dialog").get_by_role("button", name="Apply").is_visible()
    apply_box = page.locator("#interface-dialog").get_by_role("button", name="Apply").bounding_box()
    assert apply_box and apply_box["y"] + apply_box["height"] <= PHONE["height"]
    screenshot(page, "53-builder-phone-inputs")


def test_run_settings_set_in_the_builder_reach_the_draft(lab: Any) -> None:
    page = lab
    page.set_viewport_size(DESKTOP)
    workflow = new_workflow(page, "Nightly digest")
    summary = page.get_by_test_id("settings-summary")
    assert "normal priority" in summary.inner_text() and "no cost budget" in summary.inner_text()

    page.get_by_test_id("edit-settings").click()
    dialog = page.locator("#settings-dialog")
    dialog.get_by_label("Priority").select_option("high")
    dialog.get_by_label("Most steps per run").fill("0")
    dialog.get_by_role("button", name="Apply").click()
    # Out of range: named on its field, and nothing reaches the canvas.
    dialog.locator(".errorlist", has_text="greater than or equal to 1").wait_for()
    assert "Not applied" in dialog.get_by_test_id("settings-status").inner_text()
    assert (graph_of(page).get("settings") or {}).get("priority", "normal") == "normal"

    dialog.get_by_label("Most steps per run").fill("40")
    dialog.get_by_label("Cost budget per run (USD)").fill("0.5")
    dialog.get_by_role("button", name="Apply").click()
    dialog.get_by_test_id("settings-status").get_by_text("Applied to the draft").wait_for()
    screenshot(page, "54-builder-run-settings")
    dialog.get_by_role("button", name="Close").click()
    assert graph_of(page)["settings"]["priority"] == "high"
    assert "high priority" in summary.inner_text() and "$0.5" in summary.inner_text()
    page.locator('#save-status[data-state="saved"]').wait_for()
    workflow.refresh_from_db()
    assert workflow.draft["settings"]["priority"] == "high"
    assert workflow.draft["settings"]["max_steps"] == 40
    assert workflow.draft["settings"]["cost_budget_usd"] == 0.5
