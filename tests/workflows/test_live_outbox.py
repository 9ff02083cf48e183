"""The live outbox: publishing never waits on the channel layer and never raises into a run.

Stored events are the truth; the live copy is a courtesy. These tests drive the outbox with a
layer stand-in that works, fails, or hangs, and a clock of their own.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from workflows import live
from workflows.live import LiveOutbox


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Layer:
    """Records what it is sent; `failing` raises like a Redis that went away."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.failing = False
        self.hanging: asyncio.Event | None = None

    async def send(self, group: str, message: dict[str, Any]) -> None:
        if self.hanging is not None:
            await self.hanging.wait()
        if self.failing:
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        self.sent.append((group, message))


def numbered(n: int) -> dict[str, Any]:
    return {"type": "run.delta", "n": n}


def sent_numbers(layer: Layer) -> list[int]:
    return [message["n"] for _, message in layer.sent if "n" in message]


def resyncs(layer: Layer) -> list[str]:
    return [group for group, message in layer.sent if message["type"] == "run.resync"]


@pytest.mark.asyncio
async def test_messages_go_out_in_order_without_the_publisher_waiting() -> None:
    layer = Layer()
    outbox = LiveOutbox(send=layer.send)
    for n in range(5):
        outbox.put("run.1", numbered(n))
    assert layer.sent == []  # put returned before anything was sent
    await outbox.flush()
    assert sent_numbers(layer) == [0, 1, 2, 3, 4]
    assert (outbox.sent, outbox.dropped, outbox.failures) == (5, 0, 0)


@pytest.mark.asyncio
async def test_a_failing_layer_drops_the_live_copies_and_is_tried_again_later() -> None:
    layer = Layer()
    clock = Clock()
    outbox = LiveOutbox(send=layer.send, clock=clock, retry_after_s=1.0)
    layer.failing = True
    for n in range(3):
        outbox.put("run.1", numbered(n))  # never raises
    await outbox.flush()
    assert layer.sent == []
    assert outbox.failures == 1  # one try, not one per message
    assert outbox.dropped == 3

    # While the layer counts as down, messages are dropped at once instead of waiting on it.
    layer.failing = False
    outbox.put("run.1", numbered(3))
    await outbox.flush()
    assert layer.sent == []
    assert outbox.dropped == 4

    clock.now += 1.5
    outbox.put("run.1", numbered(4))
    outbox.put("run.2", numbered(5))
    assert outbox._task is not None
    await asyncio.wait_for(outbox._task, 5)  # ends once nothing is owed
    assert sent_numbers(layer) == [4, 5]
    assert outbox.down_until is None
    # The run whose messages were lost is told to resync, once; the other is not.
    assert resyncs(layer) == ["run.1"]


@pytest.mark.asyncio
async def test_a_hanging_layer_is_given_up_on_after_the_send_timeout() -> None:
    layer = Layer()
    layer.hanging = asyncio.Event()  # never set: a Redis that accepts and never answers
    outbox = LiveOutbox(send=layer.send, send_timeout_s=0.05)
    outbox.put("run.1", numbered(0))
    outbox.put("run.1", numbered(1))
    await asyncio.wait_for(outbox.flush(), 2)
    assert outbox.failures == 1
    assert outbox.dropped == 2
    outbox.close()


@pytest.mark.asyncio
async def test_at_most_limit_messages_wait_and_the_oldest_go_first() -> None:
    layer = Layer()
    outbox = LiveOutbox(send=layer.send, limit=3)
    for n in range(10):
        outbox.put("run.1", numbered(n))
    await outbox.flush()
    assert sent_numbers(layer) == [7, 8, 9]
    assert outbox.dropped == 7


@pytest.mark.asyncio
async def test_publishing_through_a_broken_layer_never_raises(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    layer = Layer()
    layer.failing = True
    outbox = LiveOutbox(send=layer.send)
    monkeypatch.setitem(live._outboxes, asyncio.get_running_loop(), outbox)
    await live.publish_delta("r1", step_key="a", agent="Ana", text="Hel")
    await live.publish_events("r1", [{"seq": 1, "kind": "log", "data": {}}])
    await live.publish_status("r1", "running")
    await live.ChannelLive().delta("r1", step_key="a", agent="Ana", text="lo")
    await outbox.flush()
    assert outbox.failures == 1
    assert outbox.dropped == 4
    outbox.close()


def test_a_status_announced_from_synchronous_code_survives_a_broken_layer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def broken(group: str, message: dict[str, Any]) -> None:
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(live, "_group_send", broken)
    live.announce_status("r1", "cancelled", "Cancelled by olivia.")  # no exception


@pytest.mark.asyncio
async def test_runs_that_lost_messages_are_told_to_resync_when_the_layer_is_back() -> None:
    layer = Layer()
    outbox = LiveOutbox(send=layer.send, retry_after_s=0.05)
    layer.failing = True
    outbox.put("run.1", numbered(0))
    outbox.put("run.2", numbered(1))
    await outbox.flush()
    assert outbox.dropped == 2 and layer.sent == []
    # Nothing more is published for these runs (they ended): the resync goes out on its own.
    layer.failing = False
    assert outbox._task is not None
    await asyncio.wait_for(outbox._task, 5)
    assert sorted(resyncs(layer)) == ["run.1", "run.2"]
    assert outbox.lost == set()
