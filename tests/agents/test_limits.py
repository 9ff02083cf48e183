"""Per-agent limits wait for the window to free up, and give up with a clear error."""

from __future__ import annotations

import asyncio

import pytest

from agents.llm import LLMError
from agents.services.limits import AgentLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_requests_per_minute_wait_for_the_oldest_to_leave_the_window() -> None:
    clock = Clock()
    limiter = AgentLimiter(clock=clock, sleep=clock.sleep)

    async def three_calls() -> None:
        for _ in range(3):
            await limiter.acquire("a", rpm=2, tpm=None, tokens=10, max_wait_s=120)
            clock.now += 1

    asyncio.run(three_calls())
    assert clock.slept == [58.0]


def test_tokens_per_minute_count_what_was_sent() -> None:
    clock = Clock()
    limiter = AgentLimiter(clock=clock, sleep=clock.sleep)

    async def calls() -> None:
        await limiter.acquire("a", rpm=None, tpm=1000, tokens=700, max_wait_s=120)
        await limiter.acquire("a", rpm=None, tpm=1000, tokens=700, max_wait_s=120)

    asyncio.run(calls())
    assert clock.slept == [60.0]


def test_a_wait_longer_than_allowed_fails_as_a_rate_limit() -> None:
    clock = Clock()
    limiter = AgentLimiter(clock=clock, sleep=clock.sleep)

    async def calls() -> None:
        await limiter.acquire("a", rpm=1, tpm=None, tokens=1, max_wait_s=5)
        await limiter.acquire("a", rpm=1, tpm=None, tokens=1, max_wait_s=5)

    with pytest.raises(LLMError) as caught:
        asyncio.run(calls())
    assert caught.value.kind == "rate_limit"
    assert "limit of 1 requests per minute" in str(caught.value)
    assert clock.slept == []


def test_agents_have_separate_windows_and_no_limit_means_no_wait() -> None:
    clock = Clock()
    limiter = AgentLimiter(clock=clock, sleep=clock.sleep)

    async def calls() -> None:
        await limiter.acquire("a", rpm=1, tpm=None, tokens=1, max_wait_s=1)
        await limiter.acquire("b", rpm=1, tpm=None, tokens=1, max_wait_s=1)
        for _ in range(50):
            await limiter.acquire("c", rpm=None, tpm=None, tokens=1, max_wait_s=1)

    asyncio.run(calls())
    assert clock.slept == []
