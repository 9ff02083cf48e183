"""One round of alert work: evaluate the due rules, then send the due deliveries.

Run by Celery beat's `alerts-round` in the distributed mode and by the embedded executor's
housekeeping otherwise (registered in `monitoring.apps`); both may overlap safely.
"""

from __future__ import annotations

import logging

from django.utils import timezone

from monitoring.alerts.deliveries import deliveries_send_due
from monitoring.alerts.evaluation import alerts_evaluate
from monitoring.alerts.services import alerts_forget_old

logger = logging.getLogger(__name__)


def alerts_round() -> None:
    now = timezone.now()
    try:
        alerts_evaluate(now=now)
    finally:
        # Deliveries go out even when an evaluation failed.
        deliveries_send_due(now=timezone.now())
    alerts_forget_old(now=now)
