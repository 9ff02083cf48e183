"""fakellm servers on loopback for the gateway tests, plus a fake clock that sleeps instantly."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from agents.fakellm import RunningServer, start_in_thread
from agents.llm import Deployment

API_KEY = "sk-test-SECRET-0123456789abcdef"
HELLO = [{"role": "user", "content": "Say hello"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
TIME_TOOL = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}},
    },
}


class FakeTime:
    """An injectable clock and sleep: sleeping advances the clock and records the delay."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="session")
def _servers() -> Iterator[tuple[RunningServer, RunningServer]]:
    with start_in_thread(name="node-a") as a, start_in_thread(name="node-b") as b:
        yield a, b


@pytest.fixture
def fake(_servers: tuple[RunningServer, RunningServer]) -> RunningServer:
    server = _servers[0]
    server.set_script(None)
    server.reset()
    return server


@pytest.fixture
def fake_b(_servers: tuple[RunningServer, RunningServer]) -> RunningServer:
    server = _servers[1]
    server.set_script(None)
    server.reset()
    return server


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


def openai_dep(server: RunningServer, dep_id: str = "dep-a", **kwargs: Any) -> Deployment:
    values: dict[str, Any] = {
        "id": dep_id,
        "provider_kind": "openai",
        "model": "gpt-4o-mini",
        "base_url": server.base_urls["openai"],
        "api_key": API_KEY,
    }
    values.update(kwargs)
    return Deployment(**values)
