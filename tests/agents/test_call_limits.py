"""A model call's three time limits: set on the provider, overridden per agent, shown on both."""

from __future__ import annotations

import re

from django.urls import reverse

from agents.config import agent_config_load
from agents.models import Agent
from agents.services.routing import route_plan_for
from tests.agents.factories import make_agent, make_provider
from tests.conftest import Personas


def test_a_provider_sets_the_limits_of_its_calls_and_its_page_shows_them(
    personas: Personas, client_for
) -> None:
    provider = make_provider(personas.workspace)
    client = client_for(personas.editor)
    form = client.get(reverse("provider_edit", args=[provider.pk])).content.decode()
    for text in ("First byte within", "Between chunks within", "Whole call within"):
        assert text in form
    assert "A provider that hangs fails here." in form

    client.post(
        reverse("provider_edit", args=[provider.pk]),
        {
            "name": "Demo",
            "timeout_s": "90",
            "first_byte_timeout_s": "12",
            "chunk_timeout_s": "7",
        },
    )

    provider.refresh_from_db()
    assert (provider.timeout_s, provider.first_byte_timeout_s, provider.chunk_timeout_s) == (
        90,
        12,
        7,
    )
    page = client.get(reverse("provider_detail", args=[provider.pk])).content.decode()
    assert "first byte within 12 s · between chunks within 7 s · whole call within 90 s" in page
    (dep,) = route_plan_for(
        agent_config_load(make_agent(personas.workspace, provider=provider).versions.get().config),
        workspace_id=personas.workspace.pk,
    ).primary.deployments
    assert (dep.timeout_s, dep.first_byte_timeout_s, dep.chunk_timeout_s) == (90, 12, 7)


def test_an_agent_overrides_the_limits_it_sets_and_keeps_the_others(
    personas: Personas, client_for
) -> None:
    provider = make_provider(personas.workspace)
    client = client_for(personas.editor)
    form = client.get(reverse("agent_create")).content.decode()
    assert "Model call time limits" in form and "Empty: the provider" in form
    client.post(
        reverse("agent_create"),
        {
            "name": "Impatient",
            "role": "a quick analyst",
            "provider": str(provider.pk),
            "model": "demo",
            "max_tool_iterations": "3",
            "timeout_s": "60",
            "first_byte_timeout_s": "5",
        },
    )
    agent = Agent.objects.get(name="Impatient")
    config = agent_config_load(agent.versions.get().config)
    assert (config.first_byte_timeout_s, config.chunk_timeout_s, config.call_timeout_s) == (
        5,
        None,
        None,
    )
    (dep,) = route_plan_for(config, workspace_id=personas.workspace.pk).primary.deployments
    assert (dep.first_byte_timeout_s, dep.chunk_timeout_s, dep.timeout_s) == (5, 30, 60)
    page = client.get(reverse("agent_detail", args=[agent.pk])).content.decode()
    assert "60 s per turn · first byte within 5 s" in page


def test_an_agent_set_to_always_stream_keeps_it_in_its_config_and_page(
    personas: Personas, client_for
) -> None:
    provider = make_provider(personas.workspace)
    client = client_for(personas.editor)
    assert "Always stream answers" in client.get(reverse("agent_create")).content.decode()
    fields = {
        "role": "a storyteller",
        "provider": str(provider.pk),
        "model": "demo",
        "max_tool_iterations": "3",
        "timeout_s": "60",
    }
    client.post(reverse("agent_create"), {"name": "Loud", "stream": "on", **fields})
    client.post(reverse("agent_create"), {"name": "Quiet", **fields})

    loud, quiet = (Agent.objects.get(name=name) for name in ("Loud", "Quiet"))
    assert agent_config_load(loud.versions.get().config).stream is True
    assert agent_config_load(quiet.versions.get().config).stream is False
    page = client.get(reverse("agent_detail", args=[loud.pk])).content.decode()
    assert "always streams" in page
    edit = client.get(reverse("agent_edit", args=[loud.pk])).content.decode()
    assert re.search(r'<input type="checkbox" name="stream"[^>]* checked', edit)
