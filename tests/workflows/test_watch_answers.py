"""Counting a run's viewers once for all the messages a count can answer for.

A count asked at time T answers for messages put before T (their events were stored before
it, so a viewer it missed replays them); a message put after it is asked about anew. These
tests drive `WatchAnswers` with a stand-in of the Redis layer that counts its ZCOUNTs.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from workflows.live import WatchAnswers


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Connection:
    def __init__(self, layer: RedisLayer) -> None:
        self.layer = layer

    async def zcount(self, key: str, low: str, high: str) -> int:
        self.layer.counts += 1
        if self.layer.gate is not None:
            await self.layer.gate.wait()
        if self.layer.failing:
            self.layer.failing = False  # fails once, then answers again
            raise ConnectionError("Connection refused.")
        return self.layer.members


class RedisLayer:
    """What `_watched` uses of the Redis channel layer."""

    group_expiry = 86400

    def __init__(self) -> None:
        self.members = 0
        self.counts = 0
        self.failing = False
        self.gate: asyncio.Event | None = None

    def _group_key(self, group: str) -> str:
        return f"asgi:group:{group}"

    def consistent_hash(self, group: str) -> int:
        return 0

    def connection(self, index: int) -> Any:
        return Connection(self)


@pytest.mark.asyncio
async def test_messages_put_before_a_count_are_answered_by_it() -> None:
    clock, layer = Clock(), RedisLayer()
    answers = WatchAnswers(clock=clock)
    assert await answers.watched(layer, "run.1", None) is False  # the engine asks
    clock.now += 0.01
    # Two messages put before that count: no count of their own.
    assert await answers.watched(layer, "run.1", 99.9) is False
    assert await answers.watched(layer, "run.1", 100.0) is False
    assert layer.counts == 1


@pytest.mark.asyncio
async def test_a_message_put_after_the_last_count_is_asked_about_anew() -> None:
    clock, layer = Clock(), RedisLayer()
    answers = WatchAnswers(clock=clock)
    assert await answers.watched(layer, "run.1", None) is False
    layer.members = 1  # a viewer joins after the count
    clock.now += 0.01
    assert await answers.watched(layer, "run.1", clock.now) is True
    assert layer.counts == 2


@pytest.mark.asyncio
async def test_an_old_count_answers_for_nothing() -> None:
    clock, layer = Clock(), RedisLayer()
    answers = WatchAnswers(clock=clock)
    await answers.watched(layer, "run.1", None)
    clock.now += 5.0
    await answers.watched(layer, "run.1", 99.0)
    assert layer.counts == 2


@pytest.mark.asyncio
async def test_a_count_on_its_way_is_shared_and_a_failed_one_is_asked_again() -> None:
    clock, layer = Clock(), RedisLayer()
    answers = WatchAnswers(clock=clock)
    layer.gate = asyncio.Event()
    first = asyncio.ensure_future(answers.watched(layer, "run.1", None))
    await asyncio.sleep(0)
    waiting = asyncio.ensure_future(answers.watched(layer, "run.1", 99.0))
    await asyncio.sleep(0)
    layer.members = 2
    layer.gate.set()
    assert await first is True and await waiting is True
    assert layer.counts == 1

    clock.now += 0.01
    layer.gate = asyncio.Event()
    layer.failing = True
    failing = asyncio.ensure_future(answers.watched(layer, "run.1", None))
    await asyncio.sleep(0)
    after = asyncio.ensure_future(answers.watched(layer, "run.1", clock.now))
    await asyncio.sleep(0)
    layer.gate.set()
    with pytest.raises(ConnectionError):
        await failing
    assert await after is True  # its own count, once the shared one failed
    assert layer.counts == 3


@pytest.mark.asyncio
async def test_groups_are_counted_apart() -> None:
    clock, layer = Clock(), RedisLayer()
    answers = WatchAnswers(clock=clock)
    await answers.watched(layer, "run.1", None)
    await answers.watched(layer, "run.2", 99.0)
    assert layer.counts == 2
