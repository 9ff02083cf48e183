"""Waiting on conditions, never on the clock."""

from __future__ import annotations

import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    condition: Callable[[], T], *, timeout: float = 10.0, interval: float = 0.02, what: str = ""
) -> T:
    """Returns the first truthy value of `condition()`; fails the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = condition()
        except Exception as error:  # noqa: BLE001 - the condition may fail until it holds
            last_error = error
        else:
            if value:
                return value
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise AssertionError(
                f"Timed out after {timeout}s waiting for {what or condition}{detail}\n"
                + threads_now()
            )
        time.sleep(interval)


def threads_now() -> str:
    """Where every thread of this process is, so a wait that timed out says what it waited on
    (an executor's loop, a database thread) rather than only that it waited."""
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    parts = []
    for ident, frame in sys._current_frames().items():
        if ident == threading.get_ident():
            continue
        stack = "".join(traceback.format_stack(frame, limit=8))
        parts.append(f"--- thread {names.get(ident, ident)}\n{stack}")
    return "Threads at the timeout:\n" + "\n".join(parts)
