"""Budgets: spend limits per scope and period, enforced before every model call.

The truth of a budget's spend is one row per budget and period (`BudgetPeriod`): before a call
the ledger reserves the call's worst-case cost there with a conditional UPDATE, and after it the
reservation is replaced by the real cost (`enforcement.py`). Every worker counts against the same
row, so a hard limit holds across any number of processes: once spend plus reservations reach
it, no further call is admitted, and overspend is at most the calls already in flight.

Budgets live here, beside the ledger and the gateway they guard; the pages are in `monitoring`,
and the engine asks through `workflows.engine.contracts.SpendGate`.
"""
