"""`Columns.values`: the hand-written statements' parameters are what each field's own
preparation gives, with plain text, integers and flags passed as they are."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.db import DEFAULT_DB_ALIAS, connections, models

from a2a_site.db import PLAIN_PREPARATION, Columns
from agents.models import LedgerEntry
from workflows.models import Run, RunStatus, Step

pytestmark = pytest.mark.django_db


def _prepared_by_fields(table: Columns, row: dict[str, Any]) -> list[Any]:
    current = connections[DEFAULT_DB_ALIAS]
    return [
        table.model._meta.get_field(name).get_db_prep_save(v, current) for name, v in row.items()
    ]


def _comparable(values: list[Any]) -> list[Any]:
    # psycopg's wrappers (Jsonb, Int4...) do not compare by value: their type and content do.
    return [(type(v).__name__, getattr(v, "obj", v)) for v in values]


@pytest.mark.parametrize(
    ("model", "row"),
    [
        (
            Run,
            {
                "id": str(uuid.uuid4()),
                "status": RunStatus.RUNNING,  # a str enum: prepared by its field
                "reason": "plain text",
                "lease_owner": "",
                "steps_completed": 3,
                "prompt_tokens": 0,
                "cancel_requested": False,
                "cost": Decimal("0.25"),
                "finished_at": datetime(2026, 12, 8, tzinfo=UTC),
                "variables": {"a": [1, 2]},
                "parent_step_key": None,
            },
        ),
        (
            LedgerEntry,
            {
                "call_id": uuid.uuid4(),
                "model": "gpt-4o-mini",
                "attempt": 2,
                "latency_ms": None,
                "cost_estimated": True,
                "error_kind": "",
                "source": {"agent_id": "a1"},
            },
        ),
        (Step, {"key": "agent-1", "attempt": 1, "output": "text", "branch": ""}),
    ],
)
def test_values_are_what_each_fields_preparation_gives(model: Any, row: dict[str, Any]) -> None:
    table = Columns(model)
    assert _comparable(table.values(row)) == _comparable(_prepared_by_fields(table, row))


def test_a_value_of_another_type_or_a_field_subclass_goes_through_its_field() -> None:
    class Shouting(models.CharField):  # a subclass may prepare its way (encryption does)
        def get_prep_value(self, value: Any) -> Any:
            return None if value is None else str(value).upper()

    # Fields of no registered model (one declared here would enter the app registry, and a
    # later migrations check would find it): a table of Step's, given these two instead.
    loud, count = Shouting(max_length=10), models.PositiveIntegerField()
    loud.set_attributes_from_name("loud")
    count.set_attributes_from_name("count")
    table = Columns(Step)
    table._fields = {"loud": loud, "count": count}
    assert table.values({"loud": "hi"}) == ["HI"]
    plain = table._plain[connections[DEFAULT_DB_ALIAS].vendor]
    assert plain["loud"] is None and Shouting not in PLAIN_PREPARATION
    # Integers are kept as they are where the backend's preparation keeps them (SQLite), and
    # prepared where it wraps them in its own types (PostgreSQL's Int4).
    count = table.values({"count": 3})[0]
    assert getattr(count, "obj", count) == 3 and int(count) == 3
    assert (plain["count"] is int) == (type(count) is int)
    assert int(table.values({"count": "7"})[0]) == 7  # a string: prepared, to an integer
    assert type(table.values({"count": True})[0]) is not bool  # a flag is not an integer
