"""A run followed live as Server-Sent Events over real HTTP to daphne: stored events replayed,
live ones streamed, the final status last; a reconnect with Last-Event-ID loses nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from agents.fakellm import start_in_thread
from tests.api.conftest import make_token
from tests.conftest import Personas
from tests.support.processes import start_daphne
from tests.workflows.conftest import research_agents
from workflows.graph import examples
from workflows.models import Run
from workflows.services.workflows import workflow_create, workflow_publish

# Two processes writing one SQLite file lock each other out; the live path runs on PostgreSQL.
pytestmark = [pytest.mark.services, pytest.mark.slow]


@pytest.fixture(scope="module")
def model() -> Iterator[Any]:
    with start_in_thread(name="sse-model") as server:
        yield server


@pytest.fixture(scope="module")
def server(django_db_setup: None, django_db_blocker: Any, model: Any) -> Iterator[str]:
    with django_db_blocker.unblock():
        process, url = start_daphne(
            "daphne-api-sse",
            REDIS_URL="",
            A2A_EXECUTION_MODE="embedded",
            A2A_EXECUTOR_AUTOSTART="true",
            A2A_DEMO_MODEL_URL=model.url,
            A2A_OUTBOUND_ALLOWED_HOSTS="127.0.0.1",
        )
    yield url
    process.stop()


def read_stream(response: httpx.Response) -> list[dict[str, Any]]:
    """The SSE messages of a stream, to its end: each {"id", "event", "data"} (data parsed)."""
    frames: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    for line in response.iter_lines():
        if line == "":
            if "data" in current:
                current["data"] = json.loads(current["data"])
                frames.append(current)
            current = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(": ")
            current[name] = value
    return frames


def test_a_run_streams_live_then_ends_with_its_status(
    server: str, model: Any, personas: Personas, transactional_db: None
) -> None:
    model.set_script({"rules": [{"reply": "Tides rise and fall, twice a day.", "delay_ms": 200}]})
    researcher, analyst, writer = research_agents(personas)
    graph = examples.research_pipeline(str(researcher.pk), str(analyst.pk), str(writer.pk))
    workflow = workflow_create(
        workspace=personas.workspace, user=personas.owner, name="Research", graph=graph
    )
    workflow_publish(workflow=workflow, user=personas.owner)
    token = make_token(personas.viewer, "read")
    launcher = make_token(personas.editor, "run")
    with httpx.Client(base_url=server, timeout=60) as http:
        launched = http.post(
            f"/api/v1/workflows/{workflow.pk}/runs",
            json={"inputs": {"topic": "tides"}},
            headers={"Authorization": f"Bearer {launcher}"},
        )
        assert launched.status_code == 201, launched.text
        run_id = launched.json()["id"]
        headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
        with http.stream("GET", f"/api/v1/runs/{run_id}/events", headers=headers) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            frames = read_stream(response)

        kinds = [frame["event"] for frame in frames]
        assert "replayed" in kinds
        # Token deltas are never stored: these came live, while the run was going.
        assert "delta" in kinds, kinds
        assert kinds.index("replayed") < kinds.index("delta")
        assert frames[-1]["event"] == "status"
        assert frames[-1]["data"]["status"] == "succeeded", frames[-1]
        run = Run.objects.get(pk=run_id)
        seqs = sorted({frame["data"]["seq"] for frame in frames if frame["event"] == "event"})
        assert seqs == list(range(1, run.last_seq + 1))
        messages = [
            f["data"] for f in frames if f["event"] == "event" and f["data"]["kind"] == "message"
        ]
        assert len(messages) == 3  # researcher, analyst, writer
        assert all(int(frame["id"]) <= frame["data"]["seq"] for frame in frames if "id" in frame)

        # A reconnect from the middle gets the rest, then the status, and the stream ends.
        middle = seqs[len(seqs) // 2]
        with http.stream(
            "GET",
            f"/api/v1/runs/{run_id}/events",
            headers={**headers, "Last-Event-ID": str(middle)},
        ) as again:
            resumed = read_stream(again)
        resumed_seqs = [f["data"]["seq"] for f in resumed if f["event"] == "event"]
        assert resumed_seqs == [seq for seq in seqs if seq > middle]
        assert resumed[-1]["event"] == "status"

        # Another workspace's run is not streamed: a 404 problem, as for JSON.
        outsider = {**headers, "Authorization": f"Bearer {make_token(personas.outsider, 'read')}"}
        refused = http.get(f"/api/v1/runs/{run_id}/events", headers=outsider)
        assert refused.status_code == 404
        assert refused.headers["content-type"] == "application/problem+json"
    model.set_script(None)
