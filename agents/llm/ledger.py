"""The ledger protocol: the gateway reports every provider attempt before and after it is made.

`call_started` runs BEFORE the HTTP request; if it raises, the request is not made, so there is
never a provider call without a ledger row. The Django side implements this with the database;
`InMemoryLedger` serves tests and benchmarks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from .types import LaneResult, LLMRequest, Usage


@dataclass(frozen=True, slots=True)
class LedgerStart:
    call_id: str
    deployment_id: str
    provider_kind: str
    model: str
    attempt: int  # 1-based, counted across routes within one `complete()`
    prompt_tokens_estimate: int
    metadata: Mapping[str, Any]
    started_at: datetime
    # The most the call can cost (see worst_case.py), None when its price is unknown: what a
    # budget reserves before the call.
    worst_case_cost: Decimal | None = None


@dataclass(frozen=True, slots=True)
class LedgerOutcome:
    status: str  # "completed" | "failed"
    usage: Usage | None
    cost: Decimal
    cost_estimated: bool
    latency_ms: float
    error_kind: str | None
    http_status: int | None
    price_source: str = ""
    first_token_ms: float | None = None  # streamed calls only
    # What was sent and what came back, for the trace's inspector; a sink may keep or drop them
    # (the database ledger keeps them, redacted and bounded, beside the row: agents/payloads.py).
    request: LLMRequest | None = None
    response: LaneResult | None = None
    error_message: str = ""


class LedgerSink(Protocol):
    async def call_started(self, entry: LedgerStart) -> None: ...

    async def call_finished(self, call_id: str, outcome: LedgerOutcome) -> None: ...


class InMemoryLedger:
    """Keeps every entry in memory: `started` in order, `finished` by call id."""

    def __init__(self) -> None:
        self.started: list[LedgerStart] = []
        self.finished: dict[str, LedgerOutcome] = {}

    async def call_started(self, entry: LedgerStart) -> None:
        self.started.append(entry)

    async def call_finished(self, call_id: str, outcome: LedgerOutcome) -> None:
        self.finished[call_id] = outcome

    def rows(self) -> list[tuple[LedgerStart, LedgerOutcome | None]]:
        return [(entry, self.finished.get(entry.call_id)) for entry in self.started]

    def clear(self) -> None:
        self.started.clear()
        self.finished.clear()
