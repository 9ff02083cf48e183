"""The embedded mode's executor keeps house without Celery beat: reaper, probes, heartbeat."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.utils import timezone

from agents.models import OllamaNode
from tests.agents.factories import make_provider
from tests.conftest import Personas
from tests.support.waiting import wait_for
from workflows.models import Run, RunStatus, Worker
from workflows.services.lease import run_lease_acquire
from workflows.services.runs import run_start

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_embedded_executor_reaps_probes_and_reports(
    personas: Personas,
    pipeline: Any,
    llm_server: Any,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from workflows import executor as executor_module

    settings.EXECUTION_MODE = "embedded"
    settings.RUN_REAPER_SECONDS = 1
    settings.OLLAMA_PROBE_SECONDS = 1
    settings.WORKER_HEARTBEAT_SECONDS = 1
    fleet = make_provider(personas.workspace, kind="ollama", name="Fleet")
    node = OllamaNode.objects.create(provider=fleet, name="local", base_url=llm_server.url)
    # A run a crashed process left behind: leased, lease long expired.
    orphan = run_start(workflow=pipeline, user=None, inputs={"topic": "x"}, dispatch=False)
    run_lease_acquire(orphan.pk, owner="dead-process")
    Run.objects.filter(pk=orphan.pk).update(lease_until=timezone.now() - timedelta(minutes=1))

    executor = executor_module.RunExecutor(embedded=True)
    executor.owned_by_fixture = True  # type: ignore[attr-defined]
    # What the reaper resumes goes to this process's executor: this one.
    monkeypatch.setattr(executor_module, "_executor", executor)
    try:
        wait_for(
            lambda: Worker.objects.filter(kind="embedded", stopped_at__isnull=True).exists(),
            timeout=20,
            what="the embedded process's heartbeat",
        )
        wait_for(
            lambda: OllamaNode.objects.get(pk=node.pk).status == "up",
            timeout=20,
            what="the node probe",
        )
        finished = wait_for(
            lambda: (run := Run.objects.get(pk=orphan.pk)).status == RunStatus.SUCCEEDED and run,
            timeout=30,
            what="the orphaned run to be resumed and finished",
        )
        assert finished.attempts == 2
    finally:
        asyncio.run_coroutine_threadsafe(
            sync_to_async(connections.close_all)(), executor.loop
        ).result(timeout=10)
        executor.shutdown()
        from a2a_site.db import db_threads_close

        db_threads_close()
    assert Worker.objects.get(kind="embedded").stopped_at is not None
