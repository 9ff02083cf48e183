"""Agents: validated configuration, a new version per save, duplicate, delete, search."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from agents.config import AgentConfig, agent_config_load
from agents.models import Agent, AgentVersion
from agents.services.agents import agent_update
from agents.usage import register_usage_finder
from tests.agents.factories import make_agent, make_provider
from tests.conftest import Personas

TOOLS = ["current_time", "calculator", "http_get", "get_variable"]


def _form(provider_id: str, **extra: str) -> dict[str, str]:
    return {
        "name": "Analyst",
        "description": "Turns findings into insight",
        "role": "a sharp analyst",
        "provider": provider_id,
        "model": "demo",
        "max_tool_iterations": "3",
        "timeout_s": "60",
        "tools": ["calculator"],
        **extra,
    }


def test_an_editor_creates_an_agent_as_version_one(personas: Personas, client_for) -> None:
    provider = make_provider(personas.workspace)
    response = client_for(personas.editor).post(reverse("agent_create"), _form(str(provider.pk)))
    agent = Agent.objects.get(name="Analyst")
    assert response["Location"] == reverse("agent_detail", args=[agent.pk])
    version = agent.versions.get()
    assert version.number == 1 and agent.latest_version == 1
    config = agent_config_load(version.config)
    assert config.tools == ["calculator"]
    assert config.system_prompt(name="Analyst") == "You are Analyst, a sharp analyst."


def test_every_save_is_a_new_version(personas: Personas) -> None:
    agent = make_agent(personas.workspace)
    latest = agent.versions.get().config
    agent_update(
        agent=agent,
        user=personas.editor,
        name=agent.name,
        description="now with a goal",
        config={**latest, "goal": "find sources"},
        known_tools=TOOLS,
        note="add goal",
    )
    assert list(agent.versions.values_list("number", "note")) == [(2, "add goal"), (1, "Created")]
    assert AgentVersion.objects.get(agent=agent, number=1).config["goal"] == ""


def test_invalid_configuration_is_explained_per_field(personas: Personas, client_for) -> None:
    provider = make_provider(personas.workspace)
    response = client_for(personas.editor).post(
        reverse("agent_create"),
        _form(str(provider.pk), role="", temperature="3", response_schema="{not json"),
    )
    content = response.content.decode()
    assert response.status_code == 200
    assert "Ensure this value is less than or equal to 2" in content
    assert "The schema is not valid JSON" in content
    assert not Agent.objects.exists()


def test_instructions_are_required(personas: Personas) -> None:
    provider = make_provider(personas.workspace)
    with pytest.raises(ValidationError, match="give the agent a role or a system message"):
        make_agent(personas.workspace, provider=provider, role="")


def test_another_workspaces_provider_cannot_be_used(personas: Personas) -> None:
    foreign = make_provider(personas.other_workspace)
    with pytest.raises(ValidationError, match="Choose a provider of this workspace"):
        make_agent(personas.workspace, provider=foreign)


def test_duplicate_copies_the_latest_version(personas: Personas, client_for) -> None:
    agent = make_agent(personas.workspace, tools=["calculator"])
    client_for(personas.editor).post(reverse("agent_duplicate", args=[agent.pk]))
    copy = Agent.objects.get(name="Researcher (copy)")
    assert copy.versions.get().config["tools"] == ["calculator"]
    assert copy.versions.get().note == "Copied from Researcher v1"


def test_delete_is_refused_while_a_published_workflow_uses_the_agent(
    personas: Personas, client_for
) -> None:
    agent = make_agent(personas.workspace)

    def finder(candidate: Agent) -> list[str]:
        return ["Research pipeline"] if candidate.pk == agent.pk else []

    register_usage_finder(finder)
    try:
        response = client_for(personas.editor).post(
            reverse("agent_delete", args=[agent.pk]), follow=True
        )
    finally:
        from agents import usage

        usage._finders.remove(finder)
    assert "Published workflows use this agent: Research pipeline" in response.content.decode()
    assert Agent.objects.filter(pk=agent.pk).exists()


def test_search_narrows_the_list_with_htmx(personas: Personas, client_for) -> None:
    make_agent(personas.workspace, name="Researcher")
    make_agent(personas.workspace, name="Writer")
    response = client_for(personas.viewer).get(
        reverse("agent_list"),
        {"q": "writ"},
        headers={"HX-Request": "true", "HX-Target": "agent-rows"},
    )
    content = response.content.decode()
    assert "<html" not in content
    assert "Writer" in content and "Researcher" not in content


def test_agent_list_costs_a_fixed_number_of_queries(
    personas: Personas, client_for, django_assert_max_num_queries
) -> None:
    for index in range(8):
        make_agent(personas.workspace, name=f"Agent {index}")
    client = client_for(personas.viewer)
    with django_assert_max_num_queries(12):
        client.get(reverse("agent_list"))


def test_config_rejects_unknown_fields_and_newer_schemas() -> None:
    with pytest.raises(ValueError):
        AgentConfig.model_validate(
            {"role": "x", "model": {"provider_id": "p", "model": "m"}, "x": 1}
        )
    with pytest.raises(ValueError, match="newer A2A Studio"):
        agent_config_load(
            {"schema_version": 99, "role": "x", "model": {"provider_id": "p", "model": "m"}}
        )
