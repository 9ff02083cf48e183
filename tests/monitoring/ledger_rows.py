"""Ledger rows for dashboard tests, written as the gateway leaves them, then rolled up."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from agents.models import LedgerEntry
from agents.rollups import rollups_rebuild


def ledger_rows(workspace: Any, rows: list[dict[str, Any]]) -> None:
    """Each dict names what differs from a completed, priced call; `at` is its start."""
    entries = []
    for row in rows:
        row = dict(row)
        at: datetime = row.pop("at")
        source = {
            "agent_id": row.pop("agent_id", ""),
            "workflow_id": row.pop("workflow_id", ""),
            "user_id": row.pop("user_id", ""),
            "source": "run",
        }
        values: dict[str, Any] = {
            "call_id": uuid.uuid4(),
            "workspace": workspace,
            "deployment_id": f"{row.get('provider_id') or 'p'}:{row.get('model', 'gpt-4o-mini')}",
            "provider_kind": "openai",
            "model": "gpt-4o-mini",
            "status": LedgerEntry.Status.COMPLETED,
            "prompt_tokens": 100,
            "completion_tokens": 50,
            "cost": Decimal("0.01"),
            "price_source": "price_list",
            "latency_ms": 400,
            "started_at": at,
            "finished_at": at,
            "source": source,
            **row,
        }
        entries.append(LedgerEntry(**values))
    LedgerEntry.objects.bulk_create(entries)
    rollups_rebuild(workspace.pk)
