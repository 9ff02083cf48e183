"""The cyclic garbage collector, tuned once for a process that executes runs.

By the time a process starts executing runs it holds some 200,000 objects built at start-up
(modules, Django's models and URL patterns, pydantic schemas, LiteLLM's tables) that live as
long as the process. Left in the collector's generations, every full collection walks all of
them again, tens of milliseconds each, for nothing. Frozen, they are out of its sight (and a
forked pool child's pages stay shared); the collector keeps finding the cycles that runs make.
A larger first generation collects the short-lived objects of a step less often: the young
objects a collection walks are the run's own, a few thousand at most.
"""

from __future__ import annotations

import gc
import threading

# Objects allocated, net, before a young collection (Python's default is 700: about one
# collection per model call, each with its pause).
YOUNG_THRESHOLD = 7000

_settled = False
_lock = threading.Lock()


def gc_settle_startup() -> None:
    """Freezes what start-up built and widens the young generation; once per process."""
    global _settled
    with _lock:
        if _settled:
            return
        _settled = True
        gc.collect()  # start-up's own garbage is collected, not frozen
        gc.freeze()
        _, middle, old = gc.get_threshold()
        gc.set_threshold(YOUNG_THRESHOLD, middle, old)
