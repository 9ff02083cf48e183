"""Handing a run to whatever executes runs here: Celery workers, or this very process."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)


def dispatch_run(run_id: Any) -> None:
    """Only the id travels: the worker reads everything else from the database."""
    if settings.EXECUTION_MODE == "celery":
        from workflows.tasks import run_execute

        run_execute.delay(str(run_id))
    else:
        from workflows.executor import process_executor

        process_executor().submit(str(run_id), block=False)
