"""Periodic duties of the embedded mode, contributed by apps above this one.

Without Celery beat, the embedded executor's housekeeping loop runs the reaper and the Ollama
probe itself; apps that depend on workflows (monitoring's alert rounds) cannot be imported from
here, so they register their duty when they load and the loop runs each at its interval.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Duty:
    name: str
    run: Callable[[], object]
    every_seconds: Callable[[], float]  # read each time: settings may change (tests)


_duties: dict[str, Duty] = {}


def housekeeping_register(duty: Duty) -> None:
    _duties[duty.name] = duty


def housekeeping_duties() -> list[Duty]:
    return list(_duties.values())
