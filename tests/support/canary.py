"""The canary key: tests store it as a credential, and it must never come out anywhere else.

A log handler watches every record the suite emits, and at the end of the session the logs of
the processes the suite started (daphne, Celery workers) are searched too; a sighting fails the
run even if every test passed.
"""

from __future__ import annotations

import logging

CANARY = "sk-canary-7f3a9c1e5b2d4f6a8c0e"


class CanaryWatch(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.sightings: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is not a leak
            return
        if CANARY in text or (record.exc_text and CANARY in record.exc_text):
            self.sightings.append(f"{record.name}: {text[:200]}")


watch = CanaryWatch()
