"""An httpx transport that applies the outbound URL policy to the address it connects to.

The URL is checked before each call, but the host is resolved again when connecting: a hostile
DNS server could answer with a public address first and a loopback one then (DNS rebinding).
Here the addresses are resolved once, checked, and the connection goes to a checked one; TLS
still names the host (httpcore sends the origin's host name for SNI and certificates).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx
from django.conf import settings

from agents.urlpolicy import (
    OutboundURLRefused,
    outbound_is_literal,
    outbound_resolve,
    outbound_url_check,
)

POLICY_REFUSED = "Refused by the outbound URL policy"


class PolicyConnectRefused(httpcore.ConnectError):
    """The address the host resolved to at connect time is one the policy refuses."""


class PolicyNetworkBackend(httpcore.AsyncNetworkBackend):
    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        literal = outbound_is_literal(host)
        addresses = [host] if literal else await asyncio.to_thread(outbound_resolve, host)
        netloc = f"[{host}]" if ":" in host else host
        try:
            outbound_url_check(
                f"http://{netloc}/",
                allowed_hosts=settings.OUTBOUND_ALLOWED_HOSTS,
                resolve=lambda _: addresses,
            )
        except OutboundURLRefused as refused:
            raise PolicyConnectRefused(f"{POLICY_REFUSED}: {refused}") from None
        return await self._inner.connect_tcp(
            addresses[0],
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise PolicyConnectRefused(f"{POLICY_REFUSED}: no Unix sockets.")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def policy_transport() -> httpx.AsyncHTTPTransport:
    """httpx's own transport, connecting through `PolicyNetworkBackend`."""
    transport = httpx.AsyncHTTPTransport()
    # httpx 0.29 builds its pool in __init__ without a way to pass a network backend; the pool
    # is rebuilt with the same TLS context and the backend (the version is pinned).
    ssl_context = transport._pool._ssl_context
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=ssl_context,
        max_connections=20,
        max_keepalive_connections=5,
        keepalive_expiry=5.0,
        network_backend=PolicyNetworkBackend(),
    )
    return transport
