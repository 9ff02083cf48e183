"""Our lean lane sends what litellm sends, and our prices are litellm's.

Both clients call the same real server on loopback; the bodies, paths and auth headers it
received are compared. Azure's path is not one fakellm serves, so a small capturing server
answers it.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web

from agents.fakellm import RunningServer
from agents.llm import Deployment, Gateway, LLMRequest, Route, RoutePlan, Usage, price_usage
from agents.llm.full import load_litellm
from agents.llm.pricing import price_call

from .conftest import API_KEY, HELLO, WEATHER_TOOL

pytestmark = pytest.mark.slow

MEANINGFUL = ("model", "messages", "tools", "temperature", "max_tokens", "stream", "stream_options")
AUTH_HEADERS = ("authorization", "api-key", "x-api-key")
REPLY = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "m",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}
CHUNKS = [
    {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [
            {"index": 0, "delta": {"role": "assistant", "content": "hi"}, "finish_reason": None}
        ],
    },
    {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
    },
    {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    },
]


@pytest_asyncio.fixture
async def capture() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A catch-all server recording path, query, headers and body; answers OpenAI-style."""
    seen: list[dict[str, Any]] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        seen.append(
            {
                "path": request.path,
                "query": dict(request.query),
                "headers": {k.lower(): v for k, v in request.headers.items()},
                "body": body,
            }
        )
        if not body.get("stream"):
            return web.json_response(REPLY)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for chunk in CHUNKS:
            await response.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()


# kind -> (model, litellm model) ; Ollama's OpenAI endpoint is what litellm calls "openai/".
LEAN_KINDS = {
    "openai": ("gpt-4o-mini", "openai/gpt-4o-mini"),
    "groq": ("llama-3.1-8b-instant", "groq/llama-3.1-8b-instant"),
    "mistral": ("mistral-small-latest", "mistral/mistral-small-latest"),
    "openrouter": ("openai/gpt-4o-mini", "openrouter/openai/gpt-4o-mini"),
    "openai_compatible": ("qwen2.5", "openai/qwen2.5"),
    "ollama": ("llama3.2", "openai/llama3.2"),
}


def meaningful(entry: dict[str, Any]) -> dict[str, Any]:
    # An absent `stream` means false; litellm spells it out for some providers.
    body = {"stream": False} | entry["body"]
    headers = {h for h in AUTH_HEADERS if h in entry["headers"]}
    return {
        "path": entry["path"],
        "auth": headers,
        "body": {k: body[k] for k in MEANINGFUL if k in body},
    }


def request(stream: bool) -> LLMRequest:
    return LLMRequest(
        [{"role": "system", "content": "Be brief."}, *HELLO],
        tools=[WEATHER_TOOL],
        temperature=0.3,
        max_tokens=200,
        stream=stream,
    )


async def via_litellm(model: str, base: str, req: LLMRequest, **extra: Any) -> None:
    litellm = load_litellm()
    kwargs: dict[str, Any] = {
        "model": model,
        "api_base": base,
        "api_key": API_KEY,
        "messages": req.messages,
        "tools": req.tools,
        "temperature": req.temperature,
        "max_tokens": req.max_tokens,
        "stream": req.stream,
        "num_retries": 0,
        **extra,
    }
    if req.stream:
        kwargs["stream_options"] = {"include_usage": True}
    try:
        response = await litellm.acompletion(**kwargs)
        if req.stream:
            async for _ in response:
                pass
    except litellm.APIConnectionError as exc:
        # litellm 1.110 fails to parse some providers' replies (e.g. groq's `service_tier`);
        # what matters here is the request it sent, which the server has recorded.
        if "has no attribute" not in str(exc):
            raise


@pytest.mark.asyncio
@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("kind", sorted(LEAN_KINDS))
async def test_lean_lane_sends_what_litellm_sends(
    fake: RunningServer, kind: str, stream: bool
) -> None:
    model, litellm_model = LEAN_KINDS[kind]
    base = fake.base_urls["openai"]
    req = request(stream)
    gw = Gateway()
    try:
        await gw.complete(
            req, RoutePlan(Route([Deployment("d", kind, model, base, api_key=API_KEY)]))
        )
    finally:
        await gw.aclose()
    await via_litellm(litellm_model, base, req)
    ours, theirs = fake.requests
    assert meaningful(ours) == meaningful(theirs)


@pytest.mark.asyncio
@pytest.mark.parametrize("stream", [False, True])
async def test_azure_url_auth_and_body_match_litellm(
    capture: tuple[str, list[dict[str, Any]]], stream: bool
) -> None:
    base, seen = capture
    req = request(stream)
    dep = Deployment("az", "azure", "my-gpt4o", base, api_key=API_KEY, api_version="2024-10-21")
    gw = Gateway()
    try:
        result = await gw.complete(req, RoutePlan(Route([dep])))
    finally:
        await gw.aclose()
    assert result.text == "hi"
    await via_litellm("azure/my-gpt4o", base, req, api_version="2024-10-21")
    ours, theirs = seen
    assert ours["path"] == "/openai/deployments/my-gpt4o/chat/completions"
    assert ours["query"] == theirs["query"] == {"api-version": "2024-10-21"}
    assert ours["headers"]["api-key"] == API_KEY
    assert meaningful(ours) == meaningful(theirs) | {
        "body": meaningful(theirs)["body"] | {"model": "my-gpt4o"}
    } or meaningful(ours) == meaningful(theirs)


@pytest.mark.parametrize(
    ("kind", "model", "litellm_model"),
    [
        ("openai", "gpt-4o-mini", "gpt-4o-mini"),
        ("openai", "gpt-4o", "gpt-4o"),
        ("anthropic", "claude-haiku-4-5", "anthropic/claude-haiku-4-5"),
        ("mistral", "mistral-small-latest", "mistral/mistral-small-latest"),
        ("azure", "gpt-4o-mini", "azure/gpt-4o-mini"),
        ("groq", "openai/gpt-oss-20b", "groq/openai/gpt-oss-20b"),
    ],
)
@pytest.mark.parametrize(("prompt", "completion"), [(1234, 567), (1, 0), (100_000, 4096)])
def test_prices_match_litellm(
    kind: str, model: str, litellm_model: str, prompt: int, completion: int
) -> None:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    litellm = load_litellm()
    dep = Deployment("p", kind, model, "http://127.0.0.1:1")
    cost, estimated = price_usage(dep, Usage(prompt, completion, prompt + completion))
    response = litellm.ModelResponse(
        model=litellm_model,
        usage=litellm.Usage(
            prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
        ),
    )
    expected = litellm.completion_cost(completion_response=response, model=litellm_model)
    assert not estimated
    assert cost > 0
    assert float(cost) == pytest.approx(expected, rel=1e-9)


def test_overrides_and_free_kinds() -> None:
    dep = Deployment(
        "p",
        "openai",
        "gpt-4o-mini",
        "http://x",
        input_price_per_1k=Decimal("0.5"),
        output_price_per_1k=Decimal("1.5"),
    )
    assert price_usage(dep, Usage(2000, 1000, 3000)) == (Decimal("2.5"), False)
    for kind in ("ollama", "demo"):
        assert price_call(Deployment("p", kind, "gpt-4o", "http://x"), Usage(9, 9, 18)) == (
            0,
            "free",
        )
    assert price_usage(Deployment("p", "openai", "no-such-model", "http://x"), Usage(9, 9, 18)) == (
        0,
        True,
    )


def test_an_openai_compatible_gateway_is_priced_by_the_model_it_serves_or_said_unknown() -> None:
    usage = Usage(1_000_000, 1_000_000, 2_000_000)
    gateway = Deployment("p", "openai_compatible", "gpt-4o-mini", "http://x")
    listed = Deployment("p", "openai", "gpt-4o-mini", "http://x")

    cost, source = price_call(gateway, usage)

    assert source == "price_list"
    assert cost > 0 and cost == price_call(listed, usage)[0]
    # A local model behind the same kind of endpoint has no public price: unknown, not free.
    assert price_call(Deployment("p", "openai_compatible", "my-llama", "http://x"), usage) == (
        0,
        "unknown",
    )
    # The name the provider reports is tried first: an alias priced by what answered.
    alias = Deployment("p", "openai_compatible", "house-model", "http://x")
    assert price_call(alias, usage, "gpt-4o-mini")[1] == "price_list"
