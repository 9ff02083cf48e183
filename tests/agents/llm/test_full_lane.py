"""The full lane (litellm) against fakellm's Anthropic `/v1/messages`, over real HTTP."""

from __future__ import annotations

import json
import logging
import random
from decimal import Decimal

import pytest

from agents.fakellm import RunningServer
from agents.llm import Deployment, Gateway, InMemoryLedger, LLMError, LLMRequest, Route, RoutePlan

from .conftest import API_KEY, HELLO, TIME_TOOL, WEATHER_TOOL, FakeTime

pytestmark = pytest.mark.slow

HAIKU_IN = Decimal("0.000001")
HAIKU_OUT = Decimal("0.000005")


def claude(server: RunningServer, model: str = "claude-haiku-4-5", **kwargs: object) -> Deployment:
    return Deployment(
        "claude-a",
        "anthropic",
        model,
        server.base_urls["anthropic"],
        api_key=API_KEY,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.mark.asyncio
@pytest.mark.parametrize("stream", [False, True])
async def test_anthropic_reply_usage_and_cost(fake: RunningServer, stream: bool) -> None:
    fake.set_script(
        {
            "rules": [
                {"reply": "Bonjour, hello there.", "prompt_tokens": 1000, "completion_tokens": 20}
            ]
        }
    )
    deltas: list[str] = []
    gw = Gateway(coalesce_ms=0)
    try:
        result = await gw.complete(
            LLMRequest(
                [{"role": "system", "content": "Be brief."}, *HELLO], max_tokens=300, stream=stream
            ),
            RoutePlan(Route([claude(fake)])),
            on_delta=deltas.append,
        )
    finally:
        await gw.aclose()
    assert result.text == "Bonjour, hello there."
    assert result.finish_reason == "stop"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (1000, 20)
    assert result.cost == 1000 * HAIKU_IN + 20 * HAIKU_OUT and not result.cost_estimated
    if stream:
        assert "".join(deltas) == result.text and len(deltas) > 1
    (seen,) = fake.requests
    assert seen["path"] == "/v1/messages"
    assert seen["headers"]["x-api-key"] == "****cdef"
    assert seen["body"]["system"] in ("Be brief.", [{"type": "text", "text": "Be brief."}])
    assert seen["body"].get("stream", False) is stream


@pytest.mark.asyncio
@pytest.mark.parametrize("stream", [False, True])
async def test_anthropic_tool_use(fake: RunningServer, stream: bool) -> None:
    fake.set_script(
        {
            "rules": [
                {
                    "tool_calls": [
                        {"name": "get_weather", "arguments": {"city": "Paris"}},
                        {"name": "get_time", "arguments": {"tz": "Europe/Paris"}},
                    ]
                }
            ]
        }
    )
    gw = Gateway()
    try:
        result = await gw.complete(
            LLMRequest(HELLO, tools=[WEATHER_TOOL, TIME_TOOL], max_tokens=300, stream=stream),
            RoutePlan(Route([claude(fake)])),
        )
    finally:
        await gw.aclose()
    assert result.finish_reason == "tool_calls"
    assert [(c.name, json.loads(c.arguments)) for c in result.tool_calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_time", {"tz": "Europe/Paris"}),
    ]
    assert all(c.id for c in result.tool_calls)
    assert [t["name"] for t in fake.requests[0]["body"]["tools"]] == ["get_weather", "get_time"]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("fault", "kind", "transient"),
    [
        ("429", "rate_limit", True),
        ("500", "provider_error", True),
        ("overloaded", "provider_error", True),
        ("auth", "auth", False),
        ("context_length", "context_length", False),
        ("cut", "malformed_response", True),
        ("hang", "timeout", True),
    ],
)
async def test_anthropic_faults(
    fake: RunningServer, fault: str, kind: str, transient: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    ledger = InMemoryLedger()
    gw = Gateway(max_retries=0, ledger=ledger)
    dep = claude(fake, model=f"claude-haiku-4-5@fault={fault}", timeout_s=0.5)
    try:
        with pytest.raises(LLMError) as caught:
            await gw.complete(LLMRequest(HELLO, max_tokens=300), RoutePlan(Route([dep])))
    finally:
        await gw.aclose()
    error = caught.value
    assert (error.kind, error.transient) == (kind, transient)
    if fault == "429":
        assert error.retry_after == 1.0
    texts = [str(error), repr(error), repr(ledger.rows())]
    texts += [r.getMessage() for r in caplog.records]
    assert all(API_KEY not in t for t in texts)


@pytest.mark.asyncio
async def test_anthropic_retry_then_fallback_to_openai(
    fake: RunningServer, fake_b: RunningServer, fake_time: FakeTime
) -> None:
    gw = Gateway(clock=fake_time, sleep=fake_time.sleep, rng=random.Random(3), max_retries=1)
    openai_b = Deployment("gpt-b", "openai", "gpt-4o-mini", fake_b.base_urls["openai"], api_key="k")
    plan = RoutePlan(
        Route([claude(fake, model="claude-haiku-4-5@fault=429x1")]),
        [Route([openai_b])],
    )
    try:
        result = await gw.complete(LLMRequest(HELLO, max_tokens=300), plan)
        assert (result.deployment_id, result.retries) == ("claude-a", 1)
        assert fake_time.sleeps == [pytest.approx(1.0, abs=0.5)]
        failing = RoutePlan(
            Route([claude(fake, model="claude-haiku-4-5@fault=auth")]), [Route([openai_b])]
        )
        result = await gw.complete(LLMRequest(HELLO, max_tokens=300), failing)
        assert (result.deployment_id, result.fallbacks) == ("gpt-b", 1)
    finally:
        await gw.aclose()
