"""Quiet calls (nothing consumes their tokens as they come) are made plain, unless a limit needs
the stream: a meter that stops the answer at a budget, a run's deadline that may come before the
call's own total limit, or a first-byte limit the whole answer might not come within (a plain
answer's first byte comes with its last) — so a deployment's first calls stream, and plain calls
follow once its answers have come within half of that limit."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agents.fakellm import RunningServer
from agents.llm import Gateway, LLMRequest, Route, RoutePlan
from agents.llm.allowance import Allowance, SpendLimit

from .conftest import HELLO, openai_dep

pytestmark = pytest.mark.asyncio


async def _complete(
    fake: RunningServer, request: LLMRequest, *, warm: bool = True, **kwargs: Any
) -> Any:
    """The call, by a gateway that has seen `dep` answer once before (`warm`), quickly."""
    gateway = Gateway(max_retries=0)
    dep = kwargs.pop("dep", None) or openai_dep(fake)
    try:
        if warm:
            await gateway.complete(LLMRequest(HELLO), RoutePlan(Route([dep])))
            fake.reset()
        return await gateway.complete(request, RoutePlan(Route([dep])), **kwargs)
    finally:
        await gateway.aclose()


def _streamed(fake: RunningServer) -> list[bool]:
    return [bool(entry["body"].get("stream")) for entry in fake.requests]


async def test_a_quiet_call_is_plain_and_answers_the_same(fake: RunningServer) -> None:
    fake.set_script({"rules": [{"reply": "Hello, quietly."}]})
    deltas: list[str] = []

    async def on_delta(text: str) -> None:
        deltas.append(text)

    result = await _complete(fake, LLMRequest(HELLO, quiet=True), on_delta=on_delta)

    assert _streamed(fake) == [False]
    assert result.text == "Hello, quietly."
    assert deltas == []
    # Its first token came with the rest of the answer.
    assert result.first_token_ms is not None


async def test_a_call_that_is_not_quiet_streams(fake: RunningServer) -> None:
    fake.set_script({"rules": [{"reply": "Hello, loudly.", "chunks": 2}]})
    deltas: list[str] = []

    async def on_delta(text: str) -> None:
        deltas.append(text)

    result = await _complete(fake, LLMRequest(HELLO), on_delta=on_delta)

    assert _streamed(fake) == [True]
    assert "".join(deltas) == result.text == "Hello, loudly."


async def test_a_quiet_call_under_a_token_meter_streams_and_is_stopped_at_the_budget(
    fake: RunningServer,
) -> None:
    long_reply = "word " * 400
    fake.set_script({"rules": [{"reply": long_reply, "chunks": 100, "ignore_max_tokens": True}]})
    allowance = Allowance((SpendLimit("The run's token budget of 200", tokens=200),))

    result = await _complete(fake, LLMRequest(HELLO, quiet=True), allowance=allowance)

    assert _streamed(fake) == [True]
    assert result.stopped.startswith("The run's token budget of 200 was reached")
    assert 0 < len(result.text) < len(long_reply)


async def test_a_quiet_call_streams_when_the_deadline_may_fall_within_it(
    fake: RunningServer,
) -> None:
    fake.set_script({"rules": [{"reply": "In time."}]})
    now = asyncio.get_running_loop().time()

    await _complete(
        fake,
        LLMRequest(HELLO, quiet=True),
        warm=False,
        dep=openai_dep(fake, timeout_s=60),
        allowance=Allowance(deadline=now + 30),
    )
    await _complete(
        fake,
        LLMRequest(HELLO, quiet=True),
        warm=False,
        dep=openai_dep(fake, timeout_s=60),
        allowance=Allowance(deadline=now + 3600),
    )

    assert _streamed(fake) == [True, False]


async def test_a_quiet_call_streams_until_its_deployment_answered_within_the_first_byte_limit(
    fake: RunningServer,
) -> None:
    fake.set_script({"rules": [{"reply": "Quick."}]})
    dep = openai_dep(fake, first_byte_timeout_s=30)
    gateway = Gateway(max_retries=0)
    try:
        for _ in range(2):
            await gateway.complete(LLMRequest(HELLO, quiet=True), RoutePlan(Route([dep])))
    finally:
        await gateway.aclose()

    assert _streamed(fake) == [True, False]


async def test_a_quiet_call_streams_when_its_deployment_answers_slowly(
    fake: RunningServer,
) -> None:
    # Four chunks 200 ms apart: answers of about 0.6 s, more than half a 1 s first-byte limit.
    slow = {"reply": "One two three four.", "chunks": 4, "chunk_delay_ms": 200}
    fake.set_script({"rules": [slow]})
    dep = openai_dep(fake, first_byte_timeout_s=1, chunk_timeout_s=5, timeout_s=10)
    gateway = Gateway(max_retries=0)
    try:
        for _ in range(3):
            result = await gateway.complete(LLMRequest(HELLO, quiet=True), RoutePlan(Route([dep])))
            assert result.text == "One two three four."
    finally:
        await gateway.aclose()

    assert _streamed(fake) == [True, True, True]
