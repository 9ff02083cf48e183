"""The channel layer of the embedded mode, safe to send to from another thread's event loop.

In the embedded mode runs execute on the executor's own event loop, in its own thread, while the
web server's consumers receive on the server's loop. Channels' in-memory layer keeps asyncio
queues, which belong to the loop that waits on them: a put from another thread neither wakes
that loop nor is safe beside it. This layer has a home, the loop its receivers run on, and runs
every operation called from elsewhere on that home loop, so both threads see one consistent
layer and a message wakes its receiver at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from channels.layers import InMemoryChannelLayer

T = TypeVar("T")


class LoopSafeInMemoryChannelLayer(InMemoryChannelLayer):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._home: asyncio.AbstractEventLoop | None = None

    async def _at_home(self, operation: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        current = asyncio.get_running_loop()
        home = self._home
        if home is None or home is current or home.is_closed() or not home.is_running():
            # No receiver loop yet, or it is gone (tests start a loop per test): this one is home.
            self._home = current
            return await operation(*args)
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(operation(*args), home))

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        await self._at_home(super().send, channel, message)

    async def receive(self, channel: str) -> dict[str, Any]:
        return await self._at_home(super().receive, channel)

    async def group_add(self, group: str, channel: str) -> None:
        await self._at_home(super().group_add, group, channel)

    async def group_discard(self, group: str, channel: str) -> None:
        await self._at_home(super().group_discard, group, channel)

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        await self._at_home(super().group_send, group, message)

    async def flush(self) -> None:
        await self._at_home(super().flush)
