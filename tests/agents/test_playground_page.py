"""The playground page: the models and parameters to try, and switching to another agent."""

from __future__ import annotations

from django.urls import reverse

from tests.agents.factories import make_agent, make_provider
from tests.conftest import Personas


def test_the_page_offers_the_providers_models_with_the_agents_own_chosen(
    personas: Personas, client_for
) -> None:
    provider = make_provider(personas.workspace, name="Demo")
    provider.models_available = ["demo", "demo-large"]
    provider.save()
    agent = make_agent(personas.workspace, provider=provider, temperature=0.4)
    page = client_for(personas.editor).get(reverse("agent_playground", args=[agent.pk]))
    text = page.content.decode()
    assert f'value="{provider.pk}|demo" selected' in text
    assert f'value="{provider.pk}|demo-large"' in text
    assert "(the agent's)" in text
    assert 'id="try-temperature" min="0" max="2" step="0.1" value="0.4"' in text
    assert "New conversation" in text


def test_switching_agent_opens_the_others_playground(personas: Personas, client_for) -> None:
    first = make_agent(personas.workspace, name="Researcher")
    second = make_agent(personas.workspace, name="Writer")
    client = client_for(personas.editor)
    page = client.get(reverse("agent_playground", args=[first.pk])).content.decode()
    assert f'<option value="{second.pk}">Writer</option>' in page
    response = client.get(reverse("agent_playground", args=[first.pk]), {"agent": second.pk})
    assert response.status_code == 302
    assert response["Location"] == reverse("agent_playground", args=[second.pk])


def test_an_agent_of_another_workspace_is_not_a_switch_target(
    personas: Personas, client_for
) -> None:
    mine = make_agent(personas.workspace)
    theirs = make_agent(personas.other_workspace, name="Spy")
    response = client_for(personas.editor).get(
        reverse("agent_playground", args=[mine.pk]), {"agent": theirs.pk}
    )
    assert response.status_code == 404
