"""The lean lane over real loopback HTTP against fakellm's OpenAI and Ollama `/v1` endpoints."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from agents.fakellm import RunningServer
from agents.llm import Deployment, Gateway, LLMError, LLMRequest, Route, RoutePlan

from .conftest import API_KEY, HELLO, TIME_TOOL, WEATHER_TOOL, openai_dep

REPO = Path(__file__).resolve().parents[3]
MINI_IN = Decimal("0.00000015")
MINI_OUT = Decimal("0.0000006")


def plan(dep: Deployment) -> RoutePlan:
    return RoutePlan(Route([dep]))


@pytest.mark.asyncio
@pytest.mark.parametrize("stream", [False, True])
async def test_reply_with_usage_and_cost(fake: RunningServer, stream: bool) -> None:
    fake.set_script(
        {"rules": [{"reply": "Hello there.", "prompt_tokens": 1000, "completion_tokens": 500}]}
    )
    gateway = Gateway()
    try:
        result = await gateway.complete(
            LLMRequest(HELLO, temperature=0.2, max_tokens=800, stream=stream),
            plan(openai_dep(fake)),
        )
    finally:
        await gateway.aclose()
    assert result.text == "Hello there."
    assert result.finish_reason == "stop"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (1000, 500)
    assert result.cost == 1000 * MINI_IN + 500 * MINI_OUT
    assert result.cost_estimated is False
    assert result.first_token_ms is not None and result.first_token_ms <= result.latency_ms
    (seen,) = fake.requests
    assert seen["path"] == "/v1/chat/completions"
    assert seen["headers"]["authorization"] == "Bearer ****cdef"
    body = seen["body"]
    expected = {"model": "gpt-4o-mini", "messages": HELLO, "temperature": 0.2, "max_tokens": 800}
    if stream:
        expected |= {"stream": True, "stream_options": {"include_usage": True}}
    assert body == expected


@pytest.mark.asyncio
async def test_streamed_tool_calls_single_and_parallel(fake: RunningServer) -> None:
    fake.set_script(
        {
            "rules": [
                {
                    "last_message_contains": "one",
                    "tool_call": {"name": "get_weather", "arguments": {"city": "Paris"}},
                },
                {
                    "last_message_contains": "two",
                    "tool_calls": [
                        {"name": "get_weather", "arguments": {"city": "Lyon, a long city name"}},
                        {"name": "get_time", "arguments": {"tz": "Europe/Paris"}},
                    ],
                },
            ]
        }
    )
    gateway = Gateway()
    dep = openai_dep(fake)
    try:
        one = await gateway.complete(
            LLMRequest([{"role": "user", "content": "one call"}], tools=[WEATHER_TOOL]), plan(dep)
        )
        two = await gateway.complete(
            LLMRequest([{"role": "user", "content": "two calls"}], tools=[WEATHER_TOOL, TIME_TOOL]),
            plan(dep),
        )
    finally:
        await gateway.aclose()
    assert one.finish_reason == "tool_calls"
    assert [(c.name, json.loads(c.arguments)) for c in one.tool_calls] == [
        ("get_weather", {"city": "Paris"})
    ]
    assert one.tool_calls[0].id
    assert [(c.name, json.loads(c.arguments)) for c in two.tool_calls] == [
        ("get_weather", {"city": "Lyon, a long city name"}),
        ("get_time", {"tz": "Europe/Paris"}),
    ]
    assert len({c.id for c in two.tool_calls}) == 2
    assert fake.requests[1]["body"]["tools"] == [WEATHER_TOOL, TIME_TOOL]


@pytest.mark.asyncio
async def test_deltas_are_coalesced(fake: RunningServer) -> None:
    words = " ".join(f"w{i}" for i in range(40))
    fake.set_script({"rules": [{"reply": words, "chunks": 40, "chunk_delay_ms": 5}]})
    seen: list[str] = []
    at: list[float] = []
    loop = asyncio.get_running_loop()

    async def on_delta(text: str) -> None:
        seen.append(text)
        at.append(loop.time())

    gateway = Gateway(coalesce_ms=50)
    began = loop.time()
    try:
        result = await gateway.complete(
            LLMRequest(HELLO), plan(openai_dep(fake)), on_delta=on_delta
        )
    finally:
        await gateway.aclose()
    took = loop.time() - began
    assert "".join(seen) == result.text == words
    # 40 chunks 5 ms apart take ~200 ms (longer on a busy machine): at most one callback per
    # 50 ms of the answer's time, plus the final flush — however long it took.
    assert 2 <= len(seen) <= took / 0.05 + 2, (len(seen), took)
    gaps = [later - earlier for earlier, later in zip(at[:-2], at[1:-1], strict=True)]
    assert all(gap >= 0.045 for gap in gaps), gaps

    sync_seen: list[str] = []
    gateway = Gateway(coalesce_ms=0)
    try:
        await gateway.complete(LLMRequest(HELLO), plan(openai_dep(fake)), on_delta=sync_seen.append)
    finally:
        await gateway.aclose()
    assert "".join(sync_seen) == words
    assert len(sync_seen) > 8


@pytest.mark.asyncio
async def test_ollama_through_v1(fake: RunningServer) -> None:
    dep = Deployment("ollama-1", "ollama", "llama3.2", fake.url + "/v1")
    gateway = Gateway()
    try:
        result = await gateway.complete(LLMRequest(HELLO), plan(dep))
    finally:
        await gateway.aclose()
    assert result.text
    assert result.cost == 0 and result.cost_estimated is False
    (seen,) = fake.requests
    assert seen["path"] == "/v1/chat/completions"
    assert "authorization" not in seen["headers"]


FAULTS = [
    ("429", "rate_limit", True, 429),
    ("500", "provider_error", True, 500),
    ("503", "provider_error", True, 503),
    ("auth", "auth", False, 401),
    ("context_length", "context_length", False, 400),
    ("malformed", "malformed_response", True, None),
    ("cut", "malformed_response", True, None),
    ("hang", "timeout", True, None),
]
# A cut can only strike a stream: a plain answer is one body, whole or absent.
FAULT_CASES = [
    (*case, stream) for case in FAULTS for stream in (False, True) if case[0] != "cut" or stream
]


@pytest.mark.asyncio
@pytest.mark.parametrize(("fault", "kind", "transient", "status", "stream"), FAULT_CASES)
async def test_faults_are_classified(
    fake: RunningServer, fault: str, kind: str, transient: bool, status: int | None, stream: bool
) -> None:
    dep = openai_dep(fake, model=f"gpt-4o-mini@fault={fault}", timeout_s=0.5)
    gateway = Gateway(max_retries=0)
    try:
        with pytest.raises(LLMError) as caught:
            await gateway.complete(LLMRequest(HELLO, stream=stream), plan(dep))
    finally:
        await gateway.aclose()
    error = caught.value
    assert (error.kind, error.transient, error.status) == (kind, transient, status)
    assert error.deployment_id == "dep-a"
    if fault == "429":
        assert error.retry_after == 1.0
    assert API_KEY not in str(error) and API_KEY not in repr(error)
    assert "Say hello" not in str(error)
    assert [a.error_kind for a in error.attempts] == [kind]


@pytest.mark.asyncio
async def test_no_usage_is_estimated(fake: RunningServer) -> None:
    fake.set_script({"rules": [{"reply": "x" * 400, "fault": "no_usage"}]})
    gateway = Gateway()
    try:
        result = await gateway.complete(LLMRequest(HELLO), plan(openai_dep(fake)))
    finally:
        await gateway.aclose()
    assert result.cost_estimated is True
    assert result.usage.completion_tokens == 100
    assert result.cost > 0


@pytest.mark.asyncio
async def test_unreachable(fake: RunningServer) -> None:
    dep = openai_dep(fake, base_url="http://127.0.0.1:9/v1")
    gateway = Gateway(max_retries=0)
    try:
        with pytest.raises(LLMError) as caught:
            await gateway.complete(LLMRequest(HELLO), plan(dep))
    finally:
        await gateway.aclose()
    assert (caught.value.kind, caught.value.transient) == ("unreachable", True)


def test_importing_and_using_the_lean_lane_never_imports_litellm(fake: RunningServer) -> None:
    code = f"""
import asyncio, sys
import agents.llm
from agents.llm import Deployment, Gateway, LLMRequest, Route, RoutePlan

async def main():
    gateway = Gateway()
    dep = Deployment("d", "openai", "gpt-4o-mini", {fake.base_urls["openai"]!r}, api_key="k")
    result = await gateway.complete(LLMRequest([{{"role": "user", "content": "hi"}}]),
                                    RoutePlan(Route([dep])))
    await gateway.aclose()
    assert result.text and result.cost > 0

asyncio.run(main())
assert "litellm" not in sys.modules, "litellm was imported"
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
