"""Signed webhooks, per the Standard Webhooks convention: the one place that signs and posts
them, for the alert channels and the run-event subscriptions alike.

Each message carries `webhook-id` (the same on every retry), `webhook-timestamp` (Unix seconds, of
this attempt) and `webhook-signature`: `v1,` and the base64 HMAC-SHA256, keyed with the secret's
bytes, of `<id>.<timestamp>.<body>`. The secret is `whsec_` and base64 of 32 random bytes; it is
shown once and stored encrypted (`agents.crypto`).

The URL obeys the outbound policy: private and loopback addresses are refused unless an
administrator allow-listed the host (A2A_OUTBOUND_ALLOWED_HOSTS), checked again at connect time
against what DNS answers then; redirects are not followed.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import aiohttp
from django.conf import settings

from agents.urlpolicy import (
    OutboundHostUnresolved,
    OutboundURLRefused,
    PolicyResolver,
    outbound_url_check,
)

SECRET_PREFIX = "whsec_"
USER_AGENT = "A2A-Studio-Webhooks/1"


def webhook_secret_new() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def webhook_secret_key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def webhook_signature(*, secret: str, message_id: str, timestamp: int, body: str) -> str:
    signed = f"{message_id}.{timestamp}.{body}".encode()
    digest = hmac.new(webhook_secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def webhook_headers(*, secret: str, message_id: str, timestamp: int, body: str) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": webhook_signature(
            secret=secret, message_id=message_id, timestamp=timestamp, body=body
        ),
    }


def webhook_url_check(url: str) -> str:
    """The URL normalized, or OutboundURLRefused saying why the studio will not call it."""
    return outbound_url_check(url, allowed_hosts=settings.OUTBOUND_ALLOWED_HOSTS)


@dataclass(frozen=True)
class PostResult:
    status_code: int | None
    error: str  # "" on a 2xx
    refused: bool = False  # by the outbound policy: permanent, not retried


async def _post(url: str, headers: dict[str, str], body: str, timeout: float) -> PostResult:
    resolver = PolicyResolver(tuple(settings.OUTBOUND_ALLOWED_HOSTS))
    connector = aiohttp.TCPConnector(resolver=resolver, force_close=True)
    async with (
        aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as session,
        session.post(url, data=body.encode(), headers=headers, allow_redirects=False) as response,
    ):
        await response.read()
        if 200 <= response.status < 300:
            return PostResult(response.status, "")
        return PostResult(response.status, f"The receiver answered HTTP {response.status}.")


def webhook_post(
    *, url: str, secret: str, message_id: str, body: str, timeout: float | None = None
) -> PostResult:
    """One signed attempt; never raises."""
    try:
        checked = webhook_url_check(url)
    except OutboundHostUnresolved as unresolved:  # DNS may answer later: retried
        return PostResult(None, str(unresolved))
    except OutboundURLRefused as refused:
        return PostResult(None, str(refused), refused=True)
    headers = webhook_headers(
        secret=secret, message_id=message_id, timestamp=int(time.time()), body=body
    )
    timeout = float(timeout or settings.ALERTS_WEBHOOK_TIMEOUT_SECONDS)
    try:
        return asyncio.run(_post(checked, headers, body, timeout))
    except OutboundURLRefused as refused:  # at connect time (DNS answered differently)
        return PostResult(None, str(refused), refused=True)
    except TimeoutError:
        return PostResult(None, f"No answer within {timeout:g} s.")
    except aiohttp.ClientError as error:
        cause = error.__cause__ if isinstance(error.__cause__, OutboundURLRefused) else None
        if cause is not None:
            return PostResult(None, str(cause), refused=True)
        return PostResult(None, f"Could not connect ({type(error).__name__}).")
