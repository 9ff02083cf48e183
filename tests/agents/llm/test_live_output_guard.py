"""A live-output callback that fails never fails the call, nor loses its cost from the ledger.

The callback is how token deltas reach a run's viewers (through the channel layer): when that
layer is down, the provider has still answered and charged, and the ledger must say so.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from agents.fakellm import RunningServer
from agents.llm import Gateway, LLMRequest, Route, RoutePlan
from agents.llm.ledger import LedgerOutcome, LedgerStart

from .conftest import HELLO, openai_dep


class RecordingLedger:
    def __init__(self) -> None:
        self.started: list[LedgerStart] = []
        self.finished: list[tuple[str, LedgerOutcome]] = []

    async def call_started(self, entry: LedgerStart) -> None:
        self.started.append(entry)

    async def call_finished(self, call_id: str, outcome: LedgerOutcome) -> None:
        self.finished.append((call_id, outcome))


@pytest.mark.asyncio
@pytest.mark.parametrize("fails_at", [1, 3])
async def test_a_failing_delta_callback_leaves_the_call_successful_and_priced(
    fake: RunningServer, fails_at: int
) -> None:
    words = " ".join(f"w{i}" for i in range(20))
    fake.set_script(
        {
            "rules": [
                {
                    "reply": words,
                    "chunks": 20,
                    "chunk_delay_ms": 5,
                    "prompt_tokens": 1000,
                    "completion_tokens": 500,
                }
            ]
        }
    )
    calls: list[str] = []

    async def on_delta(text: str) -> None:
        calls.append(text)
        if len(calls) >= fails_at:
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    ledger = RecordingLedger()
    gateway = Gateway(ledger=ledger, coalesce_ms=0)
    try:
        result = await gateway.complete(
            LLMRequest(HELLO, stream=True), RoutePlan(Route([openai_dep(fake)])), on_delta=on_delta
        )
    finally:
        await gateway.aclose()

    assert result.text == words
    assert result.cost > Decimal(0)
    # Not called again after it failed: one failure, not one per chunk.
    assert len(calls) == fails_at
    assert len(fake.requests) == 1  # no retry: the call had succeeded
    ((call_id, outcome),) = ledger.finished
    assert call_id == result.call_id
    assert outcome.status == "completed"
    assert outcome.error_kind is None
    assert outcome.cost == result.cost > Decimal(0)
    assert [a.outcome for a in result.attempts] == ["completed"]


@pytest.mark.asyncio
async def test_a_synchronous_callback_still_works(fake: RunningServer) -> None:
    fake.set_script({"rules": [{"reply": "one two three", "chunks": 3}]})
    seen: list[str] = []
    gateway = Gateway(coalesce_ms=0)
    try:
        result = await gateway.complete(
            LLMRequest(HELLO, stream=True),
            RoutePlan(Route([openai_dep(fake)])),
            on_delta=seen.append,
        )
    finally:
        await gateway.aclose()
    assert "".join(seen) == result.text == "one two three"
