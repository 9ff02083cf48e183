"""Viewers of runs over real WebSockets, following the page's protocol: subscribe from the last
contiguous seq, de-duplicate by seq, reconnect with backoff whenever the socket closes.

They run on an event loop in a thread of their own, so a synchronous test can stop Redis under
them and then ask whether each caught up.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterable
from typing import Any

import aiohttp


class Viewer:
    def __init__(self, ws_url: str, origin: str, cookie: str) -> None:
        self.ws_url = ws_url
        self.origin = origin
        self.cookie = cookie
        self.floor = 0  # every seq ≤ floor seen
        self.above: set[int] = set()
        self.status = ""
        self.connects = 0
        self.closes: list[int | str] = []  # close codes, or the error that ended a connection

    @property
    def seen(self) -> set[int]:
        return set(range(1, self.floor + 1)) | self.above

    def _saw(self, seq: int) -> None:
        if seq > self.floor:
            self.above.add(seq)
        while self.floor + 1 in self.above:
            self.floor += 1
            self.above.discard(self.floor)

    async def follow(self, session: aiohttp.ClientSession, stop: asyncio.Event) -> None:
        backoff = 0.2
        while not stop.is_set():
            opened = time.monotonic()
            try:
                async with session.ws_connect(
                    self.ws_url, headers={"Origin": self.origin, "Cookie": self.cookie}
                ) as socket:
                    self.connects += 1
                    await socket.send_json({"type": "subscribe", "after_seq": self.floor})
                    async for message in socket:
                        if message.type != aiohttp.WSMsgType.TEXT:
                            break
                        payload = message.json()
                        if payload["type"] == "event":
                            self._saw(int(payload["seq"]))
                        elif payload["type"] == "status":
                            self.status = payload["status"]
                    self.closes.append(socket.close_code or 0)
            except (TimeoutError, aiohttp.ClientError, OSError) as error:
                self.closes.append(type(error).__name__)
            if time.monotonic() - opened > 3:
                backoff = 0.2
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff)
            backoff = min(backoff * 2, 2.0)


class Audience:
    """Viewers of several runs, on a loop of their own until `close`."""

    def __init__(self, base_url: str, cookie: str, run_ids: Iterable[Any]) -> None:
        ws_base = base_url.replace("http://", "ws://")
        self.viewers = {
            str(run_id): Viewer(f"{ws_base}/ws/runs/{run_id}/", base_url, cookie)
            for run_id in run_ids
        }
        self.loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="audience", daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._main())
        self.loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        async with aiohttp.ClientSession() as session:
            tasks = [
                asyncio.create_task(viewer.follow(session, self._stop))
                for viewer in self.viewers.values()
            ]
            self._ready.set()
            await self._stop.wait()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def close(self) -> None:
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(15)
