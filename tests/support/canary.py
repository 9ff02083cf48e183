"""The canary key: tests store it as a credential, and it must never come out anywhere else.

Nor may any part of it: providers echo a wrong key partly masked (`sk-canar****…8c0e`), so a
text holding any eight consecutive characters of the key, or its last four after a mask, counts
as a leak (`canary_parts`). A log handler watches every record the suite emits, and at the end
of the session the logs of the processes the suite started (daphne, Celery workers) are searched
too; a sighting fails the run even if every test passed.
"""

from __future__ import annotations

import logging
import re

CANARY = "sk-canary-7f3a9c1e5b2d4f6a8c0e"
_WINDOWS = frozenset(CANARY[i : i + 8] for i in range(len(CANARY) - 7))
_MASKED_TAIL = re.compile(r"[*•…]\s*" + re.escape(CANARY[-4:]))


def canary_parts(text: str) -> list[str]:
    """The parts of the canary key found in `text` (empty when there are none)."""
    found = sorted(window for window in _WINDOWS if window in text)
    found.extend(match.group() for match in _MASKED_TAIL.finditer(text))
    return found


class CanaryWatch(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.sightings: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is not a leak
            return
        if canary_parts(text) or (record.exc_text and canary_parts(record.exc_text)):
            self.sightings.append(f"{record.name}: {text[:200]}")


watch = CanaryWatch()
