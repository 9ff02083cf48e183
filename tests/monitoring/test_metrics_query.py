"""The metrics query: any measure by any dimension and granularity, filtered — and every bad
parameter refused with a reason that names it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from agents.models import LedgerEntry
from agents.rollups import ledger_finish, rollups_rebuild
from monitoring.metrics import (
    MetricsQueryError,
    metrics_answer,
    metrics_answers,
    metrics_query_parse,
)
from tests.conftest import Personas
from tests.monitoring.ledger_rows import ledger_rows

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 12, 6, 12, 30, tzinfo=UTC)


def ask(workspace: Any, **params: str) -> dict[str, Any]:
    query = metrics_query_parse({name: [value] for name, value in params.items()}, now=NOW)
    return metrics_answer(workspace.pk, query)


@pytest.fixture
def history(personas: Personas) -> Personas:
    day = NOW - timedelta(days=1)
    ledger_rows(
        personas.workspace,
        [
            *[{"at": day, "model": "gpt-4o-mini", "agent_id": "a1", "latency_ms": 300}] * 18,
            {"at": day, "model": "gpt-4o-mini", "agent_id": "a1", "latency_ms": 9000},
            {
                "at": day,
                "model": "gpt-4o-mini",
                "agent_id": "a1",
                "status": "failed",
                "error_kind": "rate_limited",
                "latency_ms": 9500,
                "cost": 0,
                "price_source": "",
            },
            {
                "at": NOW - timedelta(hours=1),
                "model": "house",
                "agent_id": "a2",
                "cost": 0,
                "price_source": "unknown",
                "prompt_tokens": 70,
                "completion_tokens": 30,
            },
            # Outside the last 7 days: counted only by a longer range.
            {"at": NOW - timedelta(days=20), "model": "gpt-4o-mini", "agent_id": "a1"},
        ],
    )
    ledger_rows(personas.other_workspace, [{"at": day, "model": "secret-model"}])
    return personas


def test_spend_by_model_per_day_counts_unpriced_tokens_apart(history: Personas) -> None:
    answer = ask(history.workspace, measure="cost,calls", dimension="model", granularity="day")

    by_model = {row["model"]: row for row in answer["rows"]}
    assert by_model["gpt-4o-mini"]["calls"] == 20
    assert by_model["gpt-4o-mini"]["cost"] == pytest.approx(0.19)
    assert by_model["house"]["cost"] == 0
    assert by_model["house"]["unpriced_tokens"] == 100
    assert answer["unpriced_tokens"] == 100
    assert "secret-model" not in by_model  # another workspace's calls
    assert answer["units"] == {"cost": "USD", "calls": "calls"}
    assert len(answer["buckets"]) == 8  # seven days and the open one, by day


def test_percentiles_error_rate_and_filters(history: Personas) -> None:
    answer = ask(
        history.workspace,
        measure="latency_p50,latency_p95,error_rate",
        dimension="agent",
        granularity="total",
        model="gpt-4o-mini",
    )

    [row] = answer["rows"]
    assert row["agent"] == "a1"
    assert 200 <= row["latency_p50"] <= 300  # the bucket of 300 ms
    assert 7500 <= row["latency_p95"] <= 11_000  # the bucket of 9 s
    assert row["error_rate"] == pytest.approx(1 / 20)
    assert "precision" in answer


def test_a_longer_range_reaches_older_calls(history: Personas) -> None:
    week = ask(history.workspace, measure="calls", granularity="total")
    month = ask(history.workspace, measure="calls", granularity="total", range="30d")
    assert (week["rows"][0]["calls"], month["rows"][0]["calls"]) == (21, 22)
    assert month["query"]["granularity"] == "total"
    assert ask(history.workspace, measure="calls", range="30d")["query"]["granularity"] == "day"
    assert ask(history.workspace, measure="calls", range="24h")["query"]["granularity"] == "hour"


def test_several_answers_from_one_read_equal_each_asked_alone(history: Personas) -> None:
    def query(**params: str) -> Any:
        params = {"range": "30d", "granularity": "total", **params}
        return metrics_query_parse({name: [value] for name, value in params.items()}, now=NOW)

    queries = [
        query(measure="latency_p95,calls", dimension="model", order="latency_p95", limit="6"),
        query(measure="retries,calls,cost", dimension="deployment", order="retries"),
        query(measure="error_rate,latency_avg", dimension="agent"),
    ]
    together = metrics_answers(history.workspace.pk, queries)
    alone = [metrics_answer(history.workspace.pk, each) for each in queries]

    def by_group(answer: dict[str, Any]) -> dict[str, Any]:
        rows = {
            tuple(row[name] for name in answer["query"]["dimensions"]) for row in answer["rows"]
        }
        return {**answer, "rows": sorted(answer["rows"], key=repr), "groups": rows}

    assert [by_group(answer) for answer in together] == [by_group(answer) for answer in alone]
    assert together[0]["rows"][0]["model"] == "gpt-4o-mini"  # ordered as asked
    with pytest.raises(ValueError):
        metrics_answers(history.workspace.pk, [queries[0], query(measure="calls", range="7d")])


def test_past_days_are_read_once_until_a_late_call_or_a_rebuild_changes_them(
    personas: Personas,
) -> None:
    workspace = personas.workspace
    days_ago = timezone.now() - timedelta(days=3)
    ledger_rows(
        workspace,
        [{"at": days_ago, "latency_ms": 300}, {"at": days_ago, "status": "pending", "cost": 0}],
    )
    late = LedgerEntry.objects.get(workspace=workspace, status="pending")

    def calls() -> tuple[int, list[str]]:
        query = metrics_query_parse({"measure": ["calls"], "range": ["7d"]})
        with CaptureQueriesContext(connection) as read:
            rows = metrics_answer(workspace.pk, query)["rows"]
        daily = [entry["sql"] for entry in read.captured_queries if "rollupday" in entry["sql"]]
        return rows[0]["calls"], daily

    first, first_reads = calls()
    again, again_reads = calls()
    ledger_finish(str(late.call_id), {"status": "completed", "latency_ms": 900})
    after_late, late_reads = calls()
    LedgerEntry.objects.filter(pk=late.pk).delete()
    rollups_rebuild(workspace.pk)
    after_rebuild, _ = calls()

    assert (first, again, after_late, after_rebuild) == (1, 1, 2, 1)
    assert first_reads and not again_reads  # the second answer read no daily rollup
    assert late_reads  # the late call on a past day made the daily rollups be read again


def test_a_range_reaching_into_the_future_reads_today_live(personas: Personas) -> None:
    workspace = personas.workspace
    now = timezone.now()
    ledger_rows(
        workspace,
        [{"at": now - timedelta(days=2)}, {"at": now, "status": "pending", "cost": 0}],
    )
    pending = LedgerEntry.objects.get(workspace=workspace, status="pending")
    params = {
        "measure": ["calls"],
        "granularity": ["total"],
        "from": [(now - timedelta(days=4)).strftime("%Y-%m-%dT%H:%M")],
        "to": [(now + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")],
    }

    before = metrics_answer(workspace.pk, metrics_query_parse(params))["rows"][0]["calls"]
    ledger_finish(str(pending.call_id), {"status": "completed", "latency_ms": 500})
    after = metrics_answer(workspace.pk, metrics_query_parse(params))["rows"][0]["calls"]

    assert (before, after) == (1, 2)


@pytest.mark.parametrize(
    ("params", "parameter", "message"),
    [
        ({}, "measure", "Say what to measure"),
        ({"measure": "dollars"}, "measure", "Unknown measure"),
        ({"measure": "runs,cost"}, "measure", "cannot be mixed"),
        ({"measure": "cost", "dimension": "model,agent,user"}, "dimension", "at most two"),
        ({"measure": "cost", "dimension": "status"}, "dimension", "Unknown dimension"),
        ({"measure": "runs", "agent": "a1"}, "agent", "cannot be filtered by agent"),
        ({"measure": "cost", "from": "yesterday"}, "from", "not a date"),
        ({"measure": "cost", "from": "2026-12-05", "to": "2026-12-01"}, "from", "start before"),
        ({"measure": "cost", "from": "2024-01-01", "to": "2026-01-01"}, "from", "at most 400"),
        ({"measure": "cost", "range": "1y"}, "range", "Unknown range"),
        ({"measure": "cost", "range": "90d", "granularity": "hour"}, "granularity", "coarser"),
        ({"measure": "cost", "granularity": "minute"}, "granularity", "Unknown granularity"),
        ({"measure": "cost", "order": "calls"}, "order", "Order by one of the measures"),
        ({"measure": "cost", "limit": "0"}, "limit", "from 1 to 100"),
        ({"measure": "cost", "model": "bad model name;"}, "model", "not a model"),
    ],
)
def test_bad_parameters_are_refused_with_the_reason(
    personas: Personas, client_for: Any, params: dict[str, str], parameter: str, message: str
) -> None:
    with pytest.raises(MetricsQueryError, match=message) as refused:
        metrics_query_parse({name: [value] for name, value in params.items()}, now=NOW)
    assert refused.value.parameter == parameter

    response = client_for(personas.viewer).get(reverse("metrics_query"), params)

    assert response.status_code == 400
    assert response.json()["parameter"] == parameter
    assert message in response.json()["error"]


def test_the_api_answers_the_current_workspace_or_one_the_user_belongs_to(
    history: Personas, client_for: Any
) -> None:
    url = reverse("metrics_query")
    params = {"measure": "calls", "dimension": "model", "granularity": "total", "range": "90d"}

    mine = client_for(history.viewer).get(url, params).json()
    theirs = client_for(history.outsider).get(url, params).json()
    peeking = client_for(history.outsider).get(url, {**params, "workspace": history.workspace.pk})
    csv = client_for(history.viewer).get(url, {**params, "format": "csv"})

    assert {row["model"] for row in mine["rows"]} == {"gpt-4o-mini", "house"}
    assert {row["model"] for row in theirs["rows"]} == {"secret-model"}
    assert peeking.status_code == 404
    assert csv["Content-Type"].startswith("text/csv")
    assert csv.content.decode().splitlines()[0] == "model,calls"
    assert client_for(None).get(url, params).status_code == 403
