"""A run's events as Server-Sent Events, through the WebSocket consumer's replay-then-live path.

`RunEventStream` is the run consumer (workflows/consumers.py) with its socket swapped for a
queue: the same join-before-read of the live feed, the same replay of stored events after a
`seq`, the same de-duplication by seq and resync after lost messages. Each frame it would send
on the socket becomes one SSE message:

    id: <seq>            on stored events: every event up to it has been sent (the floor, so a
                         reconnect with Last-Event-ID resends what may have come out of order)
    event: event | delta | status | replayed
    data: <the same JSON the WebSocket sends>

The stream ends after the run's final status (a finished run: its replay, then the status), and
on a fault of the live feed — an EventSource then reconnects by itself with `Last-Event-ID`.
A comment line every KEEPALIVE_SECONDS keeps proxies from closing an idle stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from channels.layers import get_channel_layer

from workflows.consumers import RunConsumer, SentSeqs
from workflows.models import TERMINAL_STATUSES

KEEPALIVE_SECONDS = 15
RETRY_MS = 2000
_END = object()


class RunEventStream(RunConsumer):
    def __init__(self, *, run_id: str, user: Any) -> None:
        super().__init__()
        # What `connect` sets on a socket (the caller was authorized before the stream began).
        self.run_id = run_id
        self.scope = {"user": user}
        self.live_layer = get_channel_layer()
        self.joined = False
        self.sent = SentSeqs(0)
        self.replaying = False
        self.buffered: list[dict[str, Any]] = []
        self.replay_task: asyncio.Task[None] | None = None
        self.inbox: deque[dict[str, Any]] = deque()
        self.inbox_waiter: asyncio.Future[None] | None = None
        self.overflowed = False
        self.sender_task: asyncio.Task[None] | None = None
        self.closing: asyncio.Future[None] | None = None
        self.authorized = True
        self.frames: asyncio.Queue[Any] = asyncio.Queue()

    # The socket's side, as SSE frames.

    async def send(
        self, text_data: str | None = None, bytes_data: bytes | None = None, close: bool = False
    ) -> None:
        if text_data is not None:
            self.frames.put_nowait(self._frame(text_data))
        if close:
            self.frames.put_nowait(_END)

    async def send_json(self, content: Any, close: bool = False) -> None:
        await self.send(text_data=await self.encode_json(content), close=close)

    async def close(self, code: int | None = None, reason: str | None = None) -> None:
        self.authorized = False
        self.frames.put_nowait(_END)

    def _frame(self, text: str) -> str | tuple[str, bool]:
        message = json.loads(text)
        kind = message.get("type", "message")
        lines = []
        if kind == "event":
            lines.append(f"id: {self.sent.floor}")
        lines.append(f"event: {kind}")
        lines.append(f"data: {text}")
        frame = "\n".join(lines) + "\n\n"
        final = kind == "status" and message.get("status") in TERMINAL_STATUSES
        return (frame, final) if final else frame

    async def frames_after(self, after_seq: int) -> AsyncIterator[str]:
        """The SSE body: the retry hint, then frames until the run ends or the feed fails."""
        yield f"retry: {RETRY_MS}\n\n"
        await self.subscribe(after_seq)
        try:
            while True:
                try:
                    frame = await asyncio.wait_for(self.frames.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                if frame is _END:
                    return
                if isinstance(frame, tuple):  # the final status: nothing follows it
                    yield frame[0]
                    return
                yield frame
        finally:
            with contextlib.suppress(Exception):
                await self._leave_live()


def last_event_id(header: str | None, after: int) -> int:
    """Where to resume: the Last-Event-ID an EventSource sends on reconnecting, else `after`."""
    if header is not None and header.strip().isdigit() and len(header.strip()) < 19:
        return int(header.strip())
    return after
