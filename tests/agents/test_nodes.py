"""An Ollama fleet: nodes are probed, and the page shows which node holds which model."""

from __future__ import annotations

from django.urls import reverse

from agents.fakellm import start_in_thread
from agents.models import OllamaNode
from agents.services.nodes import fleet_probe
from tests.agents.factories import make_provider
from tests.conftest import Personas
from tests.support.processes import free_port


def test_adding_a_node_probes_it(personas: Personas, client_for, llm_server) -> None:
    provider = make_provider(personas.workspace, kind="ollama", name="Fleet")
    response = client_for(personas.editor).post(
        reverse("node_create", args=[provider.pk]),
        {
            "name": "gpu-1",
            "base_url": llm_server.url,
            "priority": 1,
            "max_parallel": 2,
            "enabled": "on",
            "labels_text": "gpu, fast",
        },
        follow=True,
    )
    node = OllamaNode.objects.get(provider=provider)
    assert node.status == OllamaNode.Status.UP
    assert node.labels == ["gpu", "fast"]
    assert "llama3.2:latest" in node.available_models
    assert node.version
    content = response.content.decode()
    assert "Which node holds which model" in content and "gpu-1" in content


def test_the_fleet_probe_marks_a_dead_node_down_and_a_live_one_up(
    personas: Personas, llm_server
) -> None:
    provider = make_provider(personas.workspace, kind="ollama", name="Fleet")
    with start_in_thread(name="node-b") as second:
        alive = OllamaNode.objects.create(provider=provider, name="a", base_url=second.url)
        dead = OllamaNode.objects.create(
            provider=provider, name="b", base_url=f"http://127.0.0.1:{free_port()}"
        )
        assert fleet_probe() == 2
    alive.refresh_from_db()
    dead.refresh_from_db()
    assert alive.status == OllamaNode.Status.UP
    assert dead.status == OllamaNode.Status.DOWN
    assert "refused" in dead.last_error


def test_a_node_on_a_private_address_needs_the_allow_list(
    personas: Personas, client_for, settings
) -> None:
    settings.OUTBOUND_ALLOWED_HOSTS = []
    provider = make_provider(personas.workspace, kind="ollama", name="Fleet")
    response = client_for(personas.editor).post(
        reverse("node_create", args=[provider.pk]),
        {"name": "lan", "base_url": "http://192.168.1.20:11434", "priority": 0, "max_parallel": 4},
    )
    assert response.status_code == 400
    assert "A2A_OUTBOUND_ALLOWED_HOSTS" in response.content.decode()
    assert not OllamaNode.objects.exists()


def test_an_editor_records_the_memory_a_node_gives_models(
    personas: Personas, client_for, llm_server
) -> None:
    provider = make_provider(personas.workspace, kind="ollama", name="Fleet")
    node = OllamaNode.objects.create(provider=provider, name="gpu-1", base_url=llm_server.url)
    url = reverse("node_memory", args=[provider.pk, node.pk])
    editor = client_for(personas.editor)
    response = editor.post(url, {"memory_gb": "24"}, follow=True)
    assert "gives models 24 GB" in response.content.decode()
    node.refresh_from_db()
    assert node.memory_gb == 24
    for bad in ("lots", "0", "1e9"):
        refused = editor.post(url, {"memory_gb": bad})
        assert refused.status_code == 400
    node.refresh_from_db()
    assert node.memory_gb == 24
    editor.post(url, {"memory_gb": ""})
    node.refresh_from_db()
    assert node.memory_gb is None
    assert client_for(personas.viewer).post(url, {"memory_gb": "8"}).status_code == 403
