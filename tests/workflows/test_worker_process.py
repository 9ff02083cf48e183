"""A real Celery worker process on Redis and PostgreSQL reports in, and says goodbye."""

from __future__ import annotations

import uuid

import pytest
from django.urls import reverse

from tests.conftest import Personas
from tests.support.processes import start_celery_worker
from tests.support.waiting import wait_for
from workflows.models import Worker

pytestmark = [pytest.mark.services, pytest.mark.slow]


@pytest.mark.django_db(transaction=True)
def test_a_celery_worker_heartbeats_and_shows_on_monitoring(personas: Personas, client_for) -> None:
    name = f"test-{uuid.uuid4().hex[:8]}"
    worker = start_celery_worker(name)
    try:
        row = wait_for(
            lambda: (worker.assert_running(), Worker.objects.filter(name__startswith=f"{name}@"))[
                1
            ].first(),
            timeout=60,
            interval=0.1,
            what="the worker's heartbeat row",
        )
        assert row.kind == "celery"
        assert row.pid == worker.process.pid
        assert row.rss_bytes > 10 * 2**20
        first_seen = row.last_seen_at
        # It keeps beating (every second in tests).
        wait_for(
            lambda: Worker.objects.get(pk=row.pk).last_seen_at > first_seen,
            timeout=15,
            what="a second heartbeat",
        )
        # Its executor's event loop starts with it: the lag is measured before any run.
        wait_for(
            lambda: Worker.objects.get(pk=row.pk).loop_lag_ms is not None,
            timeout=15,
            what="the loop lag in a heartbeat",
        )
        page = client_for(personas.viewer).get(reverse("monitoring_overview")).content.decode()
        assert row.name in page
        assert "1 worker(s) alive" in page, [(w.name, w.pid, w.kind) for w in Worker.objects.all()]
    finally:
        worker.stop()
    stopped = Worker.objects.get(pk=row.pk)
    assert stopped.stopped_at is not None, worker.log()


@pytest.mark.django_db(transaction=True)
def test_a_web_process_of_the_distributed_mode_reports_itself(personas: Personas) -> None:
    import urllib.request

    from tests.support.processes import start_daphne

    server, url = start_daphne(
        "daphne-heartbeat", A2A_WEB_HEARTBEAT="true", A2A_WORKER_HEARTBEAT_SECONDS="1"
    )
    try:
        urllib.request.urlopen(f"{url}/healthz", timeout=5).read()  # its loop is now watched
        row = wait_for(
            lambda: Worker.objects.filter(
                kind="web", pid=server.process.pid, loop_lag_ms__isnull=False
            ).first(),
            timeout=30,
            interval=0.1,
            what="the web process's heartbeat with its loop lag",
        )
        assert row.name.startswith("web@")
        assert row.runs_in_flight is None and row.runs_capacity is None  # Celery runs them
        assert row.loop_lag_ms is not None and row.loop_lag_ms < 2000
    finally:
        server.stop()
    stopped = Worker.objects.get(pk=row.pk)
    assert stopped.stopped_at is not None, server.log()


@pytest.mark.django_db(transaction=True)
def test_with_the_prefork_pool_each_child_reports_the_runs_it_executes() -> None:
    import sys

    from tests.support.processes import ServerProcess, child_environment

    name = f"prefork-{uuid.uuid4().hex[:8]}"
    worker = ServerProcess(
        f"celery-{name}",
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "a2a_site",
            "worker",
            "--pool=prefork",
            "--concurrency=1",
            "-n",
            f"{name}@%h",
            "--without-mingle",
            "--without-gossip",
        ],
        child_environment(A2A_WORKER_HEARTBEAT_SECONDS="1"),
    )
    try:
        parent = wait_for(
            lambda: (worker.assert_running(), Worker.objects.filter(pid=worker.process.pid))[
                1
            ].first(),
            timeout=60,
            interval=0.1,
            what="the parent's heartbeat",
        )
        # The parent executes no run: it says so rather than "0 of 300".
        assert parent.runs_in_flight is None and parent.runs_capacity is None
        child = wait_for(
            lambda: Worker.objects.filter(
                name__startswith="pool@", pid__in=_children_of(worker.process.pid)
            ).first(),
            timeout=60,
            interval=0.1,
            what="the pool child's heartbeat",
        )
        assert child.kind == "celery" and child.runs_capacity == 300
    finally:
        worker.stop()


def _children_of(pid: int) -> list[int]:
    import psutil

    try:
        return [child.pid for child in psutil.Process(pid).children()]
    except psutil.Error:
        return []
