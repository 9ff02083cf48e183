"""The "Remote agent (A2A)" node run for real against an A2A agent built with the a2a-sdk's
own server classes, started as a separate process (`tests/support/a2a_peer.py`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Personas
from tests.support.processes import A2APeer
from tests.workflows.conftest import finished
from workflows.graph.examples import edge, node
from workflows.models import RemoteTask, Run, RunEvent, RunStatus, Workflow
from workflows.services.runs import run_start
from workflows.services.workflows import workflow_create, workflow_publish

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "peer-secret-7f3a9c1e"


@pytest.fixture
def peer(settings: Any) -> Iterator[A2APeer]:
    # Loopback is allow-listed as an administrator would for an agent on the same machine.
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    server = A2APeer()
    yield server
    server.stop()


def remote_workflow(
    personas: Personas,
    url: str,
    *,
    after: dict[str, Any] | None = None,
    timeout_s: int = 3600,
    **config: Any,
) -> Workflow:
    remote = node("desk", "remote_agent", 0, 0, url=url, output_variable="answer", **config)
    remote["label"] = "Travel desk"
    nodes = [node("start", "start", 0, 0), remote]
    edges = [edge("start", "desk")]
    if after is not None:
        nodes.append(after)
        edges += [edge("desk", after["id"]), edge(after["id"], "end")]
    else:
        edges.append(edge("desk", "end"))
    nodes.append(node("end", "end", 0, 0, output="answer"))
    graph = {
        "schema_version": 1,
        "nodes": nodes,
        "edges": edges,
        "variables": [{"name": "answer", "type": "string"}],
        "inputs": {"fields": [{"name": "request", "type": "text"}]},
        "settings": {"timeout_s": timeout_s},
    }
    workflow = workflow_create(
        workspace=personas.workspace, user=personas.owner, name="Trips", graph=graph
    )
    workflow_publish(workflow=workflow, user=personas.owner, note="first")
    return workflow


def events(run: Run, kind: str) -> list[dict[str, Any]]:
    return [e.data for e in RunEvent.objects.filter(run=run, kind=kind).order_by("seq")]


def test_a_streamed_answer_is_the_nodes_output_and_the_call_is_on_record(
    personas: Personas, peer: A2APeer, executor: Any
) -> None:
    workflow = remote_workflow(personas, peer.url, skill_id="echo")
    run = finished(
        run_start(workflow=workflow, user=personas.owner, inputs={"request": "hi there"})
    )

    assert run.status == RunStatus.SUCCEEDED, run.reason
    assert run.output == "Echo: hi there"
    [call] = events(run, "remote_call")
    assert call["host"] == f"127.0.0.1:{peer.port}"
    assert call["state"] == "completed" and call["task_id"]
    assert call["usage"] is None  # the peer reports none: its cost is unknown, not $0
    said = events(run, "message")
    assert said[-1]["agent"] == "Travel desk" and said[-1]["text"] == "Echo: hi there"
    remembered = RemoteTask.objects.get(run=run)
    assert (remembered.step_key, remembered.task_id) == ("desk/call-1", call["task_id"])
    assert peer.calls()["messages"] == 1
