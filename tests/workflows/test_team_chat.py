"""Chatting with a whole workflow: each message starts a run with the conversation as input."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from tests.conftest import Personas
from tests.workflows.conftest import finished
from workflows.models import Run, RunStatus
from workflows.services.team_chat import (
    ChatMessage,
    chat_input_field,
    conversation_text,
)
from workflows.services.workflows import EMPTY_GRAPH, workflow_create, workflow_publish

pytestmark = pytest.mark.django_db(transaction=True)


def _send(client, workflow, messages):
    return client.post(
        reverse("workflow_playground_send", args=[workflow.pk]),
        json.dumps({"messages": messages}),
        content_type="application/json",
    )


def test_each_message_starts_a_run_and_the_conversation_goes_on(
    personas: Personas, pipeline, client_for, executor, llm_server
) -> None:
    client = client_for(personas.editor)
    page = client.get(reverse("workflow_playground", args=[pipeline.pk])).content.decode()
    assert "Team chat · Research pipeline" in page and "version 1" in page

    first = _send(client, pipeline, [{"role": "user", "content": "bees"}])
    assert first.status_code == 201
    run = Run.objects.get()
    assert run.inputs == {"topic": "bees"} and run.created_by == personas.editor
    turn = first.content.decode()
    assert f'data-run-id="{run.pk}"' in turn and reverse("run_detail", args=[run.pk]) in turn
    assert finished(run).status == RunStatus.SUCCEEDED

    second = _send(
        client,
        pipeline,
        [
            {"role": "user", "content": "bees"},
            {"role": "assistant", "name": "Writer", "content": "Bees pollinate."},
            {"role": "user", "content": "And <b>wasps</b>?"},
        ],
    )
    assert second.status_code == 201
    assert "And &lt;b&gt;wasps&lt;/b&gt;?" in second.content.decode(), "escaped, never raw"
    latest = Run.objects.latest("created_at")
    topic = latest.inputs["topic"]
    assert "You: bees" in topic and "Writer: Bees pollinate." in topic
    assert topic.endswith("And <b>wasps</b>?")
    assert finished(latest).status == RunStatus.SUCCEEDED
    sent = json.dumps([r["body"] for r in llm_server.requests])
    assert "Writer: Bees pollinate." in sent, "the team saw the conversation"


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        ([], "at least one message"),
        ([{"role": "assistant", "content": "hi"}], "must be yours"),
        ([{"role": "system", "content": "hi"}], "role user or assistant"),
        ([{"role": "user", "content": "   "}], "cannot be empty"),
    ],
)
def test_a_bad_conversation_is_refused_and_starts_nothing(
    personas: Personas, pipeline, client_for, messages, expected
) -> None:
    response = _send(client_for(personas.editor), pipeline, messages)
    assert response.status_code == 400 and expected in response.json()["error"]
    assert not Run.objects.exists()


def test_a_workflow_without_a_text_input_says_so(personas: Personas, client_for) -> None:
    workflow = workflow_create(
        workspace=personas.workspace, user=personas.owner, name="Bare", graph=EMPTY_GRAPH
    )
    client = client_for(personas.editor)
    unpublished = _send(client, workflow, [{"role": "user", "content": "hi"}])
    assert "Publish the workflow" in unpublished.json()["error"]
    workflow_publish(workflow=workflow, user=personas.owner)
    page = client.get(reverse("workflow_playground", args=[workflow.pk])).content.decode()
    assert "no text input" in page and 'id="team-form"' not in page
    response = _send(client, workflow, [{"role": "user", "content": "hi"}])
    assert response.status_code == 400 and "no text input" in response.json()["error"]
    assert not Run.objects.exists()


def test_the_workflow_page_links_the_team_chat_for_editors(
    personas: Personas, pipeline, client_for
) -> None:
    url = reverse("workflow_playground", args=[pipeline.pk])
    detail = reverse("workflow_detail", args=[pipeline.pk])
    assert url in client_for(personas.editor).get(detail).content.decode()
    assert url not in client_for(personas.viewer).get(detail).content.decode()


def test_the_conversation_is_composed_as_text_and_the_oldest_turns_go_first() -> None:
    assert conversation_text([ChatMessage("user", "hello")]) == "hello"
    long = [ChatMessage("user", "x" * 20_000), ChatMessage("assistant", "y" * 20_000, "Writer")]
    text = conversation_text([*long * 3, ChatMessage("user", "last")])
    assert text.startswith("The conversation so far") and text.endswith("last")
    assert len(text) < 70_000


def test_the_chat_input_is_the_first_required_text_input() -> None:
    from workflows.graph.schema import InputSchema

    schema = InputSchema.model_validate(
        {
            "fields": [
                {"name": "count", "type": "integer"},
                {"name": "note", "type": "text", "required": False},
                {"name": "topic", "type": "string"},
            ]
        }
    )
    field = chat_input_field(schema)
    assert field is not None and field.name == "topic"
