"""The three limits of a provider call, hit for real against fakellm's injected faults.

A provider that hangs before its first byte, one that stalls between two chunks, and one that
streams steadily but too long each fail with a `timeout` error naming the limit that passed,
as soon as it passed, in both lanes and with or without streaming.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from agents.fakellm import RunningServer
from agents.llm import Deployment, Gateway, LLMError, LLMRequest, Route, RoutePlan

from .conftest import API_KEY, HELLO, openai_dep


async def call(dep: Deployment, *, stream: bool = True) -> tuple[LLMError, float]:
    gateway = Gateway(max_retries=0)
    started = time.monotonic()
    try:
        with pytest.raises(LLMError) as caught:
            await gateway.complete(LLMRequest(HELLO, stream=stream), RoutePlan(Route([dep])))
    finally:
        await gateway.aclose()
    return caught.value, time.monotonic() - started


@pytest.mark.asyncio
@pytest.mark.parametrize("stream", [True, False])
async def test_a_provider_that_hangs_before_its_first_byte(
    fake: RunningServer, stream: bool
) -> None:
    fake.set_script({"rules": [{"fault": "hang"}]})
    error, took = await call(
        openai_dep(fake, first_byte_timeout_s=0.3, chunk_timeout_s=5, timeout_s=30),
        stream=stream,
    )
    assert (error.kind, error.limit, error.transient) == ("timeout", "first_byte", True)
    assert "no first byte within 0.3 s (the first-byte limit)" in str(error)
    assert 0.3 <= took < 2


@pytest.mark.asyncio
async def test_a_provider_that_stalls_between_chunks(fake: RunningServer) -> None:
    fake.set_script(
        {"rules": [{"reply": "One two three four.", "chunks": 4, "chunk_delay_ms": 5000}]}
    )
    error, took = await call(openai_dep(fake, first_byte_timeout_s=5, chunk_timeout_s=0.3))
    assert (error.kind, error.limit) == ("timeout", "between_chunks")
    assert "stalled for 0.3 s between two chunks" in str(error)
    assert took < 2
    assert error.attempts[0].error_kind == "timeout"


@pytest.mark.asyncio
async def test_a_steady_stream_that_runs_past_the_total_limit(fake: RunningServer) -> None:
    steady = {"reply": "word " * 40, "chunks": 40, "chunk_delay_ms": 100}
    fake.set_script({"rules": [steady]})
    error, took = await call(
        openai_dep(fake, first_byte_timeout_s=5, chunk_timeout_s=1, timeout_s=0.8)
    )
    assert (error.kind, error.limit) == ("timeout", "total")
    assert "longer than 0.8 s in all (the total limit)" in str(error)
    assert took < 2.5


@pytest.mark.asyncio
async def test_limits_that_are_not_reached_change_nothing(fake: RunningServer) -> None:
    fake.set_script({"rules": [{"reply": "Fine.", "chunks": 3, "chunk_delay_ms": 50}]})
    gateway = Gateway(max_retries=0)
    try:
        result = await gateway.complete(
            LLMRequest(HELLO),
            RoutePlan(Route([openai_dep(fake, first_byte_timeout_s=2, chunk_timeout_s=1)])),
        )
    finally:
        await gateway.aclose()
    assert result.text == "Fine."


@pytest.mark.slow
@pytest.mark.asyncio
@pytest.mark.parametrize("stream", [True, False])
async def test_the_litellm_lane_keeps_the_same_limits(fake: RunningServer, stream: bool) -> None:
    from agents.llm.full import load_litellm

    load_litellm()  # importing LiteLLM takes seconds: not what is timed here
    fake.set_script({"rules": [{"fault": "hang"}]})
    claude: dict[str, Any] = {"api_key": API_KEY, "first_byte_timeout_s": 0.5, "timeout_s": 30}
    dep = Deployment(
        "claude-a", "anthropic", "claude-haiku-4-5", fake.base_urls["anthropic"], **claude
    )
    error, took = await call(dep, stream=stream)
    assert (error.kind, error.limit) == ("timeout", "first_byte")
    assert took < 5


@pytest.mark.asyncio
async def test_a_callers_cancel_stays_a_cancel(fake: RunningServer) -> None:
    import asyncio

    fake.set_script({"rules": [{"fault": "hang"}]})
    gateway = Gateway(max_retries=0)
    dep = openai_dep(fake, first_byte_timeout_s=5)
    task = asyncio.ensure_future(gateway.complete(LLMRequest(HELLO), RoutePlan(Route([dep]))))
    try:
        while not fake.requests:  # the request reached the provider
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        await gateway.aclose()
