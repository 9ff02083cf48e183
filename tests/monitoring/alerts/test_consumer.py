"""The notifications socket through the real ASGI stack, on the in-memory layer (embedded pass)
and on Redis (services pass)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections
from django.utils import timezone

from a2a_site.asgi import application
from monitoring.alerts import consumers
from monitoring.alerts.evaluation import alerts_evaluate
from tests.conftest import Personas
from tests.monitoring.alerts.conftest import ledger_call
from tests.workflows.test_consumer import HOST, ORIGIN, TIMEOUT, close_code, signed_in

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _close_consumer_connections() -> Iterator[None]:
    yield
    asyncio.run(sync_to_async(connections.close_all)())


def socket_for(personas: Personas, headers: list[tuple[bytes, bytes]]) -> WebsocketCommunicator:
    path = f"/ws/workspaces/{personas.workspace.pk}/notifications/"
    return WebsocketCommunicator(application, path, headers=headers)


def error_burst(personas: Personas) -> None:
    now = timezone.now()
    for n in range(10):
        ledger_call(personas.workspace, at=now - timedelta(minutes=1), failed=n < 3)
    alerts_evaluate(now=now)


@pytest.mark.asyncio
async def test_anonymous_and_outsiders_are_refused(personas: Personas) -> None:
    anonymous = socket_for(personas, [HOST, ORIGIN])
    assert (await anonymous.connect(timeout=TIMEOUT))[0]
    assert await close_code(anonymous) == consumers.CLOSE_UNAUTHENTICATED
    await anonymous.disconnect()

    outsider = socket_for(personas, await sync_to_async(signed_in)(personas.outsider))
    assert (await outsider.connect(timeout=TIMEOUT))[0]
    assert await close_code(outsider) == consumers.CLOSE_NOT_FOUND
    await outsider.disconnect()


@pytest.mark.asyncio
async def test_a_member_hears_an_alert_fire_live(personas: Personas) -> None:
    socket = socket_for(personas, await sync_to_async(signed_in)(personas.viewer))
    assert (await socket.connect(timeout=TIMEOUT))[0]

    await sync_to_async(error_burst)(personas)

    message = await socket.receive_json_from(timeout=TIMEOUT)
    assert message["type"] == "notification"
    assert message["event"] == "alert.fired"
    assert message["title"] == "Alert: Error rate above 10 %"
    assert "3 of 10 calls failed" in message["body"]
    assert message["url"].startswith("/alerts/")
    await socket.disconnect()


@pytest.mark.asyncio
async def test_a_frame_from_a_former_member_closes_the_socket(personas: Personas) -> None:
    from a2a_site.accounts.models import Membership

    socket = socket_for(personas, await sync_to_async(signed_in)(personas.viewer))
    assert (await socket.connect(timeout=TIMEOUT))[0]
    await socket.send_to(text_data="{not json")  # ignored: the socket stays open
    assert await socket.receive_nothing(timeout=0.2)

    await sync_to_async(Membership.objects.filter(user=personas.viewer).delete)()
    await socket.send_to(text_data="ping")
    assert await close_code(socket) == consumers.CLOSE_NOT_FOUND
    await socket.disconnect()
