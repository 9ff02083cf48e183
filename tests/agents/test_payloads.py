"""What a run's call keeps of its request and response: redacted, bounded, never at the ledger's
expense."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from agents.ledger import DatabaseLedger
from agents.llm.ledger import LedgerOutcome, LedgerStart
from agents.llm.types import LaneResult, LLMRequest, ToolCall, Usage
from agents.models import CallPayload, LedgerEntry
from agents.payloads import bounded, call_payload
from tests.agents.factories import make_provider
from tests.conftest import Personas

SECRET = "sk-proj-abcdef0123456789abcdef0123456789"


def _outcome(messages: list[dict], text: str = "fine", **extra) -> LedgerOutcome:
    return LedgerOutcome(
        status="completed",
        usage=Usage(10, 5, 15),
        cost=Decimal("0.001"),
        cost_estimated=False,
        latency_ms=12.0,
        error_kind=None,
        http_status=200,
        price_source="configured",
        request=LLMRequest(
            messages=messages,
            tools=[{"type": "function", "function": {"name": "calculator", "parameters": {}}}],
            temperature=0.2,
        ),
        response=LaneResult(
            text=text,
            tool_calls=[ToolCall("c1", "calculator", '{"expression": "1+1"}')],
            finish_reason="stop",
            usage=Usage(10, 5, 15),
            first_token_ms=3.0,
        ),
        **extra,
    )


def test_a_payload_keeps_messages_tools_parameters_and_the_answer_without_secrets() -> None:
    outcome = _outcome(
        [
            {"role": "system", "content": "You are careful."},
            {"role": "user", "content": f"My key is {SECRET}\x00 please"},
        ]
    )
    payload = call_payload(outcome)
    assert payload is not None
    text = json.dumps(payload)
    assert SECRET not in text and "\\u0000" not in text
    assert payload["request"]["messages"][0]["content"] == "You are careful."
    assert payload["request"]["tools"][0]["function"]["name"] == "calculator"
    assert payload["request"]["parameters"] == {"temperature": 0.2}
    assert payload["response"]["text"] == "fine"
    assert payload["response"]["tool_calls"][0]["arguments"] == '{"expression": "1+1"}'


def test_a_failed_attempt_keeps_its_error_and_a_call_without_a_request_keeps_nothing() -> None:
    failed = LedgerOutcome(
        "failed",
        None,
        Decimal(0),
        False,
        5.0,
        "rate_limit",
        429,
        request=LLMRequest(messages=[{"role": "user", "content": "hi"}]),
        error_message="Too many requests",
    )
    assert call_payload(failed)["response"] == {"error": "Too many requests"}
    assert call_payload(LedgerOutcome("failed", None, Decimal(0), False, 1, None, None)) is None


def test_a_payload_too_big_is_shortened_and_says_so() -> None:
    messages = [{"role": "user", "content": "x" * 200_000}, {"role": "assistant", "content": "ok"}]
    payload = call_payload(_outcome(messages))
    kept, truncated, size = bounded(payload, 16 * 1024)
    assert truncated and size > 200_000
    assert len(json.dumps(kept).encode()) <= 16 * 1024
    assert "more characters not kept" in kept["request"]["messages"][0]["content"]
    assert kept["request"]["messages"][1]["content"] == "ok"
    # Thousands of short messages: the system message and the latest ones stay.
    many = [{"role": "system", "content": "rules"}] + [
        {"role": "user", "content": f"message {n}"} for n in range(5000)
    ]
    kept, truncated, _ = bounded(call_payload(_outcome(many)), 8 * 1024)
    sent = kept["request"]["messages"]
    assert truncated and sent[0]["content"] == "rules" and sent[-1]["content"] == "message 4999"
    assert kept["request"]["messages_dropped"] > 0


@pytest.mark.django_db(transaction=True)
def test_the_ledger_keeps_a_run_calls_payload_beside_its_row(personas: Personas) -> None:
    asyncio.run(_keep_payloads(personas, make_provider(personas.workspace)))


async def _keep_payloads(personas: Personas, provider: Any) -> None:
    ledger = DatabaseLedger()
    run_id, call_id = uuid.uuid4(), str(uuid.uuid4())
    start = LedgerStart(
        call_id=call_id,
        deployment_id=f"{provider.pk}:demo",
        provider_kind="demo",
        model="demo",
        attempt=1,
        prompt_tokens_estimate=3,
        metadata={"workspace_id": personas.workspace.pk, "run_id": str(run_id)},
        started_at=datetime.now(UTC),
    )
    await ledger.call_started(start)
    await ledger.call_finished(call_id, _outcome([{"role": "user", "content": "hello"}]))
    await ledger.payloads_written()  # kept off the call's path, just after it
    row = await asyncio.to_thread(LedgerEntry.objects.get, pk=call_id)
    payload = await asyncio.to_thread(CallPayload.objects.get, pk=call_id)
    assert row.status == "completed" and str(payload.run_id) == str(run_id)
    assert payload.request["messages"] == [{"role": "user", "content": "hello"}]
    assert not payload.truncated

    # A call outside a run (the playground) keeps no payload.
    other = str(uuid.uuid4())
    await ledger.call_started(
        dataclasses.replace(start, call_id=other, metadata={"workspace_id": personas.workspace.pk})
    )
    await ledger.call_finished(other, _outcome([{"role": "user", "content": "hi"}]))
    await ledger.payloads_written()
    assert (await asyncio.to_thread(LedgerEntry.objects.get, pk=other)).status == "completed"
    assert not await asyncio.to_thread(CallPayload.objects.filter(pk=other).exists)


@pytest.mark.django_db(transaction=True)
def test_payloads_go_with_their_runs_and_their_workspace(personas: Personas) -> None:
    from agents.payloads import payloads_delete_for_runs

    provider = make_provider(personas.workspace)
    asyncio.run(_keep_payloads(personas, provider))
    (kept,) = CallPayload.objects.all()
    assert kept.workspace_id == personas.workspace.pk
    assert payloads_delete_for_runs([uuid.uuid4()]) == 0
    assert payloads_delete_for_runs([kept.run_id]) == 1
    asyncio.run(_keep_payloads(personas, provider))
    personas.workspace.delete()
    assert not CallPayload.objects.exists()
