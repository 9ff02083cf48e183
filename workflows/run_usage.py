"""A run's usage, summed from the ledger by one statement: the run's totals are a copy of it.

Ledger rows belong to the run that made the call, so review pages that read the ledger count
each call once; a run's totals are what the run cost, its sub-workflows included.
"""

from __future__ import annotations

import functools
from typing import Any

from a2a_site.db import Columns
from agents.models import LedgerEntry
from workflows.models import Run

_RUN = Columns(Run)
_LEDGER = Columns(LedgerEntry)


@functools.cache
def usage_sums_sql() -> str:
    """One row (prompt tokens, completion tokens, cost, model calls) of a run's usage: its own
    ledger rows plus its sub-runs' totals, which include theirs in turn. Ledger rows belong to
    the run that made the call, so review pages that read the ledger count each call once;
    a run's totals are what the run cost, its sub-workflows included. Two parameters: the run's
    id as the ledger keeps it, then as the run table does."""
    lg, r = _LEDGER, _RUN
    own = (
        f"SELECT COALESCE(SUM({lg['prompt_tokens']}), 0) AS p, "
        f"COALESCE(SUM({lg['completion_tokens']}), 0) AS c, "
        f"COALESCE(SUM({lg['cost']}), 0) AS m, COUNT(*) AS n "
        f"FROM {lg.table} WHERE {lg['run_id']} = %s"
    )
    kids = (
        f"SELECT COALESCE(SUM(kid.{r['prompt_tokens']}), 0) AS p, "
        f"COALESCE(SUM(kid.{r['completion_tokens']}), 0) AS c, "
        f"COALESCE(SUM(kid.{r['cost']}), 0) AS m, COALESCE(SUM(kid.{r['model_calls']}), 0) AS n "
        f"FROM {r.table} kid WHERE kid.{r['parent']} = %s"
    )
    return (
        f"SELECT own.p + kids.p, own.c + kids.c, own.m + kids.m, own.n + kids.n "
        f"FROM ({own}) own, ({kids}) kids"
    )


def usage_sums_params(run_id: Any) -> list[Any]:
    return [_LEDGER.value("run_id", run_id), _RUN.value("id", run_id)]
