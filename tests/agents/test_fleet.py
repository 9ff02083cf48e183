"""An Ollama fleet in use: routing across nodes, failover, per-model strategy, pulling a model."""

from __future__ import annotations

import asyncio

import pytest
from django.urls import reverse

from agents.config import agent_config_load
from agents.fakellm import start_in_thread
from agents.ledger import breaker_record
from agents.llm import Gateway, InMemoryLedger, LLMRequest
from agents.models import OllamaNode
from agents.services.nodes import fleet_probe
from agents.services.pull import node_pull_run, pull_progress
from agents.services.routing import provider_deployments, route_plan_for
from tests.agents.factories import make_agent, make_provider
from tests.conftest import Personas
from tests.support.waiting import wait_for


def _fleet(personas: Personas, *urls: str, **extra):
    provider = make_provider(personas.workspace, kind="ollama", name="Fleet", **extra)
    for index, url in enumerate(urls):
        OllamaNode.objects.create(provider=provider, name=f"node-{index}", base_url=url)
    return provider


def _ask(plan) -> str:
    async def call() -> str:
        gateway = Gateway(ledger=InMemoryLedger(), max_retries=0)
        try:
            result = await gateway.complete(
                LLMRequest([{"role": "user", "content": "hi"}], stream=False), plan
            )
        finally:
            await gateway.aclose()
        return result.deployment_id

    return asyncio.run(call())


def test_a_node_that_goes_down_stops_receiving_traffic_after_one_probe(
    personas: Personas, settings
) -> None:
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    with start_in_thread(name="a") as first, start_in_thread(name="b") as second:
        provider = _fleet(personas, first.url, second.url, routing_strategy="round_robin")
        fleet_probe()
        agent = make_agent(personas.workspace, provider=provider)
        config = agent_config_load(agent.versions.get().config)
        config.model.model = "llama3.2"
        plan = route_plan_for(config, workspace_id=personas.workspace.id)
        assert len(plan.primary.deployments) == 2
        second.stop()
        fleet_probe()
        plan = route_plan_for(config, workspace_id=personas.workspace.id)
        (only,) = plan.primary.deployments
        assert only.base_url == f"{first.url}/v1"
        assert _ask(plan) == only.id
        assert len(first.requests) >= 1


def test_nodes_without_the_model_are_not_used(personas: Personas, settings) -> None:
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    with start_in_thread(name="a") as first, start_in_thread(name="b") as second:
        provider = _fleet(personas, first.url, second.url)
        fleet_probe()
        OllamaNode.objects.filter(base_url=second.url).update(available_models=["phi3:latest"])
        route = provider_deployments(provider, "llama3.2")
        assert [d.base_url for d in route.deployments] == [f"{first.url}/v1"]


def test_a_model_can_have_its_own_routing_strategy(personas: Personas, settings) -> None:
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    provider = _fleet(
        personas,
        "http://127.0.0.1:1",
        routing_strategy="least_busy",
        model_routing={"llama3.2": "lowest_latency"},
    )
    assert provider_deployments(provider, "llama3.2").strategy == "lowest_latency"
    assert provider_deployments(provider, "phi3").strategy == "least_busy"


def test_per_model_routing_is_edited_as_lines_and_explained(personas: Personas, client_for) -> None:
    provider = _fleet(personas)
    url = reverse("provider_edit", args=[provider.pk])
    base = {"name": "Fleet", "timeout_s": 60, "routing_strategy": "priority"}
    bad = client_for(personas.editor).post(url, {**base, "model_routing": "llama3.2 fastest"})
    assert "Line 1: write “model = strategy”" in bad.content.decode()
    client_for(personas.editor).post(url, {**base, "model_routing": "llama3.2 = round_robin"})
    provider.refresh_from_db()
    assert provider.model_routing == {"llama3.2": "round_robin"}


def test_breaker_states_show_on_the_provider_page(personas: Personas, client_for) -> None:
    provider = _fleet(personas, "http://127.0.0.1:1")
    node = provider.nodes.get()
    breaker_record(f"{provider.pk}:{node.pk}:llama3.2", "open")
    page = client_for(personas.viewer).get(reverse("provider_detail", args=[provider.pk]))
    content = page.content.decode()
    assert "Circuit breakers" in content
    assert "node-0 / llama3.2" in content and "badge-danger" in content


def test_pulling_a_model_reports_progress_and_refreshes_the_node(
    personas: Personas, llm_server
) -> None:
    provider = _fleet(personas, llm_server.url)
    node = provider.nodes.get()
    progress = node_pull_run(node.pk, "qwen2.5:7b")
    assert progress.done and not progress.error and progress.status == "success"
    assert progress.percent == 100
    node.refresh_from_db()
    assert "qwen2.5:7b" in node.available_models
    assert pull_progress(node.pk, "qwen2.5:7b") == progress


@pytest.mark.django_db(transaction=True)
def test_the_pull_button_starts_a_download_and_polls_it(
    personas: Personas, client_for, llm_server, settings
) -> None:
    settings.EXECUTION_MODE = "embedded"  # the download runs on a thread of this process
    provider = _fleet(personas, llm_server.url)
    node = provider.nodes.get()
    client = client_for(personas.editor)
    response = client.post(
        reverse("node_pull", args=[provider.pk, node.pk]),
        {"model": "mistral"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert 'hx-trigger="load delay:700ms"' in response.content.decode()
    done = wait_for(
        lambda: (p := pull_progress(node.pk, "mistral")) and p.done and p,
        timeout=10,
        what="the pull to finish",
    )
    assert done.error == ""
    status = client.get(
        reverse("node_pull_status", args=[provider.pk, node.pk]), {"model": "mistral"}
    )
    assert "is on node-0" in status.content.decode()


def test_a_bad_model_name_is_refused(personas: Personas, client_for, llm_server) -> None:
    provider = _fleet(personas, llm_server.url)
    node = provider.nodes.get()
    response = client_for(personas.editor).post(
        reverse("node_pull", args=[provider.pk, node.pk]),
        {"model": "rm -rf /"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 400
    assert "Enter a model name" in response.content.decode()


def test_pull_progress_with_the_cache_away_is_said_not_a_500(
    personas: Personas, client_for, llm_server, settings
) -> None:
    # A cache on a port where nothing listens: Redis stopped.
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    provider = _fleet(personas, llm_server.url)
    node = provider.nodes.get()

    status = client_for(personas.editor).get(
        reverse("node_pull_status", args=[provider.pk, node.pk]), {"model": "mistral"}
    )

    assert status.status_code == 200
    assert "the cache does not answer" in status.content.decode()
