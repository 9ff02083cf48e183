"""The builder canvas with 200 nodes in headless Chromium: frame times while panning and dragging.

Serves the committed bundle (static/builder/) and the app's stylesheet from a loopback HTTP
server, mounts <workflow-builder> on a generated 200-node graph (agents wired in sequence),
then drives real mouse input through Playwright while a requestAnimationFrame loop records
every frame:
  pan   drag the empty canvas back and forth (the viewport moves, every node re-positions)
  drag  drag one node across the canvas (the node and its edges re-render)
Headless Chromium renders in software on this machine's CPU, so the figures are a floor for what
a laptop with a GPU shows. Loopback only; bounded counts.

    python bench/builder_frames.py [--nodes 200]

The last line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.chromium import CHROMIUM, CHROMIUM_ARGS  # noqa: E402


def big_graph(count: int) -> dict[str, Any]:
    """Start, `count - 2` agents in rows of ten wired in sequence, end."""
    nodes: list[dict[str, Any]] = [
        {"id": "start", "type": "start", "label": "Start", "position": {"x": -250, "y": 0}}
    ]
    edges: list[dict[str, Any]] = []
    previous = "start"
    for index in range(count - 2):
        node_id = f"agent-{index + 1}"
        nodes.append(
            {
                "id": node_id,
                "type": "agent",
                "label": f"Agent {index + 1}",
                "position": {"x": (index % 10) * 260, "y": (index // 10) * 140},
                "config": {"agent_id": f"a{index % 5}"},
            }
        )
        edges.append({"id": f"e-{previous}-{node_id}", "source": previous, "target": node_id})
        previous = node_id
    nodes.append({"id": "end", "type": "end", "label": "End", "position": {"x": 2700, "y": 0}})
    edges.append({"id": f"e-{previous}-end", "source": previous, "target": "end"})
    return {"schema_version": 1, "nodes": nodes, "edges": edges}


def catalog() -> dict[str, Any]:
    import os

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "a2a_site.settings")
    django.setup()
    from workflows.graph import NODE_TYPES

    return {
        "node_types": [
            {
                "type": t.type,
                "label": t.label,
                "group": t.group,
                "description": t.description,
                "min_in": t.min_in,
                "max_in": t.max_in,
                "min_out": t.min_out,
                "max_out": t.max_out,
                "fan_out": t.fan_out,
                "default_config": dict(t.default_config),
            }
            for t in NODE_TYPES.values()
        ],
        "agents": [
            {"id": f"a{i}", "name": f"Agent {i}", "model": "demo", "role": ""} for i in range(5)
        ],
        "can_edit": True,
    }


PAGE = """<!doctype html><html><head><meta charset="utf-8">
<link rel="stylesheet" href="/static/css/app.css">
<link rel="stylesheet" href="/static/builder/workflow-builder.css">
<script src="/static/builder/workflow-builder.js" defer></script>
<style>
html, body {{ margin: 0; height: 100%; }}
workflow-builder {{ display: block; height: 100vh; }}
</style>
</head><body>
<workflow-builder id="builder">
<script type="application/json" data-builder="graph">{graph}</script>
<script type="application/json" data-builder="catalog">{catalog}</script>
</workflow-builder></body></html>"""

RECORDER = """() => {
  window.__frames = [];
  let last = performance.now();
  function tick(now) {
    window.__frames.push(now - last);
    last = now;
    window.__raf = requestAnimationFrame(tick);
  }
  window.__raf = requestAnimationFrame(tick);
}"""


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def measure(page: Any, action: Any) -> dict[str, float]:
    page.evaluate(RECORDER)
    action()
    frames = page.evaluate("() => { cancelAnimationFrame(window.__raf); return window.__frames; }")
    frames = frames[1:]  # the first delta includes the time before recording began
    return {
        "frames": len(frames),
        "p50_ms": round(percentile(frames, 0.5), 1),
        "p95_ms": round(percentile(frames, 0.95), 1),
        "max_ms": round(max(frames), 1),
        "over_50ms": sum(1 for frame in frames if frame > 50),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=200)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    site = Path(tempfile.mkdtemp(prefix="builder-bench-"))
    try:
        (site / "static").symlink_to(ROOT / "static")
        graph = big_graph(args.nodes)
        (site / "index.html").write_text(
            PAGE.format(
                graph=json.dumps(graph).replace("</", "<\\/"),
                catalog=json.dumps(catalog()).replace("</", "<\\/"),
            )
        )
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
        handler.log_message = lambda *a: None  # type: ignore[attr-defined]
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            started = time.perf_counter()
            page.goto(url)
            page.wait_for_selector('workflow-builder[data-ready="true"]')
            page.wait_for_selector(".react-flow__node")
            mount_ms = (time.perf_counter() - started) * 1000
            rendered = page.locator(".react-flow__node").count()
            pane = page.locator(".react-flow__pane").bounding_box()
            assert pane is not None
            cx, cy = pane["x"] + pane["width"] / 2, pane["y"] + pane["height"] / 2

            def pan() -> None:
                for _ in range(3):
                    page.mouse.move(cx, cy)
                    page.mouse.down()
                    page.mouse.move(cx - 400, cy - 250, steps=60)
                    page.mouse.move(cx + 300, cy + 200, steps=60)
                    page.mouse.up()

            pan_figures = measure(page, pan)
            page.evaluate("() => document.getElementById('builder').fitView()")
            node = page.locator('[data-testid="node-agent-55"]').first
            box = node.bounding_box()
            assert box is not None

            def drag() -> None:
                x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
                page.mouse.move(x, y)
                page.mouse.down()
                page.mouse.move(x + 300, y + 150, steps=90)
                page.mouse.up()

            drag_figures = measure(page, drag)
            browser.close()
        server.shutdown()
    finally:
        shutil.rmtree(site, ignore_errors=True)

    print(f"{args.nodes} nodes, {len(graph['edges'])} edges; {rendered} nodes rendered")
    print(f"mount to first nodes: {mount_ms:.0f} ms")
    for name, figures in (("pan", pan_figures), ("node drag", drag_figures)):
        print(
            f"{name}: {figures['frames']} frames, p50 {figures['p50_ms']} ms, "
            f"p95 {figures['p95_ms']} ms, max {figures['max_ms']} ms, "
            f"{figures['over_50ms']} over 50 ms"
        )
    print(
        json.dumps(
            {
                "nodes": args.nodes,
                "mount_ms": round(mount_ms),
                "pan_frame_p50_ms": pan_figures["p50_ms"],
                "pan_frame_p95_ms": pan_figures["p95_ms"],
                "drag_frame_p50_ms": drag_figures["p50_ms"],
                "drag_frame_p95_ms": drag_figures["p95_ms"],
                "frames_over_50ms": pan_figures["over_50ms"] + drag_figures["over_50ms"],
            }
        )
    )


if __name__ == "__main__":
    main()
