"""The workflow page's "Use it from code" panel: the workflow's id and an example of each input.
(That the snippets run as pasted is checked against daphne in test_contract.py.)"""

from __future__ import annotations

import html
from typing import Any

from tests.conftest import Personas
from workflows.api_snippets import example_inputs
from workflows.graph.schema import InputField
from workflows.services.workflows import workflow_create, workflow_publish


def test_each_input_gets_an_example_of_its_type() -> None:
    fields = [
        InputField(name="topic", type="text"),
        InputField(name="depth", type="integer"),
        InputField(name="tone", type="choice", choices=["dry", "warm"]),
        InputField(name="strict", type="boolean"),
        InputField(name="words", type="number", default=120),
    ]
    assert example_inputs(fields) == {
        "topic": "…",
        "depth": 1,
        "tone": "dry",
        "strict": True,
        "words": 120,
    }


def test_the_page_shows_snippets_for_this_workflow(personas: Personas, client_for: Any) -> None:
    from tests.api.test_contract import GRAPH

    workflow = workflow_create(
        workspace=personas.workspace, user=personas.owner, name="Digest", graph=GRAPH
    )
    unpublished = client_for(personas.viewer).get(f"/workflows/{workflow.pk}/")
    assert 'data-testid="api-panel"' not in unpublished.content.decode()
    workflow_publish(workflow=workflow, user=personas.owner)
    page = html.unescape(
        client_for(personas.viewer).get(f"/workflows/{workflow.pk}/").content.decode()
    )
    assert f"http://testserver/api/v1/workflows/{workflow.pk}/runs" in page
    assert '{"inputs": {"topic": "…"}}' in page
    assert "Accept: text/event-stream" in page
