"""Circuit breaker, 429 cooldown and rate limits, with an injected clock, over real HTTP."""

from __future__ import annotations

import random

import pytest

from agents.fakellm import RunningServer
from agents.llm import Gateway, LLMError, LLMRequest, Route, RoutePlan

from .conftest import HELLO, FakeTime, openai_dep


def gateway(fake_time: FakeTime, **kwargs: object) -> Gateway:
    return Gateway(clock=fake_time, sleep=fake_time.sleep, rng=random.Random(1), **kwargs)  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_breaker_closed_open_half_open_closed(
    fake: RunningServer, fake_time: FakeTime
) -> None:
    transitions: list[tuple[str, str]] = []
    gw = gateway(
        fake_time,
        max_retries=0,
        breaker_threshold=3,
        breaker_cooldown_s=30,
        breaker_listener=lambda dep, state: transitions.append((dep, state)),
    )
    plan = RoutePlan(Route([openai_dep(fake)]))
    fake.set_script({"rules": [{"fault": "500", "times": 4}]})
    try:
        for _ in range(3):
            with pytest.raises(LLMError):
                await gw.complete(LLMRequest(HELLO), plan)
        assert gw.breaker_state("dep-a") == "open"
        assert transitions == [("dep-a", "open")]
        with pytest.raises(LLMError) as caught:
            await gw.complete(LLMRequest(HELLO), plan)
        assert caught.value.kind == "no_deployment" and caught.value.attempts == []
        assert len(fake.requests) == 3, "an open breaker lets nothing through"

        fake_time.advance(30)
        assert gw.breaker_state("dep-a") == "half_open"
        with pytest.raises(LLMError):  # the trial fails (4th scripted 500): open again
            await gw.complete(LLMRequest(HELLO), plan)
        assert gw.breaker_state("dep-a") == "open"
        fake_time.advance(30)
        result = await gw.complete(LLMRequest(HELLO), plan)
        assert result.text
        assert gw.breaker_state("dep-a") == "closed"
    finally:
        await gw.aclose()
    assert transitions == [
        ("dep-a", "open"),
        ("dep-a", "half_open"),
        ("dep-a", "open"),
        ("dep-a", "half_open"),
        ("dep-a", "closed"),
    ]


@pytest.mark.asyncio
async def test_auth_failures_count_towards_the_breaker(
    fake: RunningServer, fake_time: FakeTime
) -> None:
    fake.set_script({"api_key": "sk-other"})
    gw = gateway(fake_time, breaker_threshold=2)
    plan = RoutePlan(Route([openai_dep(fake)]))
    try:
        for _ in range(2):
            with pytest.raises(LLMError) as caught:
                await gw.complete(LLMRequest(HELLO), plan)
            assert caught.value.kind == "auth" and len(caught.value.attempts) == 1
    finally:
        await gw.aclose()
    assert gw.breaker_state("dep-a") == "open"


@pytest.mark.asyncio
async def test_open_breaker_sends_calls_to_the_fallback(
    fake: RunningServer, fake_b: RunningServer, fake_time: FakeTime
) -> None:
    gw = gateway(fake_time, max_retries=0, breaker_threshold=1)
    plan = RoutePlan(
        Route([openai_dep(fake, model="gpt-4o-mini@fault=503")]),
        [Route([openai_dep(fake_b, "dep-b")])],
    )
    try:
        first = await gw.complete(LLMRequest(HELLO), plan)
        second = await gw.complete(LLMRequest(HELLO), plan)
    finally:
        await gw.aclose()
    assert [a.deployment_id for a in first.attempts] == ["dep-a", "dep-b"]
    assert [a.deployment_id for a in second.attempts] == ["dep-b"]


@pytest.mark.asyncio
async def test_rate_limit_cooldown_skips_the_deployment(
    fake: RunningServer, fake_b: RunningServer, fake_time: FakeTime
) -> None:
    gw = gateway(fake_time, max_retries=0)
    a = openai_dep(fake, model="gpt-4o-mini@fault=429x1")
    plan = RoutePlan(Route([a, openai_dep(fake_b, "dep-b", priority=1)]))
    try:
        await gw.complete(LLMRequest(HELLO), RoutePlan(Route([a])))  # 429 then... no retries
    except LLMError as error:
        assert error.kind == "rate_limit"
    try:
        result = await gw.complete(LLMRequest(HELLO), plan)
        assert result.deployment_id == "dep-b", "dep-a is cooling down for Retry-After: 1"
        fake_time.advance(1.0)
        result = await gw.complete(LLMRequest(HELLO), plan)
        assert result.deployment_id == "dep-a"
    finally:
        await gw.aclose()


@pytest.mark.asyncio
async def test_rpm_limiter_waits_when_short_and_moves_on_when_long(
    fake: RunningServer, fake_b: RunningServer, fake_time: FakeTime
) -> None:
    limited = openai_dep(fake, rpm=2)
    plan = RoutePlan(Route([limited]), [Route([openai_dep(fake_b, "dep-b")])])
    gw = gateway(fake_time, max_queue_wait_s=2.0)
    try:
        picks = [(await gw.complete(LLMRequest(HELLO), plan)).deployment_id for _ in range(3)]
        assert picks == ["dep-a", "dep-a", "dep-b"], "a 60 s wait is too long: fallback"
        assert fake_time.sleeps == []
        fake_time.advance(59.0)
        # The window frees up in 1 s: short enough to wait for.
        result = await gw.complete(LLMRequest(HELLO), plan)
        assert result.deployment_id == "dep-a"
        assert fake_time.sleeps == [pytest.approx(1.0)]
    finally:
        await gw.aclose()
    assert len(fake.requests) == 3


@pytest.mark.asyncio
async def test_tpm_limiter(fake: RunningServer, fake_time: FakeTime) -> None:
    fake.set_script({"rules": [{"prompt_tokens": 100, "completion_tokens": 60}]})
    gw = gateway(fake_time, max_queue_wait_s=0.5)
    plan = RoutePlan(Route([openai_dep(fake, tpm=150)]))
    try:
        await gw.complete(LLMRequest(HELLO), plan)
        with pytest.raises(LLMError) as caught:
            await gw.complete(LLMRequest(HELLO), plan)
        assert caught.value.kind == "no_deployment"
        fake_time.advance(61)
        assert (await gw.complete(LLMRequest(HELLO), plan)).text
    finally:
        await gw.aclose()


@pytest.mark.asyncio
async def test_max_parallel_sends_overflow_elsewhere(
    fake: RunningServer, fake_b: RunningServer
) -> None:
    import asyncio

    fake.set_script({"rules": [{"delay_ms": 200}]})
    gw = Gateway(max_queue_wait_s=0)
    route = Route([openai_dep(fake, max_parallel=1), openai_dep(fake_b, "dep-b", priority=1)])
    try:
        results = await asyncio.gather(
            *(gw.complete(LLMRequest(HELLO), RoutePlan(route)) for _ in range(3))
        )
    finally:
        await gw.aclose()
    assert sorted(r.deployment_id for r in results) == ["dep-a", "dep-b", "dep-b"]


@pytest.mark.asyncio
async def test_calls_checking_side_by_side_cannot_all_take_the_last_places(
    fake: RunningServer,
) -> None:
    import asyncio

    class SlowLedger:
        """Writing the row before a call takes a round trip: other calls run meanwhile."""

        async def call_started(self, entry: object) -> None:
            await asyncio.sleep(0.01)

        async def call_finished(self, call_id: str, outcome: object) -> None:
            return None

    # Ten calls at once on an rpm of 3: each takes its place as it passes the check, so the
    # ones behind see the window full (they used to all pass before any was counted).
    gw = Gateway(max_queue_wait_s=0, max_retries=0, ledger=SlowLedger())  # type: ignore[arg-type]
    plan = RoutePlan(Route([openai_dep(fake, rpm=3)]))
    try:
        outcomes = await asyncio.gather(
            *(gw.complete(LLMRequest(HELLO), plan) for _ in range(10)), return_exceptions=True
        )
    finally:
        await gw.aclose()
    answered = [o for o in outcomes if not isinstance(o, BaseException)]
    refused = [o for o in outcomes if isinstance(o, LLMError) and o.kind == "no_deployment"]
    assert (len(answered), len(refused)) == (3, 7)
    assert len(fake.requests) == 3


@pytest.mark.asyncio
async def test_a_call_waits_in_line_then_falls_back_after_its_max_wait(
    fake: RunningServer, fake_b: RunningServer, fake_time: FakeTime
) -> None:
    from agents.llm.capacity import Waiting

    told: list[tuple[str, int]] = []
    limited = openai_dep(fake, rpm=1)
    plan = RoutePlan(Route([limited]), [Route([openai_dep(fake_b, "dep-b")])])
    gw = gateway(fake_time)
    waiting = Waiting(
        max_wait_s=3, on_wait=lambda dep, position, waited: told.append((dep, position))
    )
    try:
        first = await gw.complete(LLMRequest(HELLO), plan, waiting=waiting)
        # The window is full for a minute: the call waits in line its 3 s, then falls back.
        second = await gw.complete(LLMRequest(HELLO), plan, waiting=waiting)
    finally:
        await gw.aclose()
    assert (first.deployment_id, second.deployment_id) == ("dep-a", "dep-b")
    assert told and told[0] == ("dep-a", 1)
    assert sum(fake_time.sleeps) == pytest.approx(3.0)


@pytest.mark.asyncio
async def test_without_a_fallback_the_wait_ends_with_the_reason(
    fake: RunningServer, fake_time: FakeTime
) -> None:
    from agents.llm.capacity import Waiting

    gw = gateway(fake_time)
    plan = RoutePlan(Route([openai_dep(fake, rpm=1)]))
    try:
        await gw.complete(LLMRequest(HELLO), plan, waiting=Waiting(max_wait_s=2))
        with pytest.raises(LLMError) as caught:
            await gw.complete(LLMRequest(HELLO), plan, waiting=Waiting(max_wait_s=2))
    finally:
        await gw.aclose()
    assert caught.value.kind == "no_deployment"
    assert "no capacity on dep-a within 2 s of waiting" in caught.value.message
