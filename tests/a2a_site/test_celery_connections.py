"""A Celery worker keeps its database connection between tasks, as Django keeps one between
requests: open for CONN_MAX_AGE, closed once obsolete or unusable.

Celery's own Django fixup closed it around every task, so each delivered run opened a new
PostgreSQL connection before it could take its lease.
"""

from __future__ import annotations

import time

import pytest
from django.db import connection

from a2a_site.celery import ConnectionsKeptBetweenTasks, app
from workflows.tasks import run_execute

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def after_a_task() -> None:
    fixup = ConnectionsKeptBetweenTasks(app)
    fixup.on_task_prerun(sender=run_execute)
    fixup.on_task_postrun(sender=run_execute)


def test_a_fresh_connection_stays_open_between_tasks() -> None:
    connection.ensure_connection()
    opened = connection.connection
    connection.close_at = time.monotonic() + 60  # as CONN_MAX_AGE=60 sets it
    after_a_task()
    assert connection.connection is opened
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


def test_an_obsolete_connection_is_closed_after_a_task() -> None:
    connection.ensure_connection()
    connection.close_at = time.monotonic() - 1
    after_a_task()
    assert connection.connection is None


def test_the_worker_app_uses_it() -> None:
    from celery.fixups.django import DjangoFixup

    fixups = [f for f in app._fixups if isinstance(f, DjangoFixup)]
    assert fixups
    assert all(isinstance(f.worker_fixup, ConnectionsKeptBetweenTasks) for f in fixups)
