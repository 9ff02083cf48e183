"""What an MCP caller sees: the offered workflows of the token's workspaces, their input schemas
as JSON schemas, tool names unique in the listing, and who may start a run."""

from __future__ import annotations

import pytest

from a2a_site.accounts.models import Membership, Role
from a2a_site.api.models import ApiToken
from a2a_site.api.tokens import token_create
from tests.conftest import Personas
from workflows.graph.examples import edge, node
from workflows.mcp.catalog import (
    McpRefused,
    mcp_run_start,
    offered_workflow,
    offered_workflows,
    workflow_input_schema,
)
from workflows.models import Workflow
from workflows.services.workflows import EMPTY_GRAPH, workflow_create, workflow_publish

pytestmark = pytest.mark.django_db


def _offered(personas: Personas, name: str, workspace=None) -> Workflow:
    workspace = workspace or personas.workspace
    owner = personas.owner if workspace == personas.workspace else personas.outsider
    workflow = workflow_create(workspace=workspace, user=owner, name=name, graph=EMPTY_GRAPH)
    workflow_publish(workflow=workflow, user=owner)
    Workflow.objects.filter(pk=workflow.pk).update(mcp_offered=True)
    return workflow


def _token(personas: Personas, user, scope: str, **extra) -> ApiToken:
    return token_create(user=user, name="mcp", scope=scope, **extra).token


def test_the_input_schema_follows_the_workflows_input_fields() -> None:
    graph = {
        "schema_version": 1,
        "nodes": [node("start", "start", 0, 0), node("end", "end", 0, 0)],
        "edges": [edge("start", "end")],
        "variables": [],
        "inputs": {
            "fields": [
                {"name": "topic", "type": "text", "label": "Topic", "help": "What about"},
                {"name": "depth", "type": "integer", "required": False, "default": 2},
                {"name": "tone", "type": "choice", "choices": ["dry", "warm"]},
                {"name": "strict", "type": "boolean"},
                {"name": "extra", "type": "json", "required": False},
            ]
        },
    }

    schema = workflow_input_schema(graph)

    assert schema["required"] == ["topic", "tone"]
    assert schema["properties"]["topic"] == {
        "type": "string",
        "title": "Topic",
        "description": "What about",
    }
    assert schema["properties"]["depth"] == {"type": "integer", "default": 2}
    assert schema["properties"]["tone"]["enum"] == ["dry", "warm"]
    assert schema["properties"]["strict"] == {"type": "boolean"}
    assert schema["properties"]["extra"] == {}


def test_a_token_sees_the_offered_workflows_of_its_workspaces_only(personas: Personas) -> None:
    _offered(personas, "Weekly digest")
    _offered(personas, "Weekly-digest")  # the same tool name: both get told apart
    not_offered = _offered(personas, "Quiet")
    Workflow.objects.filter(pk=not_offered.pk).update(mcp_offered=False)
    _offered(personas, "Theirs", workspace=personas.other_workspace)

    names = [
        item.tool_name for item in offered_workflows(_token(personas, personas.viewer, "read"))
    ]
    outsider = offered_workflows(_token(personas, personas.outsider, "read"))
    # Olivia also views the other workspace: her token limited to “Lab” does not reach it.
    Membership.objects.create(
        workspace=personas.other_workspace, user=personas.owner, role=Role.VIEWER
    )
    everywhere = offered_workflows(_token(personas, personas.owner, "read"))
    limited = offered_workflows(
        _token(personas, personas.owner, "read", workspace=personas.workspace)
    )

    assert len(names) == 2 and len(set(names)) == 2
    assert all(name.startswith("weekly_digest_") for name in names)
    assert [item.tool_name for item in outsider] == ["theirs"]
    assert len(everywhere) == 3
    assert "theirs" not in [item.tool_name for item in limited] and len(limited) == 2


def test_only_a_run_token_of_an_editor_starts_a_run(personas: Personas) -> None:
    _offered(personas, "Digest")
    reader = _token(personas, personas.editor, "read")
    viewer = _token(personas, personas.viewer, "run")
    editor = _token(personas, personas.editor, "run")

    with pytest.raises(McpRefused, match="run scope"):
        mcp_run_start(reader, offered_workflow(reader, "digest"), {})
    with pytest.raises(McpRefused, match="editor role"):
        mcp_run_start(viewer, offered_workflow(viewer, "digest"), {})
    run = mcp_run_start(editor, offered_workflow(editor, "digest"), {})

    assert run.launched_via == "mcp" and run.created_by == personas.editor
