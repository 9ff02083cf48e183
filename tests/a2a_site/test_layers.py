"""The embedded mode's channel layer: a run's loop, in its own thread, reaches the web loop."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from a2a_site.layers import LoopSafeInMemoryChannelLayer


def start_loop() -> asyncio.AbstractEventLoop:
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    return loop


def test_a_message_sent_from_another_threads_loop_wakes_the_receiver_at_once() -> None:
    layer = LoopSafeInMemoryChannelLayer()
    web = start_loop()
    executor = start_loop()
    arrived = threading.Event()
    received: list[dict[str, Any]] = []

    async def viewer(channel: str) -> None:
        received.append(await layer.receive(channel))
        arrived.set()

    try:
        channel = asyncio.run_coroutine_threadsafe(layer.new_channel(), web).result(5)
        asyncio.run_coroutine_threadsafe(layer.group_add("run.1", channel), web).result(5)
        asyncio.run_coroutine_threadsafe(viewer(channel), web)
        # Let the web loop go to sleep waiting: nothing but the message may wake it now.
        wait_idle(web)

        asyncio.run_coroutine_threadsafe(
            layer.group_send("run.1", {"type": "run.status", "status": "running"}), executor
        ).result(5)

        assert arrived.wait(2), "the web loop was never woken for the message"
        assert received == [{"type": "run.status", "status": "running"}]
    finally:
        for loop in (web, executor):
            loop.call_soon_threadsafe(loop.stop)


def wait_idle(loop: asyncio.AbstractEventLoop) -> None:
    """Until `loop` has run what was handed to it before: the viewer now waits on its queue."""
    asyncio.run_coroutine_threadsafe(asyncio.sleep(0), loop).result(5)


def test_on_one_loop_it_is_the_plain_in_memory_layer() -> None:
    async def scenario() -> dict[str, Any]:
        layer = LoopSafeInMemoryChannelLayer()
        channel = await layer.new_channel()
        await layer.group_add("run.2", channel)
        await layer.group_send("run.2", {"type": "run.delta", "text": "hi"})
        await layer.group_discard("run.2", channel)
        await layer.group_send("run.2", {"type": "run.delta", "text": "unseen"})
        return await asyncio.wait_for(layer.receive(channel), 2)

    assert asyncio.run(scenario()) == {"type": "run.delta", "text": "hi"}
