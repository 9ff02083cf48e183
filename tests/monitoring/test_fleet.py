"""The Ollama fleet page and the capacity planner, against fake Ollama nodes."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from agents.fakellm import start_in_thread
from agents.models import LedgerEntry, OllamaNode
from agents.services.nodes import fleet_probe, node_history_add
from monitoring.fleet import probe_series
from tests.agents.factories import make_agent, make_provider
from tests.conftest import Personas
from tests.support.processes import free_port


def test_node_history_is_a_bounded_ring_of_probes() -> None:
    history: dict = {}
    start = 1_800_000_000 - 1_800_000_000 % 900
    history = node_history_add(history, at=start, ok=True, response_ms=10)
    history = node_history_add(history, at=start + 20, ok=True, response_ms=30)
    history = node_history_add(history, at=start + 40, ok=False, response_ms=None)
    assert history["hour"] == [[start, 3, 2, 20.0]]
    for minute in range(1, 200):
        history = node_history_add(history, at=start + minute * 60, ok=True, response_ms=5)
    assert len(history["hour"]) == 60 and len(history["day"]) == 14


def test_probe_series_places_points_on_the_grid_and_counts_the_uptime() -> None:
    now = timezone.now()
    minute = int(now.timestamp() // 60 * 60)
    latency, up, uptime = probe_series(
        {"hour": [[minute - 60, 4, 4, 12.0], [minute, 4, 0, None]]}, span="hour", now=now
    )
    assert latency[-2:] == [12.0, None] and up[-2:] == [1.0, 0.0]
    assert latency[0] is None and uptime == 50


def test_the_fleet_page_shows_health_models_load_and_warns_of_missing_models(
    personas: Personas, client_for, llm_server
) -> None:
    provider = make_provider(personas.workspace, kind="ollama", name="Fleet")
    up = OllamaNode.objects.create(
        provider=provider, name="gpu-a", base_url=llm_server.url, max_parallel=3, memory_gb=24
    )
    OllamaNode.objects.create(
        provider=provider, name="gpu-b", base_url=f"http://127.0.0.1:{free_port()}"
    )
    make_agent(
        personas.workspace,
        name="Writer",
        provider=provider,
        model={"provider_id": str(provider.pk), "model": "llama3.2"},
    )
    make_agent(
        personas.workspace,
        name="Coder",
        provider=provider,
        model={"provider_id": str(provider.pk), "model": "qwen2.5:7b"},
    )
    # A call in flight on gpu-a, one that failed there a minute ago, and one it served after
    # a first attempt failed.
    for status, attempt in (
        (LedgerEntry.Status.PENDING, 1),
        (LedgerEntry.Status.FAILED, 1),
        (LedgerEntry.Status.COMPLETED, 2),
    ):
        LedgerEntry.objects.create(
            attempt=attempt,
            call_id=uuid.uuid4(),
            workspace=personas.workspace,
            provider=provider,
            deployment_id=f"{provider.pk}:{up.pk}:llama3.2",
            provider_kind="ollama",
            model="llama3.2",
            status=status,
            started_at=timezone.now() - timedelta(minutes=1),
        )
    # A chat loads the model: the node's /api/ps then reports it with its memory.
    import urllib.request

    urllib.request.urlopen(
        urllib.request.Request(
            f"{llm_server.url}/api/chat",
            data=b'{"model":"llama3.2","messages":[{"role":"user","content":"hi"}],"stream":false}',
            headers={"Content-Type": "application/json"},
        ),
        timeout=10,
    ).read()
    assert fleet_probe() == 2
    content = client_for(personas.viewer).get(reverse("monitoring_fleet")).content.decode()
    rows = content.split('data-testid="fleet-node"')[1:]
    a = next(row for row in rows if 'data-node="gpu-a"' in row)
    b = next(row for row in rows if 'data-node="gpu-b"' in row)
    assert "badge-ok" in a and "1 of 3" in a and "llama3.2:latest" in a
    assert "3.2B Q4_K_M" in a and "24 GB for models" in a
    assert 'class="sparkline"' in a or "1 point so far" in a
    # The node's own report of what it holds in memory: all of it in VRAM.
    assert "0.0 GB / 2.4 GB" in a
    assert "1 failed here" in a and "1 taken over from a failed attempt" in a
    assert "down" in b and "refused" in b
    warnings = content.split('data-testid="fleet-warnings"')[1].split("</div>")[0]
    assert "Coder" in warnings and "qwen2.5:7b" in warnings and "no node has pulled it" in warnings
    assert "Writer" not in warnings


def test_a_workspace_without_ollama_is_told_how_to_start(personas: Personas, client_for) -> None:
    content = client_for(personas.viewer).get(reverse("monitoring_fleet")).content.decode()
    assert "No Ollama provider in this workspace" in content
    assert "Add an Ollama provider" in content


def test_the_planner_sizes_agents_models_and_places_them(
    personas: Personas, client_for, llm_server
) -> None:
    provider = make_provider(personas.workspace, kind="ollama", name="Fleet")
    with start_in_thread({"models": ["llama3.1:8b"]}, name="node-b") as second:
        OllamaNode.objects.create(
            provider=provider, name="small", base_url=llm_server.url, memory_gb=8
        )
        OllamaNode.objects.create(
            provider=provider, name="big", base_url=second.url, memory_gb=24, max_parallel=2
        )
        writer = make_agent(
            personas.workspace,
            name="Writer",
            provider=provider,
            model={"provider_id": str(provider.pk), "model": "llama3.1:8b"},
        )
        fleet_probe()
        client = client_for(personas.viewer)
        response = client.get(
            reverse("monitoring_capacity"),
            {"agents": [str(writer.pk)], "models": "llama3.1:70b", "parallel": 2, "context": 8192},
        )
        content = response.content.decode()
        assert response.status_code == 200
        # llama3.1:8b is on "big": its figures come from that node's /api/show.
        model_rows = content.split('data-testid="planner-model-row"')[1:]
        eight = next(row for row in model_rows if "llama3.1:8b" in row)
        assert "the node&#x27;s report" in eight or "the node's report" in eight
        assert "Writer" in eight
        placements = content.split('data-testid="planner-placement"')[1:]
        assert any("Fleet / big" in p and "llama3.1:8b" in p and "present" in p for p in placements)
        shortfall = content.split('data-testid="planner-shortfall"')[1]
        assert "llama3.1:70b" in shortfall and "no node has that much" in shortfall
        assert "one more node with at least 50.7 GB" in shortfall
        # The node holds the model placed on it: nothing to apply.
        assert "nothing to pull" in content
        response = client.get(
            reverse("monitoring_capacity"), {"models": "qwen2.5:7b", "parallel": 1}
        )
        # Something to pull, but a viewer may not apply it.
        assert "Editors of this workspace can apply the plan" in response.content.decode()


@pytest.mark.django_db(transaction=True)  # the download thread reads the committed node
def test_applying_a_plan_pulls_models_onto_the_nodes_that_lack_them(
    personas: Personas, client_for, llm_server, settings
) -> None:
    # The download runs in a thread of this process (the embedded mode); a Celery worker
    # pulling it is tests/agents/test_fleet_worker.py's story.
    settings.EXECUTION_MODE = "embedded"
    provider = make_provider(personas.workspace, kind="ollama", name="Fleet")
    node = OllamaNode.objects.create(
        provider=provider, name="gpu-a", base_url=llm_server.url, memory_gb=16
    )
    fleet_probe()
    response = client_for(personas.editor).post(
        reverse("monitoring_capacity_apply"),
        {"models": "qwen2.5:7b", "parallel": 1, "context": 4096},
        follow=True,
    )
    assert response.status_code == 200
    assert "Pulling qwen2.5:7b onto gpu-a" in response.content.decode()

    from tests.support.waiting import wait_for

    wait_for(
        lambda: "qwen2.5:7b" in OllamaNode.objects.get(pk=node.pk).available_models,
        timeout=15,
        what="the pulled model on the node",
    )


def test_the_planner_refuses_what_it_cannot_read(personas: Personas, client_for) -> None:
    client = client_for(personas.viewer)
    for query, message in (
        ({"parallel": "many"}, "whole numbers"),
        ({"parallel": 0}, "between 1 and 256"),
        ({"context": 5000}, "Context length: one of"),
        ({"models": "bad name!"}, "is not a model name"),
        ({"agents": str(uuid.uuid4())}, "not in this workspace"),
    ):
        response = client.get(reverse("monitoring_capacity"), query)
        assert response.status_code == 400, query
        assert message in response.content.decode(), query


def test_a_model_of_unknown_size_is_not_guessed(personas: Personas, client_for) -> None:
    content = (
        client_for(personas.viewer)
        .get(reverse("monitoring_capacity"), {"models": "mystery"})
        .content.decode()
    )
    assert "unknown model" in content and "its size is unknown" in content
    assert "No node can be planned on" in content
