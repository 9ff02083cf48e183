"""The SSE stream in the distributed mode: daphne and a Celery worker as separate processes,
live events crossing the Redis channel layer. A viewer that drops the stream mid-run and comes
back with Last-Event-ID gets the rest — live token deltas included — and no event twice."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from agents.fakellm import start_in_thread
from tests.api.conftest import make_token
from tests.conftest import Personas
from tests.support.processes import ServerProcess, start_celery_worker, start_daphne
from tests.workflows.conftest import research_agents
from workflows.graph import examples
from workflows.models import Run
from workflows.services.workflows import workflow_create, workflow_publish

pytestmark = [pytest.mark.services, pytest.mark.slow]


@pytest.fixture(scope="module")
def model() -> Iterator[Any]:
    with start_in_thread(name="sse-distributed-model") as server:
        yield server


@pytest.fixture(scope="module")
def distributed(
    django_db_setup: None, django_db_blocker: Any, model: Any
) -> Iterator[tuple[str, ServerProcess]]:
    redis_url = os.environ["REDIS_URL"]
    common = {
        "REDIS_URL": redis_url,
        "A2A_EXECUTION_MODE": "celery",
        "A2A_DEMO_MODEL_URL": model.url,
        "A2A_OUTBOUND_ALLOWED_HOSTS": "127.0.0.1",
    }
    with django_db_blocker.unblock():
        process, url = start_daphne("daphne-sse-distributed", **common)
        worker = start_celery_worker(f"sse-{uuid.uuid4().hex[:6]}", **common)
    yield url, worker
    worker.stop()
    process.stop()


def frames_of(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """SSE messages as they come: each {"id"?, "event", "data"} (data parsed)."""
    current: dict[str, Any] = {}
    for line in lines:
        if line == "":
            if "data" in current:
                current["data"] = json.loads(current["data"])
                yield current
            current = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(": ")
            current[name] = value


def test_a_stream_resumed_mid_run_with_last_event_id_loses_and_repeats_nothing(
    distributed: tuple[str, ServerProcess],
    model: Any,
    personas: Personas,
    transactional_db: None,
) -> None:
    url, worker = distributed
    # Slow enough that the run is still going when the viewer comes back.
    model.set_script({"rules": [{"reply": "Tides rise and fall, twice a day.", "delay_ms": 700}]})
    researcher, analyst, writer = research_agents(personas)
    graph = examples.research_pipeline(str(researcher.pk), str(analyst.pk), str(writer.pk))
    workflow = workflow_create(
        workspace=personas.workspace, user=personas.owner, name="Research", graph=graph
    )
    workflow_publish(workflow=workflow, user=personas.owner)
    launcher = make_token(personas.editor, "run")
    reader = make_token(personas.viewer, "read")
    headers = {"Authorization": f"Bearer {reader}", "Accept": "text/event-stream"}
    with httpx.Client(base_url=url, timeout=90) as http:
        launched = http.post(
            f"/api/v1/workflows/{workflow.pk}/runs",
            json={"inputs": {"topic": "tides"}},
            headers={"Authorization": f"Bearer {launcher}"},
        )
        assert launched.status_code == 201, launched.text
        run_id = launched.json()["id"]

        # Follow until the first agent's message is stored, then drop the connection.
        before: list[dict[str, Any]] = []
        with http.stream("GET", f"/api/v1/runs/{run_id}/events", headers=headers) as response:
            assert response.status_code == 200
            for frame in frames_of(response.iter_lines()):
                before.append(frame)
                if frame["event"] == "event" and frame["data"]["kind"] == "message":
                    break
        last_id = max(int(frame["id"]) for frame in before if "id" in frame)
        assert Run.objects.get(pk=run_id).status == "running", "the run ended before the drop"

        with http.stream(
            "GET",
            f"/api/v1/runs/{run_id}/events",
            headers={**headers, "Last-Event-ID": str(last_id)},
        ) as again:
            after = list(frames_of(again.iter_lines()))
    worker.assert_running()

    run = Run.objects.get(pk=run_id)
    assert run.status == "succeeded", run.reason
    assert after[-1]["event"] == "status" and after[-1]["data"]["status"] == "succeeded"
    # Deltas are never stored: these crossed Redis from the worker while the run went on.
    assert "delta" in [frame["event"] for frame in after]
    seen_before = [f["data"]["seq"] for f in before if f["event"] == "event"]
    seen_after = [f["data"]["seq"] for f in after if f["event"] == "event"]
    assert all(seq > last_id for seq in seen_after)
    assert sorted(set(seen_before) | set(seen_after)) == list(range(1, run.last_seq + 1))
    assert len(seen_after) == len(set(seen_after))
    messages = [f for f in after if f["event"] == "event" and f["data"]["kind"] == "message"]
    assert len(messages) == 2  # the analyst's and the writer's, after the researcher's
    model.set_script(None)
