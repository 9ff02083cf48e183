"""The remote agent client's connections obey the outbound URL policy where they are made."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from agents.remote import transport
from agents.remote.transport import PolicyConnectRefused, PolicyNetworkBackend


def test_a_host_that_resolves_to_loopback_when_connecting_is_refused(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    # Checked as public before the call, the name now points at this machine (DNS rebinding).
    settings.OUTBOUND_ALLOWED_HOSTS = []
    monkeypatch.setattr(transport, "outbound_resolve", lambda host: ["127.0.0.1"])
    with pytest.raises(PolicyConnectRefused, match="loopback"):
        asyncio.run(PolicyNetworkBackend().connect_tcp("agents.example.com", 80, timeout=2))


def test_the_refusal_reaches_the_caller_as_the_policys_reason(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    settings.OUTBOUND_ALLOWED_HOSTS = []
    monkeypatch.setattr(transport, "outbound_resolve", lambda host: ["10.0.0.7"])

    async def get() -> None:
        async with httpx.AsyncClient(transport=transport.policy_transport()) as client:
            await client.get("http://agents.example.com/.well-known/agent-card.json")

    with pytest.raises(httpx.ConnectError, match="Refused by the outbound URL policy.*private"):
        asyncio.run(get())
