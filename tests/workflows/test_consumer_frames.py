"""Frames a client may send the run WebSocket, malformed on purpose.

Whatever arrives — text that is not JSON, JSON nested thousands deep, the wrong types, numbers no
column holds, binary frames — the consumer answers `{"type": "error"}` and closes with 4400 (a code
a browser reads, so it stops reconnecting), never 1011, and never fails: the next socket of the
same run works.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.db import connections
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.conftest import Personas
from tests.workflows.test_consumer import (
    TIMEOUT,
    Headers,
    close_code,
    make_run,
    open_socket,
    signed_in,
    subscribe,
)
from workflows import consumers
from workflows.models import Run

pytestmark = pytest.mark.django_db(transaction=True)

DEEP = "[" * 5000 + "]" * 5000


@pytest.fixture(autouse=True)
def _close_consumer_connections() -> Iterator[None]:
    yield
    asyncio.run(sync_to_async(connections.close_all)())


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(["type", "after_seq", "x"]), children, max_size=3)
    ),
    max_leaves=8,
)
# A subscribe message whose parts are of every type but the right one.
subscribes = st.fixed_dictionaries(
    {"type": st.just("subscribe") | json_values, "after_seq": json_values}
).filter(
    lambda frame: (
        not (
            frame["type"] == "subscribe"
            and isinstance(frame["after_seq"], int)
            and not isinstance(frame["after_seq"], bool)
            and 0 <= frame["after_seq"] < 2**63
        )
    )
)
text_frames = st.one_of(
    st.text(max_size=40).filter(lambda text: not text.strip().startswith("{")),
    json_values.map(json.dumps),
    subscribes.map(json.dumps),
    st.sampled_from(
        [
            DEEP,
            '{"type": "subscribe", "after_seq": ' + DEEP + "}",
            '{"type": ' * 3000 + "1" + "}" * 3000,
            '{"type": "subscribe", "after_seq": 1e999}',
            '{"type": "subscribe", "after_seq": NaN}',
            '{"type": "subscribe", "after_seq": ' + "9" * 5000 + "}",
            '{"type": "subscribe", "after_seq": 99999999999999999999}',
            '{"type": "subscribe\\u0000", "after_seq": 0}',
            '{"type": "\\ud800", "after_seq": 0}',
            "",
        ]
    ),
)
frames = st.one_of(
    text_frames.map(lambda text: {"text_data": text}),
    st.binary(max_size=40).map(lambda data: {"bytes_data": data}),
)


@pytest.fixture
def run(personas: Personas) -> Run:
    return make_run(personas.workspace, personas.owner)


@pytest.fixture
def as_owner(personas: Personas) -> Headers:
    return signed_in(personas.owner)


async def refused(run_id: Any, headers: Headers, frame: dict[str, Any]) -> None:
    socket = await open_socket(run_id, headers)
    # Not send_to(): it refuses empty frames, which a client can still send.
    key = "text" if "text_data" in frame else "bytes"
    await socket.send_input({"type": "websocket.receive", key: next(iter(frame.values()))})
    error = await socket.receive_json_from(timeout=TIMEOUT)
    assert error["type"] == "error" and error["error"], frame
    assert await close_code(socket) == consumers.CLOSE_BAD_REQUEST, frame
    await socket.disconnect()


@pytest.mark.asyncio
async def test_deep_nesting_closes_4400_and_the_run_stays_watchable(
    run: Run, as_owner: Headers
) -> None:
    for text in (DEEP, '{"type": "subscribe", "after_seq": ' + DEEP + "}"):
        await refused(run.pk, as_owner, {"text_data": text})
    socket = await open_socket(run.pk, as_owner)
    replay = await subscribe(socket, 0)
    assert replay[-1]["type"] == "status"
    await socket.disconnect()


@pytest.mark.asyncio
async def test_a_binary_frame_is_told_to_send_text(run: Run, as_owner: Headers) -> None:
    socket = await open_socket(run.pk, as_owner)
    await socket.send_to(bytes_data=b'{"type": "subscribe", "after_seq": 0}')
    error = await socket.receive_json_from(timeout=TIMEOUT)
    assert "text frames" in error["error"]
    assert await close_code(socket) == consumers.CLOSE_BAD_REQUEST
    await socket.disconnect()


def test_no_frame_crashes_the_consumer(personas: Personas) -> None:
    run = make_run(personas.workspace, personas.owner)
    headers = signed_in(personas.owner)

    @settings(
        max_examples=25,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @example(frame={"text_data": DEEP})
    @example(frame={"bytes_data": b"\xff\xfe"})
    @example(frame={"text_data": '{"type": "subscribe", "after_seq": 99999999999999999999}'})
    @given(frame=frames)
    def fuzz(frame: dict[str, Any]) -> None:
        asyncio.run(refused(run.pk, headers, frame))

    fuzz()
    # Still serving: a good subscribe after all of that replays and reports the status.

    async def watch() -> list[dict[str, Any]]:
        socket = await open_socket(run.pk, headers)
        replay = await subscribe(socket, 0)
        await socket.disconnect()
        return replay

    assert asyncio.run(watch())[-1]["type"] == "status"
    asyncio.run(database_sync_to_async(connections.close_all)())
