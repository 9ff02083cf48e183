"""The three limits of one provider call, enforced the same way for every lane.

- first byte: from sending the request to the first byte of the answer (for a call that does
  not stream, the answer arrives at once, so this is its whole wait);
- between chunks: once the answer has begun, the longest silence between two chunks;
- total: the whole call, first byte to last;
- deadline: the time limit of the run the call is made for (`allowance.py`): a streamed answer
  is stopped there with what arrived kept, a call with nothing to keep is cancelled.

A call's grant (`allowance.Grant`) may also cap how long its answer may grow: the lanes report
each chunk's characters (`CallClock.grew`) and stop reading once the cap is reached.

The lanes report progress (`CallClock.tick`) as bytes arrive; the gateway watches the clock and
cancels the call when a limit passes, raising a `timeout` error that names the limit. Checking
costs nothing per chunk (a float is stored); the watcher wakes only when a deadline comes due.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, Final

from .errors import LLMError, make_error
from .types import Deployment

LIMITS: Final = {
    "first_byte": "no first byte within {s:g} s (the first-byte limit)",
    "between_chunks": "the answer stalled for {s:g} s between two chunks "
    "(the between-chunks limit)",
    "total": "the call took longer than {s:g} s in all (the total limit)",
}


class CallClock:
    """When a call started and when its last byte arrived."""

    __slots__ = (
        "started",
        "last",
        "first_byte_s",
        "between_chunks_s",
        "total_s",
        "_time",
        "on_first_byte",
        "deadline",
        "deadline_reason",
        "meter_chars",
        "chars",
        "stop_label",
        "stopped",
        "parts",
    )

    def __init__(self, dep: Deployment, time: Any, grant: Any = None) -> None:
        self._time = time
        self.started = time()
        self.last: float | None = None
        self.first_byte_s = dep.first_byte_timeout_s
        self.between_chunks_s = dep.chunk_timeout_s
        self.total_s = dep.timeout_s
        # Called at the first byte, which can bring the next deadline forward (a between-chunks
        # limit shorter than the first-byte one): the watcher must look again then.
        self.on_first_byte: Any = None
        self.deadline: float | None = grant.deadline if grant is not None else None
        self.deadline_reason: str = grant.deadline_reason if grant is not None else ""
        self.meter_chars: int | None = grant.meter_chars() if grant is not None else None
        self.stop_label: str = grant.stop_label if grant is not None else ""
        self.chars = 0
        # Why the answer was cut short ("" while it was not); set by `grew` or the deadline.
        self.stopped = ""
        # The streamed text so far, registered by the lane: kept when the deadline stops it.
        self.parts: list[str] | None = None

    def grew(self, chars: int) -> bool:
        """The answer grew by `chars`; True when it reached its grant's cap (stop reading)."""
        self.chars += chars
        limit = self.meter_chars
        if limit is not None and self.chars >= limit:
            self.stopped = f"{self.stop_label} was reached: the answer was cut short."
            return True
        return False

    def tick(self) -> None:
        first = self.last is None
        self.last = self._time()
        if first and self.on_first_byte is not None:
            self.on_first_byte()

    def next_deadline(self) -> tuple[float, str, float]:
        """(when, which limit, its length in seconds) of the nearest limit."""
        deadline = (self.started + self.total_s, "total", self.total_s)
        if self.last is None:
            if self.first_byte_s is not None:
                first = (self.started + self.first_byte_s, "first_byte", self.first_byte_s)
                deadline = min(deadline, first)
        elif self.between_chunks_s is not None:
            silence = (self.last + self.between_chunks_s, "between_chunks", self.between_chunks_s)
            deadline = min(deadline, silence)
        if self.deadline is not None and self.deadline < deadline[0]:
            deadline = (self.deadline, "deadline", self.deadline - self.started)
        return deadline


def _at_deadline(clock: CallClock, dep: Deployment) -> Any:
    """The run's time limit passed mid-call: the text streamed so far, marked, or the error."""
    from .types import LaneResult

    reason = clock.deadline_reason or "The run's time limit was reached"
    if clock.parts:
        clock.stopped = f"{reason}: the answer was cut short."
        return LaneResult(
            text="".join(clock.parts),
            tool_calls=[],
            finish_reason="stopped",
            usage=None,
            first_token_ms=None,
            stopped=clock.stopped,
        )
    error = LLMError("timeout", reason, deployment_id=dep.id, transient=False)
    error.limit = "deadline"
    raise error


def timeout_error(limit: str, seconds: float, deployment_id: str | None) -> LLMError:
    error = make_error("timeout", LIMITS[limit].format(s=seconds), deployment_id=deployment_id)
    error.limit = limit
    return error


async def watched(call: Awaitable[Any], clock: CallClock, dep: Deployment) -> Any:
    """Awaits the lane's call in this task, cancelling it when one of its limits passes.

    One timer per call, moved only when it comes due (or at the first byte): progress in
    between costs the lane a stored float, not a timer.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    expired: list[tuple[str, float]] = []
    timer: asyncio.TimerHandle | None = None

    def check() -> None:
        nonlocal timer
        when, limit, seconds = clock.next_deadline()
        if when > loop.time():
            timer = loop.call_at(when, check)
        elif not expired:
            expired.append((limit, seconds))
            task.cancel()

    def first_byte() -> None:
        if timer is not None:
            timer.cancel()
        check()

    clock.on_first_byte = first_byte
    check()
    try:
        return await call
    except asyncio.CancelledError:
        # Our own cancel becomes the timeout; one from our caller stays a cancel.
        if expired and task.uncancel() == 0:
            limit, seconds = expired[0]
            if limit == "deadline":
                return _at_deadline(clock, dep)
            raise timeout_error(limit, seconds, dep.id) from None
        raise
    finally:
        clock.on_first_byte = None
        if timer is not None:
            timer.cancel()
