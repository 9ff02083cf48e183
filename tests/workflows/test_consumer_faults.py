"""The run WebSocket when the channel layer is down: the viewer still catches up, then is asked
to reconnect with a close code the server can send (4500, never 1011)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import connections

from tests.conftest import Personas
from tests.workflows.test_consumer import (
    Headers,
    add_events,
    close_code,
    event_seqs,
    make_run,
    open_socket,
    signed_in,
    subscribe,
)
from workflows import consumers
from workflows.fanout import live_fanout
from workflows.models import Run

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _close_consumer_connections() -> Iterator[None]:
    yield
    # The consumers' reads ran on asgiref's shared sync thread (see test_consumer.py).
    asyncio.run(sync_to_async(connections.close_all)())


@pytest.fixture
def run(personas: Personas) -> Run:
    return make_run(personas.workspace, personas.owner)


@pytest.fixture
def as_viewer(personas: Personas) -> Headers:
    return signed_in(personas.viewer)


def test_the_lost_feed_close_code_is_one_a_server_may_send() -> None:
    # RFC 6455 leaves 1011 to endpoints, but the server (autobahn) accepts only 1000 and
    # 3000–4999 from an application: a 1011 close is refused and the socket stays silent.
    assert consumers.CLOSE_INTERNAL == 1000 or 3000 <= consumers.CLOSE_INTERNAL <= 4999


@pytest.mark.asyncio
async def test_a_viewer_who_subscribes_while_the_layer_is_down_catches_up_then_reconnects(
    run: Run, as_viewer: Headers, monkeypatch: pytest.MonkeyPatch
) -> None:
    from channels.db import database_sync_to_async

    await database_sync_to_async(add_events)(run, 3)
    layer = get_channel_layer()

    async def broken_group_add(group: str, channel: str) -> None:
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(layer, "group_add", broken_group_add)
    socket = await open_socket(run.pk, as_viewer)
    replay = await subscribe(socket, 1)
    assert event_seqs(replay) == [2, 3]
    assert [m["type"] for m in replay][-2:] == ["replayed", "status"]
    assert await close_code(socket) == consumers.CLOSE_INTERNAL
    await socket.disconnect()
    assert live_fanout(layer).feeds == {}

    # The layer is back: the reconnected page follows live again.
    monkeypatch.undo()
    again = await open_socket(run.pk, as_viewer)
    assert event_seqs(await subscribe(again, 3)) == []
    assert str(run.pk) in live_fanout(layer).feeds
    await again.disconnect()
