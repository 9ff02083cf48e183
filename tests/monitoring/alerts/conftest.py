"""Alerts fixtures: ledger rows shaped as the gateway writes them, and a real webhook receiver."""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.utils import timezone

from a2a_site.accounts.models import Workspace
from agents.models import LedgerEntry


def ledger_call(
    workspace: Workspace,
    *,
    at: datetime,
    failed: bool = False,
    latency_ms: int = 800,
    cost: str = "0.001",
    price_source: str = LedgerEntry.PriceSource.PRICE_LIST,
) -> LedgerEntry:
    """One finished provider call, as `agents.ledger.DatabaseLedger` leaves it."""
    return LedgerEntry.objects.create(
        call_id=uuid.uuid4(),
        workspace=workspace,
        deployment_id="openai/gpt-4o-mini",
        provider_kind="openai",
        model="gpt-4o-mini",
        status=LedgerEntry.Status.FAILED if failed else LedgerEntry.Status.COMPLETED,
        prompt_tokens=100,
        completion_tokens=0 if failed else 50,
        cost=Decimal(0) if failed else Decimal(cost),
        price_source="" if failed else price_source,
        latency_ms=latency_ms,
        error_kind="server_error" if failed else "",
        http_status=500 if failed else 200,
        source={"kind": "step"},
        started_at=at,
        finished_at=at + timedelta(milliseconds=latency_ms),
    )


@pytest.fixture
def now() -> datetime:
    return timezone.now().replace(microsecond=0)


@dataclass
class Received:
    headers: dict[str, str]
    body: str


@dataclass
class WebhookReceiver:
    url: str
    requests: list[Received] = field(default_factory=list)
    # Status codes answered in turn; 200 once they run out.
    answers: list[int] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)


def standard_webhook_verify(secret: str, received: Received, *, tolerance_s: int = 300) -> bool:
    """What a receiver does (Standard Webhooks): recompute the signature, check the timestamp."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    msg_id = received.headers["webhook-id"]
    timestamp = received.headers["webhook-timestamp"]
    if abs(int(timezone.now().timestamp()) - int(timestamp)) > tolerance_s:
        return False
    expected = base64.b64encode(
        hmac.new(key, f"{msg_id}.{timestamp}.{received.body}".encode(), hashlib.sha256).digest()
    ).decode()
    signatures = [part.split(",", 1)[1] for part in received.headers["webhook-signature"].split()]
    return any(hmac.compare_digest(expected, signature) for signature in signatures)


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the standard library's name
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length).decode()
            receiver.requests.append(
                Received({k.lower(): v for k, v in self.headers.items()}, body)
            )
            status = receiver.answers.pop(0) if receiver.answers else 200
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()
            receiver.arrived.set()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/a2a"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()
