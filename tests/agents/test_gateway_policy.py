"""Model calls re-check the outbound URL policy on the addresses they actually connect to."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from aiohttp.abc import AbstractResolver

from agents.fakellm import RunningServer
from agents.llm import Deployment, Gateway, LLMError, LLMRequest, Route, RoutePlan, lean
from agents.urlpolicy import PolicyResolver


class RebindingResolver(AbstractResolver):
    """A DNS answer that changed since the URL was saved: now it points at loopback."""

    async def resolve(self, host: str, port: int = 0, family: Any = socket.AF_INET) -> list[Any]:
        return [
            {
                "hostname": host,
                "host": "127.0.0.1",
                "port": port,
                "family": socket.AF_INET,
                "proto": 0,
                "flags": 0,
            }
        ]

    async def close(self) -> None:
        pass


def _call(
    server: RunningServer,
    allowed: tuple[str, ...],
    kind: str = "openai_compatible",
    stream: bool = False,
) -> Any:
    # The lean lane speaks OpenAI's protocol itself; Anthropic's goes through litellm.
    path = "" if kind == "anthropic" else "/v1"
    deployment = Deployment(
        id="p:demo",
        provider_kind=kind,
        model="demo",
        base_url=f"http://models.example:{server.port}{path}",
        api_key="sk-test-key-0000" if kind == "anthropic" else "",
    )

    async def run() -> Any:
        gateway = Gateway(max_retries=0)
        try:
            return await gateway.complete(
                LLMRequest([{"role": "user", "content": "hi"}], stream=stream),
                RoutePlan(Route([deployment])),
            )
        finally:
            await gateway.aclose()

    return asyncio.run(run())


@pytest.fixture
def rebinding(monkeypatch: pytest.MonkeyPatch):
    def install(allowed: tuple[str, ...]) -> None:
        monkeypatch.setattr(
            lean, "resolver_factory", lambda: PolicyResolver(allowed, inner=RebindingResolver())
        )

    return install


LANES = pytest.mark.parametrize("kind", ["openai_compatible", "anthropic"], ids=["lean", "full"])


@LANES
def test_a_host_that_now_resolves_to_loopback_is_not_called(
    llm_server, rebinding, kind: str
) -> None:
    rebinding(())
    with pytest.raises(LLMError) as caught:
        _call(llm_server, (), kind)
    assert "models.example resolves to 127.0.0.1" in str(caught.value)
    assert caught.value.kind == "refused"
    assert caught.value.transient is False
    assert llm_server.requests == []


@LANES
def test_a_streamed_call_is_checked_too(llm_server, rebinding, kind: str) -> None:
    rebinding(())
    with pytest.raises(LLMError) as caught:
        _call(llm_server, (), kind, stream=True)
    assert caught.value.kind == "refused"
    assert llm_server.requests == []
    rebinding(("models.example",))
    assert _call(llm_server, ("models.example",), kind, stream=True).text


@LANES
def test_an_allow_listed_host_may_resolve_to_loopback(llm_server, rebinding, kind: str) -> None:
    rebinding(("models.example",))
    result = _call(llm_server, ("models.example",), kind)
    assert result.text
    assert len(llm_server.requests) == 1


def test_the_application_installs_the_policy_resolver() -> None:
    from agents.urlpolicy import policy_resolver

    assert lean.resolver_factory is policy_resolver


@pytest.fixture
def rebinding_after_save(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The name resolved to a public address when it was checked, and to loopback since."""
    from agents import urlpolicy

    settings.OUTBOUND_ALLOWED_HOSTS = []
    monkeypatch.setattr(urlpolicy, "outbound_resolve", lambda host: ["93.184.216.34"])
    monkeypatch.setattr(urlpolicy.aiohttp, "ThreadedResolver", RebindingResolver)


def test_a_connection_check_connects_only_to_allowed_addresses(
    llm_server, rebinding_after_save
) -> None:
    from agents.connection import CheckTarget, connection_check_sync

    check = connection_check_sync(
        CheckTarget("openai_compatible", f"http://models.example:{llm_server.port}/v1")
    )
    assert not check.ok
    assert "models.example resolves to 127.0.0.1" in check.message
    assert llm_server.requests == []


def test_a_node_probe_connects_only_to_allowed_addresses(llm_server, rebinding_after_save) -> None:
    from agents.services.nodes import node_probe_url

    probe = asyncio.run(node_probe_url(f"http://models.example:{llm_server.port}"))
    assert not probe.ok
    assert "models.example resolves to 127.0.0.1" in probe.error
