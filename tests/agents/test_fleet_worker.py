"""In the distributed mode a Celery worker downloads the model; the web process shows progress."""

from __future__ import annotations

import uuid

import pytest
from django.urls import reverse

from agents.models import OllamaNode
from agents.services.pull import pull_progress
from tests.agents.factories import make_provider
from tests.conftest import Personas
from tests.support.processes import start_celery_worker
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.services, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_worker_pulls_the_model_and_reports_through_redis(
    personas: Personas, client_for, llm_server, settings
) -> None:
    settings.EXECUTION_MODE = "celery"
    provider = make_provider(personas.workspace, kind="ollama", name="Fleet")
    node = OllamaNode.objects.create(provider=provider, name="gpu", base_url=llm_server.url)
    worker = start_celery_worker(f"pull-{uuid.uuid4().hex[:6]}")
    try:
        response = client_for(personas.editor).post(
            reverse("node_pull", args=[provider.pk, node.pk]), {"model": "phi3"}
        )
        assert response.status_code == 302
        done = wait_for(
            lambda: (
                (worker.assert_running(), pull_progress(node.pk, "phi3"))[1]
                and pull_progress(node.pk, "phi3").done
            ),
            timeout=60,
            interval=0.1,
            what="the worker to finish the pull",
        )
        assert done
        progress = pull_progress(node.pk, "phi3")
        assert progress.status == "success" and progress.error == ""
        node.refresh_from_db()
        assert "phi3:latest" in node.available_models
        assert any(r["path"] == "/api/pull" for r in llm_server.requests)
    finally:
        worker.stop()
