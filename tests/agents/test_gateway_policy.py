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


def _call(server: RunningServer, allowed: tuple[str, ...]) -> Any:
    deployment = Deployment(
        id="p:demo",
        provider_kind="openai_compatible",
        model="demo",
        base_url=f"http://models.example:{server.port}/v1",
    )

    async def run() -> Any:
        gateway = Gateway(max_retries=0)
        try:
            return await gateway.complete(
                LLMRequest([{"role": "user", "content": "hi"}], stream=False),
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


def test_a_host_that_now_resolves_to_loopback_is_not_called(llm_server, rebinding) -> None:
    rebinding(())
    with pytest.raises(LLMError) as caught:
        _call(llm_server, ())
    assert "models.example resolves to 127.0.0.1" in str(caught.value)
    assert caught.value.kind == "refused"
    assert caught.value.transient is False
    assert llm_server.requests == []


def test_an_allow_listed_host_may_resolve_to_loopback(llm_server, rebinding) -> None:
    rebinding(("models.example",))
    result = _call(llm_server, ("models.example",))
    assert result.text
    assert len(llm_server.requests) == 1


def test_the_application_installs_the_policy_resolver() -> None:
    from agents.urlpolicy import policy_resolver

    assert lean.resolver_factory is policy_resolver
