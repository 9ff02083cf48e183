"""Routing, retries, fallbacks, cancellation and the ledger, over real HTTP against fakellm."""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import fields

import pytest

from agents.fakellm import RunningServer
from agents.llm import (
    Deployment,
    Gateway,
    InMemoryLedger,
    LedgerOutcome,
    LedgerStart,
    LLMError,
    LLMRequest,
    Route,
    RoutePlan,
    gateway_for_loop,
)

from .conftest import API_KEY, HELLO, FakeTime, openai_dep


def gateway(fake_time: FakeTime, **kwargs: object) -> Gateway:
    return Gateway(clock=fake_time, sleep=fake_time.sleep, rng=random.Random(7), **kwargs)  # type: ignore[arg-type]


def nodes(*servers: RunningServer) -> list[str]:
    return [s.name for s in servers for _ in s.requests]


@pytest.mark.asyncio
async def test_429_twice_then_success_honours_retry_after(
    fake: RunningServer, fake_time: FakeTime
) -> None:
    gw = gateway(fake_time, max_retries=2, backoff_base_s=0.1)
    try:
        result = await gw.complete(
            LLMRequest(HELLO), RoutePlan(Route([openai_dep(fake, model="gpt-4o-mini@fault=429x2")]))
        )
    finally:
        await gw.aclose()
    assert result.retries == 2 and result.fallbacks == 0
    assert [a.error_kind for a in result.attempts] == ["rate_limit", "rate_limit", None]
    assert [a.status for a in result.attempts] == [429, 429, 200]
    # fakellm sends Retry-After: 1; the backoff alone would be 0.05-0.2 s.
    assert len(fake_time.sleeps) == 2 and all(s >= 1.0 for s in fake_time.sleeps)
    assert len(fake.requests) == 3


@pytest.mark.asyncio
async def test_backoff_is_exponential_with_jitter(fake: RunningServer, fake_time: FakeTime) -> None:
    gw = gateway(fake_time, max_retries=3, backoff_base_s=0.5, backoff_max_s=8)
    try:
        result = await gw.complete(
            LLMRequest(HELLO), RoutePlan(Route([openai_dep(fake, model="gpt-4o-mini@fault=500x3")]))
        )
    finally:
        await gw.aclose()
    assert result.retries == 3
    first, second, third = fake_time.sleeps
    assert 0.25 <= first <= 0.5 and 0.5 <= second <= 1.0 and 1.0 <= third <= 2.0


@pytest.mark.asyncio
async def test_retry_after_beyond_backoff_max_moves_to_the_fallback(
    fake: RunningServer, fake_b: RunningServer, fake_time: FakeTime
) -> None:
    gw = gateway(fake_time, backoff_max_s=0.5)
    plan = RoutePlan(
        Route([openai_dep(fake, model="gpt-4o-mini@fault=429")]),
        [Route([openai_dep(fake_b, "dep-b")])],
    )
    try:
        result = await gw.complete(LLMRequest(HELLO), plan)
    finally:
        await gw.aclose()
    assert (result.deployment_id, result.fallbacks, result.retries) == ("dep-b", 1, 0)
    assert fake_time.sleeps == []


@pytest.mark.asyncio
async def test_auth_failure_falls_back_without_retrying(
    fake: RunningServer, fake_b: RunningServer, fake_time: FakeTime
) -> None:
    fake.set_script({"api_key": "sk-other-key"})
    gw = gateway(fake_time)
    plan = RoutePlan(Route([openai_dep(fake)]), [Route([openai_dep(fake_b, "dep-b")])])
    try:
        result = await gw.complete(LLMRequest(HELLO), plan)
    finally:
        await gw.aclose()
    assert result.deployment_id == "dep-b"
    assert [(a.deployment_id, a.error_kind) for a in result.attempts] == [
        ("dep-a", "auth"),
        ("dep-b", None),
    ]
    assert (len(fake.requests), len(fake_b.requests), fake_time.sleeps) == (1, 1, [])


@pytest.mark.asyncio
async def test_exhausted_retries_fall_back_and_the_last_error_carries_attempts(
    fake: RunningServer, fake_b: RunningServer, fake_time: FakeTime
) -> None:
    gw = gateway(fake_time, max_retries=1)
    broken_b = openai_dep(fake_b, "dep-b", model="gpt-4o-mini@fault=503")
    plan = RoutePlan(
        Route([openai_dep(fake, model="gpt-4o-mini@fault=500")]),
        [Route([openai_dep(fake_b, "dep-b")])],
    )
    try:
        result = await gw.complete(LLMRequest(HELLO), plan)
        assert (result.deployment_id, result.retries, result.fallbacks) == ("dep-b", 1, 1)
        with pytest.raises(LLMError) as caught:
            await gw.complete(
                LLMRequest(HELLO),
                RoutePlan(
                    Route([openai_dep(fake, model="gpt-4o-mini@fault=500")]), [Route([broken_b])]
                ),
            )
    finally:
        await gw.aclose()
    error = caught.value
    assert (error.kind, error.status, error.deployment_id) == ("provider_error", 503, "dep-b")
    assert [a.deployment_id for a in error.attempts] == ["dep-a", "dep-a", "dep-b", "dep-b"]


@pytest.mark.asyncio
async def test_retry_moves_to_the_next_deployment_of_the_route(
    fake: RunningServer, fake_b: RunningServer, fake_time: FakeTime
) -> None:
    fake.set_script({"rules": [{"fault": "500"}]})
    gw = gateway(fake_time)
    route = Route([openai_dep(fake), openai_dep(fake_b, "dep-b", priority=1)])
    try:
        result = await gw.complete(LLMRequest(HELLO), RoutePlan(route))
    finally:
        await gw.aclose()
    assert [a.deployment_id for a in result.attempts] == ["dep-a", "dep-b"]
    assert result.retries == 1 and result.fallbacks == 0


@pytest.mark.asyncio
@pytest.mark.parametrize("fault", ["context_length"])
async def test_context_length_and_bad_request_raise_at_once(
    fake: RunningServer, fake_b: RunningServer, fake_time: FakeTime, fault: str
) -> None:
    gw = gateway(fake_time)
    plan = RoutePlan(
        Route([openai_dep(fake, model=f"gpt-4o-mini@fault={fault}")]),
        [Route([openai_dep(fake_b, "dep-b")])],
    )
    try:
        with pytest.raises(LLMError) as caught:
            await gw.complete(LLMRequest(HELLO), plan)
        with pytest.raises(LLMError) as bad:
            await gw.complete(
                LLMRequest(HELLO, max_tokens=0),
                RoutePlan(Route([openai_dep(fake)]), [Route([openai_dep(fake_b, "dep-b")])]),
            )
    finally:
        await gw.aclose()
    assert caught.value.kind == "context_length" and not caught.value.transient
    assert bad.value.kind == "bad_request"
    assert fake_b.requests == []


@pytest.mark.asyncio
async def test_strategies_choose_across_two_servers(
    fake: RunningServer, fake_b: RunningServer
) -> None:
    a, b = openai_dep(fake, priority=1), openai_dep(fake_b, "dep-b", priority=0)
    request = LLMRequest(HELLO, stream=False)
    gw = Gateway()
    try:
        for _ in range(3):
            await gw.complete(request, RoutePlan(Route([a, b], "priority")))
        assert (len(fake.requests), len(fake_b.requests)) == (0, 3)

        fake_b.reset()
        chosen = [
            (await gw.complete(request, RoutePlan(Route([a, b], "round_robin")))).deployment_id
            for _ in range(4)
        ]
        assert chosen == ["dep-a", "dep-b", "dep-a", "dep-b"]
        assert (len(fake.requests), len(fake_b.requests)) == (2, 2)

        # least_busy: while a slow call occupies node-a, the next call goes to node-b.
        fake.reset()
        fake_b.reset()
        fake.set_script({"rules": [{"delay_ms": 300}]})
        fake_b.set_script({"rules": [{"delay_ms": 300}]})
        least = RoutePlan(Route([openai_dep(fake), openai_dep(fake_b, "dep-b")], "least_busy"))
        first = asyncio.create_task(gw.complete(request, least))
        assert await asyncio.to_thread(fake.wait_for, requests=1, inflight=1)
        second = await gw.complete(request, least)
        assert (await first).deployment_id == "dep-a"
        assert second.deployment_id == "dep-b"

        # lowest_latency: once both are measured, the faster node wins.
        fake_b.set_script(None)
        fake.set_script({"rules": [{"delay_ms": 80}]})
        fast = RoutePlan(
            Route([openai_dep(fake, "lat-a"), openai_dep(fake_b, "lat-b")], "lowest_latency")
        )
        picks = [(await gw.complete(request, fast)).deployment_id for _ in range(4)]
        assert picks == ["lat-a", "lat-b", "lat-b", "lat-b"]
    finally:
        await gw.aclose()


@pytest.mark.asyncio
async def test_cancel_interrupts_a_hung_call(fake: RunningServer) -> None:
    ledger = InMemoryLedger()
    gw = Gateway(ledger=ledger)
    cancel = asyncio.Event()
    dep = openai_dep(fake, model="gpt-4o-mini@fault=hang", timeout_s=30)
    task = asyncio.create_task(
        gw.complete(LLMRequest(HELLO), RoutePlan(Route([dep])), cancel=cancel)
    )
    try:
        assert await asyncio.to_thread(fake.wait_for, requests=1, inflight=1)
        loop = asyncio.get_running_loop()
        started = loop.time()
        cancel.set()
        with pytest.raises(LLMError) as caught:
            await task
        assert loop.time() - started < 1.0
    finally:
        await gw.aclose()
    assert caught.value.kind == "cancelled"
    assert [a.error_kind for a in caught.value.attempts] == ["cancelled"]
    assert await asyncio.to_thread(fake.wait_for, inflight=0, timeout=5)
    (entry,) = ledger.started
    assert ledger.finished[entry.call_id].error_kind == "cancelled"
    assert gw.breaker_state("dep-a") == "closed"


class CheckingLedger(InMemoryLedger):
    """Asserts, when a call starts, that the server has not seen its request yet."""

    def __init__(self, server: RunningServer) -> None:
        super().__init__()
        self.server = server
        self.seen_at_start: list[int] = []

    async def call_started(self, entry: LedgerStart) -> None:
        self.seen_at_start.append(len(await asyncio.to_thread(lambda: self.server.requests)))
        await super().call_started(entry)


@pytest.mark.asyncio
async def test_ledger_gets_a_row_per_attempt_before_and_after(
    fake: RunningServer, fake_time: FakeTime
) -> None:
    ledger = CheckingLedger(fake)
    gw = gateway(fake_time, ledger=ledger)
    metadata = {"run_id": "r1", "step_id": "s1"}
    try:
        result = await gw.complete(
            LLMRequest(HELLO, metadata=metadata),
            RoutePlan(Route([openai_dep(fake, model="gpt-4o-mini@fault=500x1")])),
        )
    finally:
        await gw.aclose()
    assert ledger.seen_at_start == [0, 1]
    rows = ledger.rows()
    assert [(s.attempt, s.deployment_id, s.metadata["run_id"]) for s, _ in rows] == [
        (1, "dep-a", "r1"),
        (2, "dep-a", "r1"),
    ]
    (failed_start, failed), (ok_start, ok) = rows
    assert failed is not None and ok is not None
    assert (failed.status, failed.error_kind, failed.http_status) == (
        "failed",
        "provider_error",
        500,
    )
    assert (ok.status, ok.error_kind, ok.cost) == ("completed", None, result.cost)
    assert ok.usage == result.usage and ok_start.call_id == result.call_id
    assert ok_start.prompt_tokens_estimate > 0 and ok_start.started_at.tzinfo is not None


class RefusingLedger(InMemoryLedger):
    async def call_started(self, entry: LedgerStart) -> None:
        raise RuntimeError("database is down")


@pytest.mark.asyncio
async def test_no_request_without_a_ledger_row(fake: RunningServer) -> None:
    gw = Gateway(ledger=RefusingLedger())
    try:
        with pytest.raises(RuntimeError, match="database is down"):
            await gw.complete(LLMRequest(HELLO), RoutePlan(Route([openai_dep(fake)])))
    finally:
        await gw.aclose()
    assert fake.requests == []


@pytest.mark.asyncio
async def test_the_key_never_leaks(
    fake: RunningServer,
    fake_b: RunningServer,
    fake_time: FakeTime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    ledger = InMemoryLedger()
    gw = gateway(fake_time, ledger=ledger, max_retries=1)
    fake_b.set_script({"api_key": "sk-another"})
    errors: list[LLMError] = []
    try:
        for model in (
            "gpt-4o-mini@fault=429x1",
            "gpt-4o-mini@fault=500",
            "gpt-4o-mini@fault=malformed",
        ):
            try:
                await gw.complete(
                    LLMRequest(HELLO, stream=False),
                    RoutePlan(Route([openai_dep(fake, model=model)])),
                )
            except LLMError as error:
                errors.append(error)
        with pytest.raises(LLMError) as caught:
            await gw.complete(LLMRequest(HELLO), RoutePlan(Route([openai_dep(fake_b)])))
        errors.append(caught.value)
    finally:
        await gw.aclose()
    assert caught.value.kind == "auth"
    assert len(errors) == 3
    dep = openai_dep(fake)
    assert API_KEY not in repr(dep)
    texts = [str(e) for e in errors] + [repr(e) for e in errors]
    texts += [repr(e.attempts) for e in errors] + [repr(e.args) for e in errors]
    texts += [repr(row) for row in ledger.rows()]
    texts += [r.getMessage() for r in caplog.records] + [repr(r.args) for r in caplog.records]
    assert all(API_KEY not in t and API_KEY[-12:] not in t for t in texts)
    for entry in ledger.started:
        assert all(API_KEY not in repr(getattr(entry, f.name)) for f in fields(entry))
    assert all(isinstance(o, LedgerOutcome) for o in ledger.finished.values())


@pytest.mark.asyncio
async def test_gateway_for_loop_is_one_per_loop(
    fake: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import weakref

    from agents.llm import gateway as gateway_module

    # The Django app configures a database ledger for these; this test wants the bare gateway.
    monkeypatch.setattr(gateway_module, "_defaults", {})
    monkeypatch.setattr(gateway_module, "_gateways", weakref.WeakKeyDictionary())
    monkeypatch.setattr(gateway_module, "_shared_resilience", None)
    gw = gateway_for_loop()
    assert gateway_for_loop() is gw
    result = await gw.complete(LLMRequest(HELLO), RoutePlan(Route([openai_dep(fake)])))
    assert result.text
    await gw.aclose()

    def other_loop() -> Gateway:
        async def get() -> Gateway:
            return gateway_for_loop()

        return asyncio.run(get())

    assert await asyncio.to_thread(other_loop) is not gw


@pytest.mark.asyncio
async def test_unknown_lane_is_refused(fake: RunningServer) -> None:
    dep = Deployment("cli", "cli", "claude", "")
    gw = Gateway()
    with pytest.raises(LLMError) as caught:
        await gw.complete(LLMRequest(HELLO), RoutePlan(Route([dep])))
    assert caught.value.kind == "bad_request"
