"""Per-agent requests- and tokens-per-minute limits, enforced before each model call.

The window is kept in this process; with several worker processes each enforces its own share,
which bounds bursts without a round trip to Redis on every call.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

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

    def _prune(self, window: deque[tuple[float, int]], now: float) -> None:
        while window and window[0][0] <= now - WINDOW_S:
            window.popleft()

    async def acquire(
        self, key: str, *, rpm: int | None, tpm: int | None, tokens: int, max_wait_s: float
    ) -> None:
        """Waits until the call fits the limits, or fails when that would take over max_wait_s."""
        if not rpm and not tpm:
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


agent_limiter = AgentLimiter()
