"""Drives the built island in Chromium with real mouse and keyboard input; prints what it checked."""

import json
import sys

from browser import OUT, page

JS_EL = "document.getElementById('builder')"
results = []


def check(name, ok, info=""):
    results.append((name, bool(ok)))
    print(("PASS " if ok else "FAIL ") + name + (f"  [{info}]" if info else ""))


def graph(pg):
    return pg.evaluate(f"{JS_EL}.getGraph()")


def counts(pg):
    g = graph(pg)
    return len(g["nodes"]), len(g["edges"])


def centre(box):
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def drag(pg, start, end, steps=12):
    pg.mouse.move(*start)
    pg.mouse.down()
    pg.mouse.move(start[0] + 3, start[1] + 3, steps=2)
    pg.mouse.move(*end, steps=steps)
    pg.mouse.up()
    pg.wait_for_timeout(150)


with page() as pg:
    n0, e0 = counts(pg)
    hidden = json.loads(pg.evaluate("document.getElementById('graph-input').value"))
    check("hidden input holds the graph on mount", hidden == graph(pg))

    # 1. Palette → canvas with a real HTML5 drag.
    pane = pg.locator(".react-flow__pane").bounding_box()
    target_point = (pane["x"] + pane["width"] * 0.75, pane["y"] + pane["height"] * 0.85)
    src = pg.locator("[data-testid=palette-agent-7d0c5a52-0000-4000-8000-000000000003]").bounding_box()
    drag(pg, centre(src), target_point, steps=20)
    pg.wait_for_timeout(300)
    g = graph(pg)
    added = [n for n in g["nodes"] if n["id"] == "agent-1"]
    check("drag from palette adds an agent node", len(g["nodes"]) == n0 + 1 and added, f"nodes {len(g['nodes'])}")
    if added:
        check("dropped node has agent_id and label", added[0]["config"]["agent_id"].endswith("3") and added[0]["label"] == "Writer")
        box = pg.locator("[data-testid=node-agent-1]").bounding_box()
        cx, cy = centre(box)
        check("node lands at the drop point", abs(cx - target_point[0]) < 40 and abs(cy - target_point[1]) < 40, f"{cx:.0f},{cy:.0f} vs {target_point[0]:.0f},{target_point[1]:.0f}")
    last_select = pg.evaluate("harness.events.filter(e => e.name === 'wf:select').at(-1)")
    check("wf:select fired for the new node", last_select and last_select["detail"]["nodeId"] == "agent-1")

    # 2. Connect by dragging from the new node's output to "Failed"'s input.
    out_handle = pg.locator("[data-testid=node-agent-1] .react-flow__handle.source").bounding_box()
    in_handle = pg.locator("[data-testid=node-oops] .react-flow__handle.target").bounding_box()
    drag(pg, centre(out_handle), centre(in_handle), steps=25)
    g = graph(pg)
    check("dragging handle to handle connects", any(e["source"] == "agent-1" and e["target"] == "oops" for e in g["edges"]), f"edges {len(g['edges'])}")

    # 2b. A cycle without a loop is refused: Write → Research.
    before = len(graph(pg)["edges"])
    out_handle = pg.locator("[data-testid=node-write] .react-flow__handle.source").bounding_box()
    in_handle = pg.locator("[data-testid=node-research] .react-flow__handle.target").bounding_box()
    drag(pg, centre(out_handle), centre(in_handle), steps=25)
    check("a cycle without a loop is refused", len(graph(pg)["edges"]) == before)

    # 3. Delete an edge with its hover button.
    pg.screenshot(path=f"{OUT}/01-after-connect.png")
    edge = pg.locator("[data-testid=edge-e-write-end]")
    label_box = None
    # Hover the middle of the path: React Flow's wide interaction path lies under it.
    mid = pg.evaluate("""() => { const p = document.querySelector('[data-testid=edge-e-write-end]');
        const pt = p.getPointAtLength(p.getTotalLength() / 2); const m = p.getScreenCTM();
        return [pt.x * m.a + m.e, pt.y * m.d + m.f]; }""")
    pg.mouse.move(mid[0] + 30, mid[1] - 30)
    pg.mouse.move(mid[0], mid[1], steps=5)
    pg.wait_for_timeout(150)
    button = pg.locator("[data-testid=edge-label-e-write-end] [aria-label='Delete edge']")
    check("hovering an edge shows the delete button", button.count() == 1 and button.is_visible())
    pg.screenshot(path=f"{OUT}/02-edge-hover.png")
    if button.count():
        button.click()
        pg.wait_for_timeout(150)
    check("the delete button removes the edge", not any(e["id"] == "e-write-end" for e in graph(pg)["edges"]))

    # 4. Select an edge by clicking it, then the Delete key.
    # Away from the midpoint, where the hover button sits.
    mid = pg.evaluate("""() => { const p = document.querySelector('[data-testid=edge-e-start-research]');
        const pt = p.getPointAtLength(p.getTotalLength() * 0.25); const m = p.getScreenCTM();
        return [pt.x * m.a + m.e, pt.y * m.d + m.f]; }""")
    pg.mouse.click(mid[0], mid[1])
    pg.wait_for_timeout(100)
    check("clicking an edge selects it", pg.locator(".react-flow__edge.selected").count() == 1)
    pg.keyboard.press("Delete")
    pg.wait_for_timeout(150)
    check("Delete removes the selected edge", not any(e["id"] == "e-start-research" for e in graph(pg)["edges"]))

    # 5. Undo / redo from the keyboard (focus is on the canvas after the clicks).
    pg.keyboard.press("Control+z")
    pg.wait_for_timeout(100)
    check("Ctrl+Z restores the edge", any(e["id"] == "e-start-research" for e in graph(pg)["edges"]))
    pg.keyboard.press("Control+z")
    pg.wait_for_timeout(100)
    check("Ctrl+Z again restores the hover-deleted edge", any(e["id"] == "e-write-end" for e in graph(pg)["edges"]))
    pg.keyboard.press("Control+y")
    pg.wait_for_timeout(100)
    check("Ctrl+Y redoes", not any(e["id"] == "e-write-end" for e in graph(pg)["edges"]))
    pg.keyboard.press("Control+Shift+z")
    pg.wait_for_timeout(100)
    check("Ctrl+Shift+Z redoes", not any(e["id"] == "e-start-research" for e in graph(pg)["edges"]))
    pg.locator(".wf-toolbar button", has_text="Undo").click()
    check("toolbar Undo works", any(e["id"] == "e-start-research" for e in graph(pg)["edges"]))

    # 6. Drag a node: one history entry for the whole drag.
    box = pg.locator("[data-testid=node-peer]").bounding_box()
    pos_before = next(n for n in graph(pg)["nodes"] if n["id"] == "peer")["position"]
    changes_before = pg.evaluate("harness.events.filter(e => e.name === 'wf:change').length")
    drag(pg, (box["x"] + 30, box["y"] + 20), (box["x"] - 120, box["y"] + 60), steps=20)
    pos_after = next(n for n in graph(pg)["nodes"] if n["id"] == "peer")["position"]
    changes_after = pg.evaluate("harness.events.filter(e => e.name === 'wf:change').length")
    check("dragging a node moves it and fires one wf:change", pos_after != pos_before and changes_after == changes_before + 1, f"{changes_after - changes_before} changes")
    pg.keyboard.press("Control+z")
    pg.wait_for_timeout(100)
    check("one undo puts the dragged node back", next(n for n in graph(pg)["nodes"] if n["id"] == "peer")["position"] == pos_before)

    # 7. Shift-click multi-select, copy, paste.
    if not any(e["source"] == "write" and e["target"] == "end" for e in graph(pg)["edges"]):
        pg.evaluate(f"{JS_EL}.connect('write', 'end')")
    pg.locator("[data-testid=node-write]").click()
    pg.locator("[data-testid=node-end]").click(modifiers=["Shift"])
    pg.wait_for_timeout(100)
    check("shift-click selects several nodes", pg.locator(".react-flow__node.selected").count() == 2)
    n1, e1 = counts(pg)
    pg.keyboard.press("Control+c")
    pg.keyboard.press("Control+v")
    pg.wait_for_timeout(200)
    g = graph(pg)
    new_ids = [n["id"] for n in g["nodes"][n1:]]
    check("copy/paste adds renamed copies", len(g["nodes"]) == n1 + 2 and "write" not in new_ids, str(new_ids))
    check("paste copies the edge between the copied nodes", len(g["edges"]) == e1 + 1 and g["edges"][-1]["source"] in new_ids, json.dumps(g["edges"][-1]))
    pg.screenshot(path=f"{OUT}/03-paste.png")

    # 8. Keyboard-only: palette item → Enter adds, 'c' opens the connect menu, Enter connects.
    n2, e2 = counts(pg)
    item = pg.locator("[data-testid=palette-tool]")
    item.focus()
    pg.keyboard.press("ArrowUp")
    pg.keyboard.press("ArrowDown")
    focused = pg.evaluate("document.activeElement.dataset.testid")
    check("arrow keys move through the palette", focused == "palette-tool", focused)
    pg.keyboard.press("Enter")
    pg.wait_for_timeout(400)
    g = graph(pg)
    tool_id = g["nodes"][-1]["id"]
    check("Enter on a palette item adds the node", len(g["nodes"]) == n2 + 1 and g["nodes"][-1]["type"] == "tool", tool_id)
    active = pg.evaluate("document.activeElement.closest('.react-flow__node')?.dataset.id")
    check("the added node has keyboard focus", active == tool_id, str(active))
    pg.keyboard.press("c")
    pg.wait_for_timeout(150)
    menu = pg.locator(".wf-connect [role=listbox]")
    check("'c' opens the connect listbox, focused", menu.count() == 1 and pg.evaluate("document.activeElement.getAttribute('role')") == "listbox")
    pg.screenshot(path=f"{OUT}/04-connect-menu.png")
    first = pg.locator(".wf-connect [role=option]").first.inner_text().split("\n")[0]
    pg.keyboard.press("ArrowDown")
    second = pg.locator(".wf-connect [role=option][aria-selected=true]").inner_text().split("\n")[0]
    pg.keyboard.press("Enter")
    pg.wait_for_timeout(150)
    g = graph(pg)
    check("Enter connects to the chosen target", len(g["edges"]) == e2 + 1 and g["edges"][-1]["source"] == tool_id, f"{first} / {second} -> {g['edges'][-1]}")
    check("the menu closes and focus returns to the node", pg.locator(".wf-connect").count() == 0 and pg.evaluate("document.activeElement.closest('.react-flow__node')?.dataset.id") == tool_id)

    # 9. Shortcuts are ignored while typing in an input.
    pg.locator(".wf-palette__search").fill("")
    pg.locator(".wf-palette__search").focus()
    before = counts(pg)
    pg.keyboard.press("Control+z")
    check("Ctrl+Z in the search box does not undo", counts(pg) == before)
    pg.locator(".wf-palette__search").fill("vote")
    check("palette search filters", pg.locator(".wf-palette__item").count() == 1)
    pg.locator(".wf-palette__search").fill("")

    # 10. Auto-layout is one entry.
    before = graph(pg)
    pg.locator(".wf-toolbar button", has_text="Auto-layout").click()
    pg.wait_for_timeout(700)
    after = graph(pg)
    check("auto-layout moves nodes", [n["position"] for n in after["nodes"]] != [n["position"] for n in before["nodes"]])
    pg.screenshot(path=f"{OUT}/05-auto-layout.png")
    pg.keyboard.press("Escape")
    pg.locator(".react-flow__pane").click(position={"x": 5, "y": 5})
    pg.keyboard.press("Control+z")
    pg.wait_for_timeout(200)
    check("one undo reverts the auto-layout", graph(pg) == before)

    # 11. New agent button, events from the page.
    pg.evaluate("window.gotNewAgent = 0; document.addEventListener('wf:new-agent', () => window.gotNewAgent++)")
    pg.locator(".wf-palette__new").click()
    check("New agent dispatches wf:new-agent", pg.evaluate("window.gotNewAgent") == 1)
    pg.evaluate("""document.dispatchEvent(new CustomEvent('wf:agent-created', {detail: {agent: {id: 'new-agent', name: 'Critic', model: 'demo/x', role: 'Criticises'}}}))""")
    pg.wait_for_timeout(300)
    g = graph(pg)
    check("wf:agent-created adds the agent to the palette and a node", g["nodes"][-1]["config"].get("agent_id") == "new-agent" and pg.locator("[data-testid=palette-agent-new-agent]").count() == 1)
    new_id = g["nodes"][-1]["id"]
    pg.evaluate(f"""document.dispatchEvent(new CustomEvent('wf:node-updated', {{detail: {{id: '{new_id}', label: 'Critic review', config: {{agent_id: 'new-agent', error_policy: {{action: 'error_branch'}}}}}}}}))""")
    pg.wait_for_timeout(200)
    handles = pg.locator(f"[data-testid=node-{new_id}] .react-flow__handle.source").count()
    check("wf:node-updated relabels and adds the error handle", graph(pg)["nodes"][-1]["label"] == "Critic review" and handles == 2, f"handles {handles}")

    # 12. Router loses a route: its edge stays, drawn as dangling.
    router = next(n for n in graph(pg)["nodes"] if n["id"] == "check")
    pg.evaluate(f"{JS_EL}.updateNode('check', {{config: {json.dumps({**router['config'], 'routes': ['enough']})}}})")
    pg.wait_for_timeout(200)
    cls = pg.locator("[data-testid=edge-e-check-refine-more]").get_attribute("class")
    check("an edge whose handle vanished stays and is drawn dangling", "wf-edge--dangling" in cls, cls)

    # 13. Decorations.
    pg.evaluate(f"""{JS_EL}.setStatuses({{start: 'done', research: 'done', check: 'running', oops: 'skipped', write: 'failed'}});
        {JS_EL}.setIssues({{review: [{{level: 'error', code: 'x', message: 'Approval needs both branches wired.'}}, {{level: 'warning', code: 'y', message: 'No timeout set.'}}], refine: [{{level: 'warning', code: 'w', message: 'Loop has no condition.'}}]}}, {{'e-write-end': [{{level: 'error', message: 'bad'}}]}});""")
    pg.evaluate(f"{JS_EL}.fitView()")
    pg.wait_for_timeout(500)
    check("running node class and animated incoming edge", pg.locator("[data-testid=node-check].wf-status--running").count() == 1 and pg.locator(".react-flow__edge.animated").count() >= 1)
    badge = pg.locator("[data-testid=node-review] .wf-badge")
    check("issue badge with count and messages", badge.inner_text() == "2" and "No timeout set." in badge.get_attribute("title"))
    pg.screenshot(path=f"{OUT}/06-status-issues-light.png")
    pg.evaluate("document.documentElement.dataset.theme = 'dark'")
    pg.wait_for_timeout(200)
    pg.screenshot(path=f"{OUT}/07-status-issues-dark.png")
    pg.evaluate(f"{JS_EL}.focusNode('write')")
    pg.wait_for_timeout(500)
    check("focusNode selects and focuses", pg.evaluate("document.activeElement.closest('.react-flow__node')?.dataset.id") == "write")
    input_graph = json.loads(pg.evaluate("document.getElementById('graph-input').value"))
    check("hidden input follows every change", input_graph == graph(pg))
    errors = [e for e in pg.errors if "404" not in e]
    check("no console errors or warnings", not errors, "; ".join(errors[:5]))

with page() as pg:
    # Multi-node drag: shift-click two nodes, drag one, both move; one change, one undo.
    pg.locator("[data-testid=node-write]").click()
    pg.locator("[data-testid=node-end]").click(modifiers=["Shift"])
    before = graph(pg)
    changes_before = pg.evaluate("harness.events.filter(e => e.name === 'wf:change').length")
    box = pg.locator("[data-testid=node-write]").bounding_box()
    drag(pg, (box["x"] + 40, box["y"] + 20), (box["x"] + 240, box["y"] + 10), steps=20)
    after = graph(pg)
    moved = [n["id"] for n, m in zip(before["nodes"], after["nodes"]) if n["position"] != m["position"]]
    changes = pg.evaluate("harness.events.filter(e => e.name === 'wf:change').length") - changes_before
    check("dragging a multi-selection moves all of it, one wf:change", sorted(moved) == ["end", "write"] and changes == 1, f"{moved} {changes}")
    pg.keyboard.press("Control+z")
    check("one undo puts the whole selection back", graph(pg) == before)
    # Shift-drag on the pane draws a selection box.
    pane = pg.locator(".react-flow__pane").bounding_box()
    a = pg.locator("[data-testid=node-start]").bounding_box()
    b = pg.locator("[data-testid=node-research]").bounding_box()
    pg.locator(".react-flow__pane").click(position={"x": 5, "y": 5})
    pg.keyboard.down("Shift")
    drag(pg, (a["x"] - 30, a["y"] - 20), (b["x"] + b["width"] + 20, b["y"] + b["height"] + 10), steps=15)
    pg.keyboard.up("Shift")
    selected = sorted(pg.evaluate("[...document.querySelectorAll('.react-flow__node.selected')].map(n => n.dataset.id)"))
    check("shift-drag box selects the nodes inside", selected == ["research", "start"], str(selected))
    pg.keyboard.press("Delete")
    pg.wait_for_timeout(150)
    g = graph(pg)
    check("Delete removes selected nodes with their edges (one entry)", not any(n["id"] in ("start", "research") for n in g["nodes"]) and not any("research" in (e["source"], e["target"]) for e in g["edges"]))
    pg.keyboard.press("Control+z")
    check("and one undo brings them back", graph(pg) == before)

    # Lifecycle: calls before connect are queued; stale children are cleared; disconnect unmounts.
    result = pg.evaluate("""() => {
        const el = document.createElement('workflow-builder');
        el.id = 'second'; el.style.height = '200px';
        el.innerHTML = '<div class="wf-mount">dead copy from history</div>' +
          '<script type="application/json" data-builder="graph">{"schema_version":1,"nodes":[],"edges":[],"variables":[{"name":"x","type":"string"}]}<' + '/script>' +
          '<script type="application/json" data-builder="catalog">' + JSON.stringify(harness.catalog) + '<' + '/script>';
        const early = el.addNode('start', {position: {x: 0, y: 0}});
        document.body.appendChild(el);
        const mounts = el.querySelectorAll('.wf-mount').length;
        const stale = el.textContent.includes('dead copy');
        const out = {early, mounts, stale, ready: el.dataset.ready, count: el.nodeCount(), vars: el.getGraph().variables.length};
        el.remove();
        out.afterRemove = el.querySelectorAll('.wf-mount').length;
        out.readyAfter = el.dataset.ready || null;
        document.dispatchEvent(new CustomEvent('wf:set-graph', {detail: {graph: {schema_version: 1, nodes: [], edges: []}, target: 'second'}}));
        return out; }""")
    check("calls before connect are queued, stale children removed, disconnect unmounts",
          result["early"] is None and result["mounts"] == 1 and not result["stale"] and result["count"] == 1 and result["vars"] == 1 and result["afterRemove"] == 0 and result["readyAfter"] is None, json.dumps(result))
    check("targeted wf:set-graph leaves the main builder alone", graph(pg) == before)
    pg.locator("[data-testid=node-write]").click()
    pg.evaluate(f"""() => {{ const g = {JS_EL}.getGraph(); g.nodes.forEach(n => n.position.x += 50);
        g.nodes.push({{id: 'fresh', type: 'agent', label: 'Fresh', position: {{x: 0, y: 900}}, config: {{}}}});
        document.dispatchEvent(new CustomEvent('wf:set-graph', {{detail: {{graph: g}}}})); }}""")
    pg.wait_for_timeout(600)
    hidden_nodes = pg.evaluate("[...document.querySelectorAll('.react-flow__node')].filter(n => getComputedStyle(n).visibility !== 'visible').length")
    check("wf:set-graph replaces the graph: all nodes shown, selection cleared, one undo step",
          hidden_nodes == 0 and pg.locator(".react-flow__node.selected").count() == 0 and len(graph(pg)["nodes"]) == len(before["nodes"]) + 1
          and pg.locator("[data-testid=node-fresh]").inner_text().endswith("Choose an agent"))
    pg.keyboard.press("Control+z")
    check("undo of setGraph restores the previous graph", graph(pg) == before)
    pg.evaluate(f"{JS_EL}.setGraph({{schema_version: 1, nodes: [], edges: [], output: 'x'}}, {{record: false}})")
    check("setGraph with record false: no undo step, hidden input updated",
          not pg.evaluate(f"{JS_EL}.canUndo()") and json.loads(pg.evaluate("document.getElementById('graph-input').value"))["output"] == "x")
    errors = [e for e in pg.errors if "404" not in e]
    check("no console errors or warnings (second page)", not errors, "; ".join(errors[:5]))

with page("?readonly&theme=dark") as pg:
    pg.screenshot(path=f"{OUT}/08-readonly-dark.png")
    check("readonly: no palette, only Fit view", pg.locator(".wf-palette").count() == 0 and pg.locator(".wf-toolbar button").all_inner_texts() == ["Fit view"])
    box = pg.locator("[data-testid=node-peer]").bounding_box()
    before = graph(pg)
    drag(pg, (box["x"] + 30, box["y"] + 20), (box["x"] - 120, box["y"] + 60))
    pg.locator("[data-testid=node-write]").click()
    pg.keyboard.press("Delete")
    pg.keyboard.press("ArrowRight")
    pg.keyboard.press("Control+z")
    check("readonly: nodes neither move (mouse or arrows) nor delete", graph(pg) == before)
    check("readonly: clicking still selects (for the run page)", pg.locator(".react-flow__node.selected").count() == 1)
    pg.evaluate(f"{JS_EL}.setMarks({{nodes: {{peer: 'added', oops: 'removed', check: 'changed'}}, edges: {{'e-research-oops-error': 'removed', 'e-check-review-enough': 'changed'}}}})")
    pg.wait_for_timeout(200)
    pg.screenshot(path=f"{OUT}/09-diff-marks-dark.png")
    check("diff marks on nodes", pg.locator(".wf-mark--added").count() >= 1)

with page("?empty") as pg:
    check("empty canvas shows the hint", pg.locator(".wf-hint").is_visible())
    pg.screenshot(path=f"{OUT}/10-empty-light.png")

failed = [name for name, ok in results if not ok]
print(f"\n{len(results) - len(failed)}/{len(results)} checks passed")
sys.exit(1 if failed else 0)
