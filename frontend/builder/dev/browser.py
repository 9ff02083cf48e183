"""Shared Playwright setup for the dev checks: system Chromium, the harness served locally."""

import contextlib
import os

from playwright.sync_api import sync_playwright

BASE = os.environ.get("HARNESS", "http://127.0.0.1:8765/frontend/builder/harness.html")
ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
OUT = os.path.join(os.path.dirname(__file__), "out")


@contextlib.contextmanager
def page(query="", width=1400, height=900):
    os.makedirs(OUT, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        context = browser.new_context(viewport={"width": width, "height": height})
        pg = context.new_page()
        pg.errors = []
        pg.on("console", lambda m: pg.errors.append(f"console.{m.type}: {m.text}") if m.type in ("error", "warning") else None)
        pg.on("pageerror", lambda e: pg.errors.append(f"pageerror: {e}"))
        pg.goto(BASE + query)
        pg.wait_for_selector("workflow-builder[data-ready=true] .react-flow__node")
        pg.wait_for_timeout(400)
        try:
            yield pg
        finally:
            browser.close()
