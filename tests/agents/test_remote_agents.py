"""The remote agents page and the builder's card of a remote agent step, against a real A2A
agent process (`tests/support/a2a_peer.py`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.urls import reverse

from agents.crypto import credential_decrypt
from agents.models import RemoteAgent
from tests.conftest import Personas
from tests.support.processes import A2APeer
from workflows.services.workflows import EMPTY_GRAPH, workflow_create

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "desk-token-5d2e8b71"


@pytest.fixture
def peer(settings: Any) -> Iterator[A2APeer]:
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    server = A2APeer()
    yield server
    server.stop()


def test_an_editor_saves_a_remote_agent_whose_token_is_never_shown_again(
    personas: Personas, peer: A2APeer, client_for: Any
) -> None:
    client = client_for(personas.editor)
    saved = client.post(
        reverse("remote_agent_list"),
        {"name": "Travel desk", "url": peer.url + "/", "credential": TOKEN},
    )
    assert saved.status_code == 302
    agent = RemoteAgent.objects.get(workspace=personas.workspace)
    assert agent.url == peer.url
    assert credential_decrypt(agent.credential_ciphertext) == TOKEN
    assert agent.credential_origin == peer.url
    assert agent.card["name"] == "Travel desk"
    assert [skill["id"] for skill in agent.card["skills"]] == ["book", "echo"]

    listing = client.get(reverse("remote_agent_list")).content.decode()
    edit = client.get(reverse("remote_agent_edit", args=[agent.pk])).content.decode()
    for page in (listing, edit):
        assert TOKEN not in page
        assert "••••8b71" in page
    assert "Book a trip" in edit and "text/plain" in edit

    # A blank token keeps the stored one; a new origin drops it.
    client.post(
        reverse("remote_agent_edit", args=[agent.pk]),
        {"name": "Desk", "url": peer.url, "credential": ""},
    )
    agent.refresh_from_db()
    assert agent.name == "Desk" and credential_decrypt(agent.credential_ciphertext) == TOKEN
    client.post(
        reverse("remote_agent_edit", args=[agent.pk]),
        {"name": "Desk", "url": "http://127.0.0.1:1", "credential": ""},
    )
    agent.refresh_from_db()
    assert not agent.has_credential, "a token is not kept for another origin"
    assert "unreachable" in agent.card_error


def test_the_url_policy_refuses_a_private_agent_on_the_form(
    personas: Personas, client_for: Any, settings: Any
) -> None:
    settings.OUTBOUND_ALLOWED_HOSTS = []
    refused = client_for(personas.editor).post(
        reverse("remote_agent_list"), {"name": "Inside", "url": "http://10.1.2.3:8000"}
    )
    assert refused.status_code == 422
    assert "private address" in refused.content.decode()
    assert not RemoteAgent.objects.exists()


def test_viewers_see_but_cannot_add(personas: Personas, client_for: Any) -> None:
    client = client_for(personas.viewer)
    page = client.get(reverse("remote_agent_list"))
    assert page.status_code == 200 and "Ask an editor" in page.content.decode()
    posted = client.post(reverse("remote_agent_list"), {"name": "x", "url": "https://a.example"})
    assert posted.status_code == 403
    assert not RemoteAgent.objects.exists()


def test_the_card_endpoint_gives_the_card_or_a_problem(
    personas: Personas, peer: A2APeer, client_for: Any, settings: Any
) -> None:
    client = client_for(personas.viewer)
    card = client.get(reverse("remote_agent_card"), {"url": peer.url}).json()
    assert card["name"] == "Travel desk" and card["streaming"] is True
    assert card["endpoint"] == f"{peer.url}/rpc/"
    settings.OUTBOUND_ALLOWED_HOSTS = []
    refused = client.get(reverse("remote_agent_card"), {"url": peer.url})
    assert refused.status_code == 422
    assert refused["Content-Type"] == "application/problem+json"
    assert "loopback" in refused.json()["detail"]
    missing = client.get(reverse("remote_agent_card"), {"url": peer.url + "/nothing"})
    assert missing.status_code == 422


def test_the_builder_form_of_a_remote_step_shows_the_card_and_offers_its_skills(
    personas: Personas, peer: A2APeer, client_for: Any
) -> None:
    RemoteAgent.objects.create(workspace=personas.workspace, name="Saved desk", url=peer.url)
    workflow = workflow_create(
        workspace=personas.workspace, user=personas.owner, name="Trips", graph=EMPTY_GRAPH
    )
    node = {"id": "desk", "type": "remote_agent", "label": "Desk", "config": {"url": ""}}
    client = client_for(personas.editor)
    url = reverse("workflow_node_form", args=[workflow.pk])
    applied = client.post(
        url,
        {
            "node": json.dumps(node),
            "apply": "1",
            "label": "Desk",
            "url": peer.url,
            "skill_id": "book",
            "input_template": "{{ input }}",
            "on_input_required": "ask_person",
            "max_input_rounds": "3",
            "error_action": "fail",
            "error_retries": "0",
            "error_backoff_s": "1",
        },
        headers={"HX-Request": "true"},
    )
    html = applied.content.decode()
    assert applied.status_code == 200, html
    assert 'data-testid="remote-card"' in html and "Travel desk" in html
    assert '<option value="book" selected>Book a trip</option>' in html
    assert "Saved desk" in html
    update = json.loads(applied["HX-Trigger"])["wf:node-updated"]
    assert update["config"] == {"url": peer.url, "skill_id": "book"}
