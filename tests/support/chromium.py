"""How the browser tests and benchmarks start Debian's Chromium on this offline machine."""

from __future__ import annotations

import os

CHROMIUM = os.environ.get("A2A_CHROMIUM", "/usr/bin/chromium")

# Chromium's background services would try to reach the network, which this machine does not have.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
