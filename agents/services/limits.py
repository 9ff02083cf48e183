"""Per-agent requests- and tokens-per-minute limits, enforced before each model call.

In the distributed mode the window is shared by every worker process through Redis
(`agents.llm.capacity`, set as `capacity` at start-up), so an agent's rpm of 60 means 60 a minute
whatever the number of workers; without Redis, or while it cannot be reached, the window is this
process's own.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from agents.llm.errors import make_error

WINDOW_S = 60.0


class AgentLimiter:
    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._windows: dict[str, deque[tuple[float, int]]] = {}
        # `agents.llm.capacity.RedisCapacity` in the distributed mode.
        self.capacity: Any = None

    def _prune(self, window: deque[tuple[float, int]], now: float) -> None:
        while window and window[0][0] <= now - WINDOW_S:
            window.popleft()

    async def acquire(
        self, key: str, *, rpm: int | None, tpm: int | None, tokens: int, max_wait_s: float
    ) -> None:
        """Waits until the call fits the limits, or fails when that would take over max_wait_s."""
        if not rpm and not tpm:
            return
        if self.capacity is not None and await self._acquire_shared(
            key, rpm=rpm, tpm=tpm, tokens=tokens, max_wait_s=max_wait_s
        ):
            return
        window = self._windows.setdefault(key, deque())
        deadline = self._clock() + max_wait_s
        while True:
            now = self._clock()
            self._prune(window, now)
            used = sum(spent for _, spent in window)
            fits_requests = not rpm or len(window) < rpm
            # A single call larger than the whole budget may run alone rather than never.
            fits_tokens = not tpm or not window or used + tokens <= tpm
            if fits_requests and fits_tokens:
                window.append((now, tokens))
                return
            wait = window[0][0] + WINDOW_S - now
            if now + wait > deadline:
                limit = f"{rpm} requests" if not fits_requests else f"{tpm} tokens"
                raise make_error(
                    "rate_limit",
                    f"the agent's limit of {limit} per minute is reached",
                    retry_after=wait,
                )
            await self._sleep(wait)

    async def _acquire_shared(
        self, key: str, *, rpm: int | None, tpm: int | None, tokens: int, max_wait_s: float
    ) -> bool:
        """True once the shared window took the call; False when Redis cannot answer."""
        deadline = self._clock() + max_wait_s
        slot = uuid.uuid4().hex
        while True:
            wait = await self.capacity.acquire(
                f"agent:{key}", slot, tokens=tokens, rpm=rpm, tpm=tpm, breaker=False
            )
            if wait is None:
                return False
            if wait <= 0:
                return True
            if self._clock() + wait > deadline:
                limit = f"{rpm} requests" if rpm else f"{tpm} tokens"
                raise make_error(
                    "rate_limit",
                    f"the agent's limit of {limit} per minute is reached",
                    retry_after=wait,
                )
            await self._sleep(wait)


agent_limiter = AgentLimiter()
