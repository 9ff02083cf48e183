"""The plain text a run is found by in the history: its inputs, output and messages.

Written when a run is launched (inputs only) and again when it stops (with its output and every
message). PostgreSQL indexes its tsvector with GIN (see the migration that adds the index); the
embedded SQLite mode searches the same text with LIKE.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from agents.llm.redaction import redact_secrets

# Enough for every word of an ordinary run; a run that talks for hours is found by its start.
SEARCH_TEXT_MAX_CHARS = 20_000


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def search_text_of(
    *, inputs: Mapping[str, Any] | None, output: Any = None, messages: Iterable[str] = ()
) -> str:
    parts = [_as_text(value) for value in (inputs or {}).values()]
    parts.append(_as_text(output))
    parts.extend(messages)
    text = "\n".join(part for part in parts if part)
    return redact_secrets(text[:SEARCH_TEXT_MAX_CHARS])


def run_facets(run_id: Any) -> dict[str, list[str]]:
    """The models, providers, agents and error kinds of the run's calls, from its ledger."""
    from agents.models import LedgerEntry

    rows = (
        LedgerEntry.objects.filter(run_id=run_id)
        .values_list("model", "provider_id", "source", "error_kind")
        .distinct()
    )
    found: dict[str, set[str]] = {"models": set(), "providers": set(), "agents": set()}
    found["errors"] = set()
    for model, provider_id, source, error_kind in rows:
        found["models"].add(model)
        if provider_id:
            found["providers"].add(str(provider_id))
        agent_id = (source or {}).get("agent_id") if isinstance(source, dict) else None
        if agent_id:
            found["agents"].add(str(agent_id))
        if error_kind:
            found["errors"].add(error_kind)
    return {name: sorted(values) for name, values in found.items()}


def run_search_fields(run_id: Any, *, inputs: Any, output: Any) -> dict[str, Any]:
    """The run's search text and facets, for the write that ends it (its events and calls are
    all stored by then)."""
    from workflows.models import RunEvent

    texts = (
        RunEvent.objects.filter(run_id=run_id, kind="message")
        .order_by("seq")
        .values_list("data", flat=True)
    )
    messages = [str(data.get("text") or "") for data in texts if isinstance(data, dict)]
    return {
        "search_text": search_text_of(inputs=inputs, output=output, messages=messages),
        "facets": run_facets(run_id),
    }


def run_search_refresh(run_id: Any) -> None:
    """Rewrites what the history finds the run by: its search text (from its stored inputs,
    output and message events) and its facets (from its ledger)."""
    from workflows.models import Run, RunEvent

    row = Run.objects.filter(pk=run_id).values("inputs", "output").first()
    if row is None:
        return
    texts = (
        RunEvent.objects.filter(run_id=run_id, kind="message")
        .order_by("seq")
        .values_list("data", flat=True)
    )
    messages = [str(data.get("text") or "") for data in texts if isinstance(data, dict)]
    Run.objects.filter(pk=run_id).update(
        search_text=search_text_of(inputs=row["inputs"], output=row["output"], messages=messages),
        facets=run_facets(run_id),
    )
