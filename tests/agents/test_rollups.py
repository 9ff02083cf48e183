"""The ledger's hourly rollups: each finished call adds to them in its own transaction, and
`check_rollups` recomputes them from the ledger to prove it."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction

from agents.histogram import BUCKET_EDGES_MS, BUCKETS, bucket_of, quantile
from agents.ledger import DatabaseLedger
from agents.llm.ledger import LedgerOutcome, LedgerStart
from agents.llm.types import Usage
from agents.models import LedgerEntry, LedgerRollup, LedgerRollupDay
from agents.rollups import (
    LEDGER_FIELDS,
    ledger_close_pending,
    ledger_finish_known,
    rollups_check,
    rollups_rebuild,
)
from tests.agents.factories import make_provider
from tests.conftest import Personas

pytestmark = pytest.mark.django_db(transaction=True)

STARTED = datetime(2026, 11, 3, 14, 25, tzinfo=UTC)


def start(personas: Personas, provider: Any, *, attempt: int = 1, **metadata: Any) -> str:
    call_id = str(uuid.uuid4())
    asyncio.run(
        DatabaseLedger().call_started(
            LedgerStart(
                call_id=call_id,
                deployment_id=f"{provider.pk}:gpt-4o-mini",
                provider_kind=provider.kind,
                model="gpt-4o-mini",
                attempt=attempt,
                prompt_tokens_estimate=40,
                metadata={"workspace_id": personas.workspace.pk, **metadata},
                started_at=STARTED,
            )
        )
    )
    return call_id


def finish(call_id: str, **changes: Any) -> None:
    outcome = {
        "status": "completed",
        "usage": Usage(100, 20, 120, cached_tokens=60),
        "cost": Decimal("0.0012"),
        "cost_estimated": False,
        "latency_ms": 820.4,
        "error_kind": None,
        "http_status": 200,
        "price_source": "configured",
        "first_token_ms": 240.0,
        **changes,
    }
    asyncio.run(DatabaseLedger().call_finished(call_id, LedgerOutcome(**outcome)))


def test_a_finished_call_adds_to_its_hour_and_dimensions(personas: Personas) -> None:
    provider = make_provider(
        personas.workspace,
        kind="openai_compatible",
        name="Gateway",
        base_url="https://llm.example.com/v1",
    )
    dims = {"agent_id": "a1", "workflow_id": "w1", "user_id": str(personas.owner.pk)}
    first = start(personas, provider, **dims)
    assert not LedgerRollup.objects.exists()  # a pending call counts nothing yet

    finish(first)
    retried = start(personas, provider, attempt=2, **dims)
    finish(
        retried,
        status="failed",
        usage=None,
        cost=Decimal(0),
        error_kind="rate_limited",
        price_source="",
        first_token_ms=None,
        latency_ms=30.0,
    )

    ok = LedgerRollup.objects.get(error_kind="")
    assert ok.hour == datetime(2026, 11, 3, 14, tzinfo=UTC)
    assert (ok.provider_id, ok.model, ok.agent_id, ok.workflow_id, ok.user_id) == (
        str(provider.pk),
        "gpt-4o-mini",
        "a1",
        "w1",
        str(personas.owner.pk),
    )
    assert (ok.calls, ok.prompt_tokens, ok.completion_tokens, ok.cached_tokens) == (1, 100, 20, 60)
    assert ok.cost == Decimal("0.0012")
    assert (ok.latency_count, ok.first_token_count) == (1, 1)
    assert getattr(ok, f"latency_b{bucket_of(820):02d}") == 1
    failed = LedgerRollup.objects.get(error_kind="rate_limited")
    assert (failed.calls, failed.retries, failed.first_token_count) == (1, 1, 0)
    assert LedgerEntry.objects.get(pk=first).cached_tokens == 60
    assert rollups_check() == []


def test_unpriced_calls_count_their_tokens_apart(personas: Personas) -> None:
    provider = make_provider(
        personas.workspace,
        kind="openai_compatible",
        name="Gateway",
        base_url="https://llm.example.com/v1",
    )
    finish(start(personas, provider), cost=Decimal(0), price_source="unknown", cost_estimated=True)

    row = LedgerRollup.objects.get()
    assert (row.unpriced_calls, row.unpriced_tokens, row.estimated_calls) == (1, 120, 1)
    assert row.cost == 0


def test_an_orphan_closed_by_the_reaper_and_answered_late_counts_once(
    personas: Personas,
) -> None:
    provider = make_provider(
        personas.workspace,
        kind="openai_compatible",
        name="Gateway",
        base_url="https://llm.example.com/v1",
    )
    call_id = start(personas, provider)

    closed = ledger_close_pending(
        call_id, {"status": "unknown", "prompt_tokens": 40, "error_kind": "worker_lost"}
    )
    assert closed == 1
    assert ledger_close_pending(call_id, {"status": "unknown"}) == 0  # already closed
    assert LedgerRollup.objects.get().error_kind == "worker_lost"

    finish(call_id)  # the worker was slow, not dead: its answer replaces the estimate

    row = LedgerRollup.objects.get(calls=1)
    assert (row.error_kind, row.prompt_tokens) == ("", 100)
    assert LedgerRollup.objects.filter(error_kind="worker_lost", calls=0).exists()
    assert rollups_check() == []


def test_a_completion_known_from_its_start_adds_what_a_plain_finish_does(
    personas: Personas,
) -> None:
    """The step's path (`ledger_finish_known`: on PostgreSQL one statement sending the call's
    fact once, its buckets as indexes) leaves the hours and days a plain finish would: the
    check against the ledger finds no difference, in the first, last and no bucket."""
    provider = make_provider(
        personas.workspace,
        kind="openai_compatible",
        name="Gateway",
        base_url="https://llm.example.com/v1",
    )
    finished_at = datetime(2026, 11, 3, 14, 26, tzinfo=UTC)
    cases = [(12, 3), (820, None), (200_000, 150_000), (None, None)]
    for index, (latency, first_token) in enumerate(cases):
        call_id = start(personas, provider, agent_id=f"a{index % 2}")
        started = LedgerEntry.objects.filter(call_id=call_id).values(*LEDGER_FIELDS).get()
        fields = {
            "status": "completed" if latency is not None else "failed",
            "prompt_tokens": 100 + index,
            "completion_tokens": 20,
            "cached_tokens": 5,
            "cost": Decimal("0.0012") * (index + 1),
            "cost_estimated": index == 1,
            "price_source": "unknown" if index == 2 else "configured",
            "latency_ms": latency,
            "first_token_ms": first_token,
            "error_kind": "" if latency is not None else "timeout",
            "http_status": 200,
            "finished_at": finished_at,
        }
        with transaction.atomic(), connection.cursor() as cursor:
            ledger_finish_known(cursor, call_id, fields, started)

    assert rollups_check() == []
    hour = {row.agent_id: row for row in LedgerRollup.objects.filter(error_kind="")}
    assert (hour["a0"].calls, hour["a1"].calls) == (2, 1)
    assert hour["a0"].latency_b00 == 1
    assert getattr(hour["a0"], f"latency_b{BUCKETS - 1:02d}") == 1
    assert getattr(hour["a0"], f"first_token_b{BUCKETS - 1:02d}") == 1
    assert hour["a1"].first_token_count == 0
    assert sum(getattr(hour["a1"], f"first_token_b{i:02d}") for i in range(BUCKETS)) == 0
    day = LedgerRollupDay.objects.get(agent_id="a0", error_kind="")
    assert day.day == datetime(2026, 11, 3, tzinfo=UTC)
    assert (day.calls, day.unpriced_calls, day.cost) == (2, 1, Decimal("0.0048"))
    failed = LedgerRollup.objects.get(error_kind="timeout")
    assert (failed.latency_count, failed.first_token_count) == (0, 0)


def test_check_rollups_finds_a_difference_and_repair_rebuilds(personas: Personas) -> None:
    provider = make_provider(
        personas.workspace,
        kind="openai_compatible",
        name="Gateway",
        base_url="https://llm.example.com/v1",
    )
    finish(start(personas, provider))
    LedgerRollup.objects.update(calls=5)

    with pytest.raises(CommandError, match="1 rollup values differ"):
        call_command("check_rollups")
    assert [m.field for m in rollups_check()] == ["calls"]

    call_command("check_rollups", "--repair")
    assert rollups_check() == []
    assert rollups_rebuild() == 1
    assert LedgerRollup.objects.get().calls == 1


def test_percentiles_come_from_the_buckets_within_their_width() -> None:
    counts = [0] * BUCKETS
    for latency in [120] * 90 + [2000] * 9 + [200_000]:
        counts[bucket_of(latency)] += 1
    p50, p95, p99 = (quantile(counts, q) for q in (0.5, 0.95, 0.99))

    assert p50 is not None and 100 <= p50 <= 150
    assert p95 is not None and 1500 <= p95 <= 2250
    assert p99 is not None and 1500 <= p99 <= 2250
    assert quantile(counts, 1.0) == float("inf")  # only known to be over the last edge
    assert quantile([0] * BUCKETS, 0.5) is None
    assert bucket_of(BUCKET_EDGES_MS[-1] + 1) == BUCKETS - 1
