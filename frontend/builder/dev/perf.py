"""Frame times while panning a 200-node graph with the mouse: requestAnimationFrame deltas."""

import statistics
import sys

from browser import OUT, page

N = int(sys.argv[1]) if len(sys.argv) > 1 else 200

with page(f"?big={N}") as pg:
    count = pg.evaluate("document.getElementById('builder').nodeCount()")
    rendered = pg.locator(".react-flow__node").count()
    pg.screenshot(path=f"{OUT}/11-big-{N}.png")
    pane = pg.locator(".react-flow__pane").bounding_box()
    x0, y0 = pane["x"] + pane["width"] * 0.5, pane["y"] + pane["height"] * 0.5

    def record(action):
        pg.evaluate("""() => { window.frames_ = []; let last = performance.now();
            const tick = (t) => { window.frames_.push(t - last); last = t; if (window.recording) requestAnimationFrame(tick); };
            window.recording = true; requestAnimationFrame(tick); }""")
        action()
        pg.evaluate("window.recording = false")
        frames = sorted(pg.evaluate("window.frames_.slice(2)"))
        return len(frames), statistics.median(frames), frames[int(len(frames) * 0.95) - 1], frames[-1]

    def pan(x, y, steps=240):
        pg.mouse.move(x, y)
        pg.mouse.down()
        for i in range(steps):
            dx = 300 * ((i % 120) / 120 if (i // 120) % 2 == 0 else 1 - (i % 120) / 120)
            pg.mouse.move(x + dx, y + dx / 3)
            pg.wait_for_timeout(8)
        pg.mouse.up()

    def report(name, stats):
        print(f"{name}: nodes={count} frames={stats[0]} p50={stats[1]:.1f}ms p95={stats[2]:.1f}ms max={stats[3]:.1f}ms")

    # Fitted (all 200 on screen, zoomed out): start on empty pane between nodes.
    hit = pg.evaluate(f"document.elementFromPoint({x0}, {y0}).className")
    report(f"pan, whole graph visible (start on {hit.split()[0]})", record(lambda: pan(x0, y0)))
    # At 100 % zoom, where nodes are full size; pan from the empty area above the first row.
    pg.evaluate("document.getElementById('builder')")
    pg.mouse.move(x0, y0)
    for _ in range(12):
        pg.mouse.wheel(0, -120)
        pg.wait_for_timeout(30)
    pg.wait_for_timeout(300)
    zoom = pg.evaluate("document.querySelector('.react-flow__viewport').style.transform")
    spot = pg.evaluate("""() => { const pane = document.querySelector('.react-flow__pane').getBoundingClientRect();
        for (let y = pane.top + 20; y < pane.bottom - 20; y += 10) for (let x = pane.left + 20; x < pane.right - 300; x += 10) {
          const el = document.elementFromPoint(x, y); if (el && el.classList.contains('react-flow__pane')) return [x, y]; }
        return null; }""")
    visible = pg.evaluate("[...document.querySelectorAll('.react-flow__node')].filter(n => { const r = n.getBoundingClientRect(); return r.right > 0 && r.left < innerWidth && r.bottom > 0 && r.top < innerHeight; }).length")
    report(f"pan at {zoom.split('scale')[1]} zoom, {visible} nodes on screen", record(lambda: pan(*spot)))
    pg.screenshot(path=f"{OUT}/12-big-{N}-zoomed.png")
    # Dragging one node across the canvas: the path that re-renders on every frame.
    node = pg.evaluate("""() => { for (const n of document.querySelectorAll('.react-flow__node')) { const r = n.getBoundingClientRect();
        if (r.left > 300 && r.right < innerWidth - 400 && r.top > 60 && r.bottom < innerHeight - 300) return {x: r.left, y: r.top}; } return null; }""")
    def drag_node():
        pg.mouse.move(node["x"] + 20, node["y"] + 15)
        pg.mouse.down()
        for i in range(180):
            pg.mouse.move(node["x"] + 20 + i * 2, node["y"] + 15 + i)
            pg.wait_for_timeout(8)
        pg.mouse.up()
    report("drag one node", record(drag_node))
    print("undo entries after the drag:", pg.evaluate("document.getElementById('builder').canUndo()"))
    errors = [e for e in pg.errors if "404" not in e]
    print("console:", errors[:5])
