"""A fake LLM server on loopback for the provider, node and agent tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agents.fakellm import RunningServer, start_in_thread


@pytest.fixture
def llm_server(settings) -> Iterator[RunningServer]:
    """A fresh fake provider; loopback is allow-listed as an administrator would for local nodes."""
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    with start_in_thread(name="node-a") as server:
        settings.DEMO_MODEL_URL = server.url
        yield server
