"""The signal budgets send when spend reaches a threshold (alerts connect to it).

`budget_threshold_crossed(sender=Budget, budget=Budget, threshold_percent=int, spend=Decimal,
limit=Decimal, kind="hard"|"soft", period_start=datetime)`: sent once per budget, period and
threshold (50, 80, 100 % of the hard limit, or of the soft limit when there is no hard one; and
`kind="soft"`, `threshold_percent=100` when spend reaches the soft limit under a hard one), after
the transaction that recorded the spend commits, in the process that recorded it.
"""

from __future__ import annotations

from django.dispatch import Signal

budget_threshold_crossed = Signal()
