"""A run's events and status changes for A2A streams: the run page's replay-then-live path.

`RunFeed` is the Server-Sent Events stream of the API (workflows/sse.py, itself the WebSocket
consumer with its socket swapped for a queue) handing over each frame as the dict it would have
sent: stored events after a seq from the database, then live ones from the channel layer, each
seq once. So a subscriber on any web process sees the run a worker on any machine executes —
nothing comes from the SDK's per-process queues.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator
from typing import Any

from workflows.sse import RunEventStream

_END: dict[str, Any] = {"type": "__end__"}


class RunFeed(RunEventStream):
    async def send(
        self, text_data: str | None = None, bytes_data: bytes | None = None, close: bool = False
    ) -> None:
        if text_data is not None:
            self.frames.put_nowait(json.loads(text_data))
        if close:
            self.frames.put_nowait(_END)

    async def close(self, code: int | None = None, reason: str | None = None) -> None:
        self.authorized = False
        self.frames.put_nowait(_END)

    async def messages_after(self, after_seq: int) -> AsyncGenerator[dict[str, Any]]:
        """The run's frames (`event`, `replayed`, `status`, `delta`) until the feed ends; the
        caller stops reading when it has what it waits for."""
        await self.subscribe(after_seq)
        try:
            while True:
                frame = await self.frames.get()
                if frame is _END:
                    return
                yield frame
        finally:
            with contextlib.suppress(Exception):
                await self._leave_live()


async def wait_for_status(
    run_id: str, user: Any, *, after_seq: int, done: set[str], timeout: float
) -> str | None:
    """The run's status once it is one of `done` (None on timeout or a lost feed)."""
    feed = RunFeed(run_id=run_id, user=user)

    async def watch() -> str | None:
        frames = feed.messages_after(after_seq)
        try:
            async for frame in frames:
                if frame.get("type") == "status" and frame.get("status") in done:
                    return str(frame["status"])
        finally:
            await frames.aclose()
        return None

    try:
        return await asyncio.wait_for(watch(), timeout)
    except TimeoutError:
        return None
