"""The visual builder in Chromium: drawing with the mouse and the keyboard, undo, layout,
validation, autosave across a reload, publishing, and a test run lighting up the canvas."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.browser.conftest import screenshot
from tests.support.processes import ServerProcess
from workflows.models import Workflow

pytestmark = [pytest.mark.browser, pytest.mark.services, pytest.mark.slow]


@pytest.fixture
def lab(logged_in: Any, demo_model: Any) -> Any:
    """Olivia's “Lab” with the offline demo model and the pipeline's three agents."""
    from a2a_site.accounts.models import Workspace
    from tests.agents.factories import make_agent, make_provider

    demo_model.set_script(None)
    demo_model.reset()
    workspace = Workspace.objects.get(name="Lab")
    provider = make_provider(workspace)
    logged_in.agents = {
        name: str(make_agent(workspace, name=name, provider=provider, role=role).pk)
        for name, role in (
            ("Researcher", "a meticulous researcher"),
            ("Analyst", "a sharp analyst"),
            ("Writer", "a clear writer"),
        )
    }
    logged_in.workspace = workspace
    return logged_in


def open_builder(page: Any, workflow: Workflow) -> None:
    page.goto(f"/workflows/{workflow.pk}/builder/")
    page.locator('workflow-builder[data-ready="true"]').wait_for()


def graph_of(page: Any) -> dict[str, Any]:
    return page.evaluate("() => document.getElementById('builder').getGraph()")


def wait_saved(page: Any) -> None:
    page.locator('#save-status[data-state="saved"]').wait_for()


def node(page: Any, node_id: str) -> Any:
    return page.get_by_test_id(f"node-{node_id}")


def drag_to_canvas(page: Any, source: Any, x: float, y: float) -> None:
    """An HTML5 drag from the palette onto the canvas, at fractions x, y of its width and height,
    by real mouse input."""
    start = source.bounding_box()
    canvas = page.get_by_test_id("rf__wrapper").bounding_box()
    assert start and canvas
    page.mouse.move(start["x"] + start["width"] / 2, start["y"] + start["height"] / 2)
    page.mouse.down()
    page.mouse.move(start["x"] + start["width"] / 2 + 4, start["y"] + start["height"] / 2 + 4)
    page.mouse.move(canvas["x"] + canvas["width"] * x, canvas["y"] + canvas["height"] * y, steps=15)
    page.mouse.up()


def connect(page: Any, source_id: str, target_id: str, handle: str = "Output") -> None:
    """Drags from the source node's output handle to the target's input handle."""
    start = node(page, source_id).get_by_label(handle, exact=True).bounding_box()
    end = node(page, target_id).get_by_label("Input", exact=True).bounding_box()
    assert start and end
    page.mouse.move(start["x"] + start["width"] / 2, start["y"] + start["height"] / 2)
    page.mouse.down()
    page.mouse.move(end["x"] + end["width"] / 2, end["y"] + end["height"] / 2, steps=12)
    page.mouse.up()


def new_nodes(page: Any, before: set[str]) -> list[str]:
    """The nodes added since `before`, once there are some (a drop lands a moment after)."""
    page.wait_for_function(
        "count => document.getElementById('builder').getGraph().nodes.length > count",
        arg=len(before),
    )
    return [n["id"] for n in graph_of(page)["nodes"] if n["id"] not in before]


def test_draw_publish_and_run_the_pipeline(lab: Any, worker: ServerProcess) -> None:
    page = lab
    page.goto("/workflows/")
    page.get_by_role("link", name="Draw a new workflow").click()
    page.get_by_label("Name").fill("Drawn pipeline")
    page.get_by_role("button", name="Create and open the builder").click()
    page.locator('workflow-builder[data-ready="true"]').wait_for()
    # A new canvas holds a start and an end; the checklist says what to do next.
    page.get_by_test_id("checklist").locator('[data-code="too_few_outputs"]').wait_for()
    screenshot(page, "40-builder-empty")

    ids = []
    for index, name in enumerate(("Researcher", "Analyst")):
        before = {n["id"] for n in graph_of(page)["nodes"]}
        drag_to_canvas(
            page, page.get_by_test_id(f"palette-agent-{lab.agents[name]}"), 0.25, 0.3 + index * 0.2
        )
        (added,) = new_nodes(page, before)
        ids.append(added)
    # The writer starts as a plain agent step; its agent is chosen in the property form.
    before = {n["id"] for n in graph_of(page)["nodes"]}
    drag_to_canvas(page, page.get_by_test_id("palette-agent"), 0.25, 0.7)
    (writer,) = new_nodes(page, before)
    ids.append(writer)
    node(page, writer).click()
    page.locator(f'#node-panel form[data-node-id="{writer}"]').wait_for()
    page.locator("#node-panel").get_by_label("Agent").select_option(label="Writer")
    page.locator("#node-panel .node-form-status", has_text="Applied").wait_for()
    # A step still labelled “Agent” takes its agent's name.
    node(page, writer).locator(".wf-node__label", has_text="Writer").wait_for()
    assert page.locator("#node-panel").get_by_label("Label").input_value() == "Writer"

    chain = ["start", *ids, "end"]
    for source, target in zip(chain, chain[1:], strict=False):
        connect(page, source, target)
    # A wire drawn wrong comes off with its hover button and goes back on.
    last = next(e for e in graph_of(page)["edges"] if e["target"] == "end")
    page.get_by_test_id(f"edge-{last['id']}").hover(force=True)
    page.get_by_role("button", name="Delete edge").click()
    assert all(e["target"] != "end" for e in graph_of(page)["edges"])
    connect(page, writer, "end")
    page.get_by_role("button", name="Auto-layout").click()
    graph = graph_of(page)
    assert [(e["source"], e["target"]) for e in graph["edges"]] == list(
        zip(chain, chain[1:], strict=False)
    )
    agents = {n["id"]: n["config"].get("agent_id") for n in graph["nodes"] if n["type"] == "agent"}
    assert agents == dict(zip(ids, lab.agents.values(), strict=True))
    page.get_by_test_id("checklist-ok").wait_for()
    wait_saved(page)
    screenshot(page, "41-builder-pipeline")
    screenshot(page, "41-builder-pipeline-dark", theme="dark")

    page.get_by_role("button", name="Publish…").click()
    page.get_by_label("Note").fill("Drawn by hand")
    page.locator("#publish-dialog").get_by_role("button", name="Publish").click()
    page.locator("#import-report", has_text="Published version 1").wait_for()
    # The versions menu stays shut: it would cover the checklist and the canvas toolbar.
    assert not page.locator("#versions-menu").evaluate("menu => menu.open")
    workflow = Workflow.objects.get(name="Drawn pipeline")
    assert workflow.versions.get().note == "Drawn by hand"

    page.get_by_role("button", name="Run", exact=True).click()
    page.get_by_label("Task").fill("green roofs")
    page.get_by_role("button", name="Run version 1").click()
    page.locator("#run-panel [data-live-timeline]").wait_for()
    for node_id in ids:
        page.locator(f'[data-testid="node-{node_id}"][data-status="done"]').wait_for(timeout=60_000)
    page.locator('#run-panel .badge[data-status="succeeded"]').wait_for(timeout=60_000)
    assert page.locator("#run-panel li[data-kind=message]").count() == 3
    assert "green roofs" in page.locator("#run-panel").inner_text().lower()
    screenshot(page, "42-builder-run-done")


def template_workflow(lab: Any) -> Workflow:
    from workflows.graph import examples
    from workflows.services.workflows import workflow_create

    agents = lab.agents
    return workflow_create(
        workspace=lab.workspace,
        user=None,
        name="Pipeline",
        graph=examples.research_pipeline(agents["Researcher"], agents["Analyst"], agents["Writer"]),
    )


def test_undo_brings_a_deleted_node_back_with_its_edges(lab: Any) -> None:
    page = lab
    workflow = template_workflow(lab)
    open_builder(page, workflow)
    before = graph_of(page)

    node(page, "analysis").click()
    page.keyboard.press("Delete")
    after = graph_of(page)
    assert "analysis" not in {n["id"] for n in after["nodes"]}
    assert len(after["edges"]) == len(before["edges"]) - 2

    page.keyboard.press("Control+z")
    restored = graph_of(page)
    assert restored["nodes"] == before["nodes"]
    assert sorted(e["id"] for e in restored["edges"]) == sorted(e["id"] for e in before["edges"])
    page.keyboard.press("Control+y")
    assert "analysis" not in {n["id"] for n in graph_of(page)["nodes"]}


def test_auto_layout_is_one_undo_step(lab: Any) -> None:
    page = lab
    workflow = template_workflow(lab)
    open_builder(page, workflow)
    positions = {n["id"]: n["position"] for n in graph_of(page)["nodes"]}

    page.get_by_role("button", name="Auto-layout").click()
    laid_out = {n["id"]: n["position"] for n in graph_of(page)["nodes"]}
    assert laid_out != positions
    # Top to bottom: every step sits below the one before it.
    order = ["start", "research", "analysis", "writing", "end"]
    assert [laid_out[i]["y"] for i in order] == sorted(laid_out[i]["y"] for i in order)

    page.keyboard.press("Control+z")
    assert {n["id"]: n["position"] for n in graph_of(page)["nodes"]} == positions


def test_an_invalid_graph_shows_its_errors_on_the_nodes_and_cannot_be_published(
    lab: Any,
) -> None:
    from workflows.graph import examples

    page = lab
    workflow = template_workflow(lab)
    agent = lab.agents["Researcher"]
    broken = {
        "schema_version": 1,
        "nodes": [
            examples.node("start", "start", 0, 0),
            examples.node(
                "triage",
                "router",
                0,
                150,
                routes=["billing", "other"],
                rules=[{"route": "billing", "operator": "contains", "value": "invoice"}],
                default_route="other",
            ),
            examples.node("billing", "agent", -150, 300, agent_id=agent),
            examples.node("ping", "agent", 150, 300, agent_id=agent),
            examples.node("pong", "agent", 150, 450, agent_id=agent),
            examples.node("end", "end", 0, 600),
        ],
        "edges": [
            examples.edge("start", "triage"),
            examples.edge("triage", "billing", "billing"),
            examples.edge("billing", "end"),
            examples.edge("ping", "pong"),
            examples.edge("pong", "ping"),
        ],
    }
    open_builder(page, workflow)
    page.evaluate("graph => document.getElementById('builder').setGraph(graph)", broken)

    checklist = page.get_by_test_id("checklist")
    checklist.locator('[data-code="unbounded_cycle"]').wait_for()
    assert checklist.locator('[data-node-id="triage"]').count() >= 1
    node(page, "triage").locator(".wf-badge--error").wait_for()
    node(page, "ping").locator(".wf-badge--error").wait_for()
    assert node(page, "billing").locator(".wf-badge--error").count() == 0
    screenshot(page, "43-builder-invalid")

    page.get_by_role("button", name="Publish…").click()
    page.locator("#publish-dialog").get_by_role("button", name="Publish").click()
    page.get_by_test_id("publish-refused").wait_for()
    assert workflow.versions.count() == 0
    # The checklist jumps to the node it names.
    checklist.locator('[data-focus-node="triage"]').first.click()
    assert "selected" in (node(page, "triage").locator("xpath=..").get_attribute("class") or "")
    # Opened again, the draft (saved with the refused publication) carries its badges before
    # anything is edited.
    open_builder(page, workflow)
    node(page, "triage").locator(".wf-badge--error").wait_for()


def test_a_reload_mid_edit_finds_the_draft_intact(lab: Any) -> None:
    page = lab
    workflow = template_workflow(lab)
    open_builder(page, workflow)
    added = page.evaluate("() => document.getElementById('builder').addNode('human')")
    # No waiting for the autosave: leaving the page sends what is pending.
    page.reload()
    page.locator('workflow-builder[data-ready="true"]').wait_for()
    node(page, added).wait_for()
    page.locator("#save-status", has_text="Draft saved at").wait_for()
    workflow.refresh_from_db()
    assert added in {n["id"] for n in workflow.draft["nodes"]}


def test_keyboard_only_add_and_connect_two_nodes(lab: Any) -> None:
    page = lab
    workflow = template_workflow(lab)
    open_builder(page, workflow)
    search = page.get_by_label("Search steps and agents")
    search.focus()
    page.keyboard.type("human")
    added: list[str] = []
    for _ in range(2):
        before = {n["id"] for n in graph_of(page)["nodes"]}
        search.focus()
        # From the search box, Tab reaches the first matching step; Enter adds it.
        page.keyboard.press("Tab")
        assert page.evaluate("() => document.activeElement.dataset.testid") == "palette-human"
        page.keyboard.press("Enter")
        added += new_nodes(page, before)
    first, second = added
    # The node just added has the focus: `c` opens the connect menu; pick the other one.
    node(page, second).wait_for()
    page.evaluate(f"() => document.getElementById('builder').focusNode({first!r})")
    page.wait_for_function(f"() => document.activeElement.dataset.id === {first!r}")
    page.keyboard.press("c")
    listbox = page.get_by_role("listbox", name="Target step")
    listbox.wait_for()
    for _ in range(20):
        if (
            page.locator(".wf-connect__list .is-active")
            .inner_text()
            .startswith(graph_label(page, second))
        ):
            break
        page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    edges = [(e["source"], e["target"]) for e in graph_of(page)["edges"]]
    assert (first, second) in edges
    screenshot(page, "44-builder-keyboard")


def graph_label(page: Any, node_id: str) -> str:
    return next(n["label"] or n["id"] for n in graph_of(page)["nodes"] if n["id"] == node_id)


def test_a_version_diff_and_the_run_page_graph(lab: Any) -> None:
    from workflows.services.workflows import workflow_publish

    page = lab
    workflow = template_workflow(lab)
    workflow_publish(workflow=workflow, user=None, note="First")
    draft = json.loads(json.dumps(workflow.draft))
    draft["nodes"] = [n for n in draft["nodes"] if n["id"] != "writing"]
    draft["edges"] = [e for e in draft["edges"] if "writing" not in (e["source"], e["target"])]
    draft["edges"].append({"id": "analysis-end", "source": "analysis", "target": "end"})
    Workflow.objects.filter(pk=workflow.pk).update(draft=draft)

    page.goto(f"/workflows/{workflow.pk}/diff/?from=1&to=draft")
    page.locator('workflow-builder[data-ready="true"]').wait_for()
    node(page, "writing").and_(page.locator('[data-mark="removed"]')).wait_for()
    assert page.locator('[data-change="node-removed"]').count() == 1
    screenshot(page, "45-builder-diff")


def test_templates_imports_and_restores_load_as_one_undo_step(lab: Any) -> None:
    from tests.workflows.test_builder_views import FIXTURES
    from workflows.services.workflows import workflow_publish

    page = lab
    workflow = template_workflow(lab)
    workflow_publish(workflow=workflow, user=None, note="First")
    open_builder(page, workflow)
    original = graph_of(page)

    page.get_by_text("Start from a template").click()
    page.get_by_role("menuitem", name="Panel vote").click()
    page.locator("#import-report", has_text="loaded into the draft").wait_for()
    assert any(n["type"] == "vote" for n in graph_of(page)["nodes"])
    page.keyboard.press("Control+z")
    assert graph_of(page) == original

    page.locator("#import-file").set_input_files(str(FIXTURES / "autogen_unsupported_parts.json"))
    page.locator("#import-report summary", has_text="notes about what was loaded").click()
    page.locator("#import-report li", has_text="Differs from AutoGen:").first.wait_for()
    assert any(n["type"] == "group_chat" for n in graph_of(page)["nodes"])
    screenshot(page, "46-builder-import-report")

    page.locator("#versions-menu summary").click()
    page.locator('[data-restore-version="1"]').click()
    page.locator("#import-report", has_text="Version 1 restored").wait_for()
    restored = graph_of(page)
    assert [n["id"] for n in restored["nodes"]] == [n["id"] for n in original["nodes"]]
    wait_saved(page)
    workflow.refresh_from_db()
    assert [n["id"] for n in workflow.draft["nodes"]] == [n["id"] for n in original["nodes"]]


def test_typing_in_a_property_is_one_undo_step(lab: Any) -> None:
    page = lab
    workflow = template_workflow(lab)
    open_builder(page, workflow)
    node(page, "analysis").click()
    label = page.locator("#node-panel").get_by_label("Label")
    label.click()
    label.press("End")
    page.keyboard.type(" and critique", delay=40)
    node(page, "analysis").get_by_text("Analysis and critique").wait_for()
    assert page.locator("#node-panel").get_by_label("Label").input_value() == (
        "Analysis and critique"
    )

    page.locator(".react-flow__pane").click(position={"x": 20, "y": 20})
    page.keyboard.press("Control+z")
    assert next(n for n in graph_of(page)["nodes"] if n["id"] == "analysis")["label"] == "Analysis"


def test_copy_paste_and_a_new_agent_from_the_palette(lab: Any) -> None:
    page = lab
    workflow = template_workflow(lab)
    open_builder(page, workflow)
    node(page, "research").click()
    node(page, "analysis").click(modifiers=["Shift"])
    before = {n["id"] for n in graph_of(page)["nodes"]}
    page.keyboard.press("Control+c")
    page.keyboard.press("Control+v")
    pasted = new_nodes(page, before)
    assert len(pasted) == 2
    graph = graph_of(page)
    assert any(e["source"] in pasted and e["target"] in pasted for e in graph["edges"])

    page.get_by_role("button", name="+ New agent").click()
    dialog = page.locator("#agent-dialog")
    dialog.get_by_label("Name").fill("Critic")
    dialog.get_by_label("Role").fill("a demanding critic")
    dialog.get_by_role("button", name="Create and add to canvas").click()
    # The new agent is in the palette and on the canvas, and the dialog closes by itself.
    page.wait_for_function(
        "() => document.getElementById('builder').getGraph().nodes.some(n => n.label === 'Critic')"
    )
    critic = agent_id(lab, "Critic")
    added = next(n for n in graph_of(page)["nodes"] if n["label"] == "Critic")
    assert added["config"]["agent_id"] == critic
    page.get_by_test_id(f"palette-agent-{critic}").wait_for()
    dialog.wait_for(state="hidden")
    screenshot(page, "47-builder-new-agent")


def agent_id(lab: Any, name: str) -> str:
    from agents.models import Agent

    return str(Agent.objects.get(workspace=lab.workspace, name=name).pk)


def test_back_edges_only_through_a_loop_and_drawn_as_loops(lab: Any) -> None:
    from workflows.graph import examples

    page = lab
    workflow = template_workflow(lab)
    agent = lab.agents["Writer"]
    looped = {
        "schema_version": 1,
        "nodes": [
            examples.node("start", "start", 0, 0),
            examples.node("refine", "loop", 250, 0, max_iterations=3),
            examples.node("draft", "agent", 500, 0, agent_id=agent),
            examples.node("polish", "agent", 750, 0, agent_id=agent),
            examples.node("end", "end", 1000, 0),
        ],
        "edges": [
            examples.edge("start", "refine"),
            examples.edge("refine", "draft", "loop"),
            examples.edge("draft", "refine"),
            examples.edge("refine", "polish", "done"),
            examples.edge("polish", "end"),
        ],
    }
    open_builder(page, workflow)
    page.evaluate("graph => document.getElementById('builder').setGraph(graph)", looped)
    page.get_by_test_id("checklist-ok").wait_for()
    back = page.get_by_test_id("edge-draft--refine")
    assert "wf-edge--loop" in (back.get_attribute("class") or "")
    assert "wf-edge--loop" not in (
        page.get_by_test_id("edge-polish--end").get_attribute("class") or ""
    )

    # Closing a cycle that no loop bounds is refused on the canvas itself.
    connect(page, "polish", "refine")
    edges = {(e["source"], e["target"]) for e in graph_of(page)["edges"]}
    assert ("polish", "refine") not in edges
    screenshot(page, "48-builder-loop")
