"""The Celery application. Workers start with `celery -A a2a_site worker`."""

from __future__ import annotations

import os
from typing import Any, cast

from celery import Celery
from celery.fixups import django as celery_django
from celery.signals import after_setup_logger, after_setup_task_logger

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "a2a_site.settings")

app = Celery("a2a_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


# Not in the type stubs of Celery; present in the pinned version.
_WorkerFixup: Any = celery_django.DjangoWorkerFixup  # type: ignore[attr-defined]


class ConnectionsKeptBetweenTasks(_WorkerFixup):
    """Celery's Django fixup closes every database connection of the worker's thread before and
    after each task, so each task (a reaper round, a webhook delivery, ...) opened a new
    PostgreSQL connection, several ms, before its first statement. Here they follow Django's
    own rule at the end of a request instead: kept for CONN_MAX_AGE, closed when unusable
    (after an error) or obsolete, or left in a transaction."""

    def _close_database(self) -> None:
        for connection in self._db.connections.all(initialized_only=True):
            connection.close_if_unusable_or_obsolete()

    def validate_models(self) -> None:
        """Celery runs every system check as the worker starts (and drops what they report).
        The URL configuration's check imports every view, and through them the MCP and A2A
        SDKs, Django's admin pages and the API: about 50 MB that a worker, which serves no URL,
        would otherwise carry for good. The other checks run as before."""
        from django.core.checks.registry import registry

        self.django_setup()
        if os.environ.get("CELERY_SKIP_CHECKS"):
            return
        for check in registry.get_checks():
            if "urls" not in getattr(check, "tags", ()):
                check(app_configs=None, databases=None)


for _fixup in cast(Any, app)._fixups or []:
    if isinstance(_fixup, celery_django.DjangoFixup):
        cast(Any, _fixup).worker_fixup = ConnectionsKeptBetweenTasks(app)


@after_setup_logger.connect
@after_setup_task_logger.connect
def _redact_worker_logs(logger: Any, **kwargs: Any) -> None:
    """Celery replaces the root logger's handlers with its own: they redact keys too."""
    from agents.llm.redaction import RedactSecretsFilter

    for handler in logger.handlers:
        if not any(isinstance(f, RedactSecretsFilter) for f in handler.filters):
            handler.addFilter(RedactSecretsFilter())
