"""Rate limits, cool-downs, max parallel and breakers shared through Redis: two gateways (as two
worker processes have, each with its own in-process state) keep to one limit together, and a
Redis that cannot be reached leaves each to its own limits without failing a call."""

from __future__ import annotations

import asyncio
import random
import uuid

import pytest
from django.conf import settings

from agents.fakellm import RunningServer
from agents.llm import Gateway, LLMError, LLMRequest, Route, RoutePlan
from agents.llm.capacity import STATE_TTL_S, RedisCapacity

from .conftest import HELLO, openai_dep

pytestmark = pytest.mark.services


def _capacity(**kwargs: object) -> RedisCapacity:
    # A prefix of its own: no test sees another's windows.
    return RedisCapacity(settings.REDIS_URL, key_prefix=f"a2a:test:{uuid.uuid4().hex}:", **kwargs)  # type: ignore[arg-type]


def _gateways(capacity: RedisCapacity, n: int = 2, **kwargs: object) -> list[Gateway]:
    return [
        Gateway(capacity=capacity, rng=random.Random(i), **kwargs)  # type: ignore[arg-type]
        for i in range(n)
    ]


@pytest.mark.asyncio
async def test_an_rpm_holds_across_gateways(fake: RunningServer) -> None:
    capacity = _capacity()
    first, second = _gateways(capacity, max_queue_wait_s=0, max_retries=0)
    plan = RoutePlan(Route([openai_dep(fake, rpm=3)]))
    outcomes: list[str] = []
    try:
        for gateway in (first, second, first, second, first, second):
            try:
                await gateway.complete(LLMRequest(HELLO), plan)
                outcomes.append("answered")
            except LLMError as error:
                outcomes.append(error.kind)
    finally:
        for gateway in (first, second):
            await gateway.aclose()
        await capacity.aclose()
    # Each gateway alone would have let all six through (three each, under its own rpm of 3).
    assert outcomes == ["answered"] * 3 + ["no_deployment"] * 3
    assert len(fake.requests) == 3


@pytest.mark.asyncio
async def test_a_waiting_call_gets_the_place_the_other_process_frees(fake: RunningServer) -> None:
    fake.set_script({"rules": [{"delay_ms": 300}]})
    capacity = _capacity()
    first, second = _gateways(capacity, max_queue_wait_s=5)
    plan = RoutePlan(Route([openai_dep(fake, max_parallel=1)]))
    try:
        results = await asyncio.gather(
            first.complete(LLMRequest(HELLO), plan), second.complete(LLMRequest(HELLO), plan)
        )
    finally:
        for gateway in (first, second):
            await gateway.aclose()
        await capacity.aclose()
    assert all(result.text for result in results)
    # One at a time: the second call started only once the first had ended.
    started = sorted(r.latency_ms for r in results)
    assert started[1] >= 550


@pytest.mark.asyncio
async def test_a_cool_down_and_a_breaker_opened_by_one_gateway_hold_the_other(
    fake: RunningServer,
) -> None:
    fake.set_script({"rules": [{"fault": "500"}]})
    transitions: list[tuple[str, str]] = []
    capacity = _capacity(
        threshold=2, cooldown_s=30, listener=lambda d, s: transitions.append((d, s))
    )
    first, second = _gateways(capacity, max_queue_wait_s=0, max_retries=0)
    plan = RoutePlan(Route([openai_dep(fake)]))
    try:
        for gateway in (first, second):
            with pytest.raises(LLMError) as failed:
                await gateway.complete(LLMRequest(HELLO), plan)
            assert failed.value.kind == "provider_error"
        # Two failures, one in each process: the shared breaker is open for both.
        for gateway in (first, second):
            with pytest.raises(LLMError) as refused:
                await gateway.complete(LLMRequest(HELLO), plan)
            assert refused.value.kind == "no_deployment"
        assert await capacity.breaker_state("dep-a") == "open"
    finally:
        for gateway in (first, second):
            await gateway.aclose()
        await capacity.aclose()
    assert ("dep-a", "open") in transitions
    assert len(fake.requests) == 2


@pytest.mark.asyncio
async def test_an_unreachable_redis_leaves_each_process_to_its_own_limits(
    fake: RunningServer,
) -> None:
    # Nothing listens on port 9: every shared check fails at once.
    capacity = RedisCapacity("redis://127.0.0.1:9/0")
    (gateway,) = _gateways(capacity, n=1, max_queue_wait_s=0, max_retries=0)
    plan = RoutePlan(Route([openai_dep(fake, rpm=2)]))
    try:
        answers = [(await gateway.complete(LLMRequest(HELLO), plan)).text for _ in range(2)]
        with pytest.raises(LLMError) as refused:
            await gateway.complete(LLMRequest(HELLO), plan)
    finally:
        await gateway.aclose()
    assert all(answers), "no call failed for Redis"
    assert refused.value.kind == "no_deployment", "the process's own rpm still held"
    assert not capacity.available


@pytest.mark.asyncio
async def test_an_unlimited_deployment_shares_its_breaker_through_a_copy_a_second_old(
    fake: RunningServer,
) -> None:
    # Two processes: each its own RedisCapacity, the same keys in Redis.
    prefix = f"a2a:test:{uuid.uuid4().hex}:"
    ours = RedisCapacity(settings.REDIS_URL, key_prefix=prefix, threshold=2, cooldown_s=30)
    theirs = RedisCapacity(settings.REDIS_URL, key_prefix=prefix, threshold=2, cooldown_s=30)
    (gateway,) = _gateways(ours, n=1, max_queue_wait_s=0, max_retries=0)
    (other,) = _gateways(theirs, n=1, max_queue_wait_s=0, max_retries=0)
    plan = RoutePlan(Route([openai_dep(fake)]))
    try:
        # Calls to a deployment without limits take no place in Redis while it is clear.
        for _ in range(3):
            assert (await gateway.complete(LLMRequest(HELLO), plan)).text
        keys = await ours._client().keys(prefix + "*")
        assert keys == [], "no script ran"
        # The other process's failures open the shared breaker...
        fake.set_script({"rules": [{"fault": "500"}]})
        for _ in range(2):
            with pytest.raises(LLMError):
                await other.complete(LLMRequest(HELLO), plan)
        assert await theirs.breaker_state("dep-a") == "open"
        # ...which holds this process back once its copy is STATE_TTL_S old.
        await asyncio.sleep(STATE_TTL_S)
        with pytest.raises(LLMError) as refused:
            await gateway.complete(LLMRequest(HELLO), plan)
        assert refused.value.kind == "no_deployment"
    finally:
        for each in (gateway, other):
            await each.aclose()
        for capacity in (ours, theirs):
            await capacity.aclose()
    assert len(fake.requests) == 5
