"""The builder's endpoints: autosave with validation, property forms, publish, import, templates,
versions and the diff, as the canvas island and the page script call them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from agents.models import Agent
from tests.agents.factories import make_agent, make_provider
from tests.conftest import Personas
from workflows.graph import examples
from workflows.models import Workflow
from workflows.services.transfer import workflow_export
from workflows.services.workflows import EMPTY_GRAPH, workflow_create, workflow_publish

HTMX = {"HX-Request": "true"}
FIXTURES = Path(__file__).parent / "fixtures"


def triggers(response: Any) -> dict[str, Any]:
    return json.loads(response.headers.get("HX-Trigger", "{}"))


def pipeline_workflow(personas: Personas) -> Workflow:
    provider = make_provider(personas.workspace)
    ids = [
        str(make_agent(personas.workspace, name=name, provider=provider).pk)
        for name in ("Researcher", "Analyst", "Writer")
    ]
    return workflow_create(
        workspace=personas.workspace,
        user=personas.owner,
        name="Pipeline",
        graph=examples.research_pipeline(*ids),
    )


def test_a_new_workflow_opens_in_the_builder(personas: Personas, client_for) -> None:
    client = client_for(personas.editor)
    response = client.post(reverse("workflow_new"), {"name": "Triage", "description": "Sorts"})
    workflow = Workflow.objects.get(workspace=personas.workspace, name="Triage")
    assert response.url == reverse("workflow_builder", args=[workflow.pk])

    page = client.get(response.url).content.decode()
    assert '<workflow-builder id="builder" data-input="graph-input">' in page
    assert 'data-builder="graph"' in page and 'data-builder="catalog"' in page
    assert 'hx-history="false"' in page
    # The same name again is explained, not a server error.
    again = client.post(reverse("workflow_new"), {"name": "Triage"})
    assert "Another workflow in this workspace has this name." in again.content.decode()


def test_viewers_get_a_read_only_canvas(personas: Personas, client_for) -> None:
    workflow = pipeline_workflow(personas)
    workflow_publish(workflow=workflow, user=personas.owner)
    page = client_for(personas.viewer).get(reverse("workflow_builder", args=[workflow.pk]))
    html = page.content.decode()
    assert "readonly" in html.split("<workflow-builder", 1)[1].split(">", 1)[0]
    assert 'id="draft-form"' not in html
    assert 'data-version="1"' in html and "data-restore-version" not in html
    editor = client_for(personas.editor).get(reverse("workflow_builder", args=[workflow.pk]))
    assert 'data-restore-version="1"' in editor.content.decode()


def test_model_output_in_a_graph_cannot_break_out_of_the_data_script(
    personas: Personas, client_for
) -> None:
    graph = json.loads(json.dumps(EMPTY_GRAPH))
    graph["nodes"][0]["label"] = "</script><script>alert(1)</script>"
    workflow = workflow_create(
        workspace=personas.workspace, user=personas.owner, name="Odd", graph=graph
    )
    html = client_for(personas.owner).get(reverse("workflow_builder", args=[workflow.pk]))
    assert "<script>alert(1)" not in html.content.decode()


def save(client: Any, workflow: Workflow, graph: Any, **extra: str) -> Any:
    data = {"graph": json.dumps(graph) if not isinstance(graph, str) else graph, **extra}
    return client.post(reverse("workflow_draft_save", args=[workflow.pk]), data, headers=HTMX)


def test_autosave_keeps_an_invalid_draft_and_badges_its_nodes(
    personas: Personas, client_for
) -> None:
    workflow = pipeline_workflow(personas)
    graph = json.loads(json.dumps(workflow.draft))
    graph["edges"] = [edge for edge in graph["edges"] if edge["target"] != "writing"]

    response = save(client_for(personas.editor), workflow, graph, base="")

    assert response.status_code == 200
    workflow.refresh_from_db()
    assert workflow.draft == graph
    issues = triggers(response)["wf:issues"]
    assert not issues["ok"]
    assert "writing" in issues["by_node"]
    assert "wf:saved" in triggers(response)
    assert 'data-focus-node="writing"' in response.content.decode()
    # The checklist names the node as the canvas labels it.
    assert "<strong>Writing</strong> · Node &#x27;writing&#x27;" in response.content.decode()


def test_a_draft_that_is_not_json_is_refused_and_nothing_changes(
    personas: Personas, client_for
) -> None:
    workflow = pipeline_workflow(personas)
    before = workflow.draft
    response = save(client_for(personas.editor), workflow, "{not json")
    assert response.status_code == 400
    workflow.refresh_from_db()
    assert workflow.draft == before


def test_a_stale_tab_cannot_overwrite_a_newer_draft_unless_asked(
    personas: Personas, client_for
) -> None:
    workflow = pipeline_workflow(personas)
    loaded = workflow.draft_updated_at.isoformat()
    client = client_for(personas.editor)
    first = save(client, workflow, {**workflow.draft, "output": "findings"}, base=loaded)
    assert first.status_code == 200

    stale = save(client, workflow, {**workflow.draft, "output": "analysis"}, base=loaded)

    assert stale.status_code == 409
    assert "wf:conflict" in triggers(stale)
    workflow.refresh_from_db()
    assert workflow.draft["output"] == "findings"
    forced = save(
        client, workflow, {**workflow.draft, "output": "analysis"}, base=loaded, force="1"
    )
    assert forced.status_code == 200
    workflow.refresh_from_db()
    assert workflow.draft["output"] == "analysis"
    token = triggers(forced)["wf:saved"]["token"]
    assert save(client, workflow, workflow.draft, base=token).status_code == 200


def test_publish_refuses_an_invalid_graph_and_publishes_a_valid_one(
    personas: Personas, client_for
) -> None:
    workflow = pipeline_workflow(personas)
    client = client_for(personas.editor)
    url = reverse("workflow_publish", args=[workflow.pk])
    broken = {**workflow.draft, "edges": []}

    refused = client.post(url, {"graph": json.dumps(broken), "note": "x"}, headers=HTMX)

    assert refused.status_code == 422
    assert refused.headers["HX-Retarget"] == "#checklist"
    assert "Not published" in refused.content.decode()
    assert workflow.versions.count() == 0
    good = examples.research_pipeline(*examples_agents(workflow))
    published = client.post(url, {"graph": json.dumps(good), "note": "First"}, headers=HTMX)
    assert published.status_code == 200
    assert triggers(published)["wf:published"]["number"] == 1
    assert workflow.versions.get().note == "First"


def examples_agents(workflow: Workflow) -> list[str]:
    return [
        str(Agent.objects.get(workspace=workflow.workspace, name=n).pk)
        for n in ("Researcher", "Analyst", "Writer")
    ]


def node_form(client: Any, workflow: Workflow, node: dict[str, Any], **data: Any) -> Any:
    return client.post(
        reverse("workflow_node_form", args=[workflow.pk]),
        {"node": json.dumps(node), **data},
        headers=HTMX,
    )


def test_a_property_form_applies_to_the_canvas_and_explains_errors(
    personas: Personas, client_for
) -> None:
    workflow = pipeline_workflow(personas)
    client = client_for(personas.editor)
    node = next(n for n in workflow.draft["nodes"] if n["id"] == "analysis")

    shown = node_form(client, workflow, node)
    assert 'name="agent_id"' in shown.content.decode()
    assert "Analyst" in shown.content.decode()

    fields = {
        "apply": "1",
        "label": "Deep analysis",
        "agent_id": node["config"]["agent_id"],
        "input_template": "Analyse {{ findings }}",
        "output_variable": "analysis",
        "error_action": "fail",
        "error_retries": "0",
        "error_backoff_s": "1",
    }
    applied = node_form(client, workflow, node, **fields)
    update = triggers(applied)["wf:node-updated"]
    assert update["id"] == "analysis" and update["label"] == "Deep analysis"
    assert update["config"]["input_template"] == "Analyse {{ findings }}"

    refused = node_form(client, workflow, node, **{**fields, "output_variable": "1 bad"})
    assert refused.status_code == 422
    assert "wf:node-updated" not in triggers(refused)
    assert "should match pattern" in refused.content.decode()


def test_viewers_see_properties_but_cannot_apply_them(personas: Personas, client_for) -> None:
    workflow = pipeline_workflow(personas)
    client = client_for(personas.viewer)
    node = workflow.draft["nodes"][1]
    assert "disabled" in node_form(client, workflow, node).content.decode()
    assert node_form(client, workflow, node, apply="1").status_code == 403


def upload(client: Any, workflow: Workflow, content: bytes, name: str = "flow.json") -> Any:
    return client.post(
        reverse("workflow_import_graph", args=[workflow.pk]),
        {"file": SimpleUploadedFile(name, content, content_type="application/json")},
    )


def test_importing_an_export_creates_its_agents_and_returns_the_graph(
    personas: Personas, client_for
) -> None:
    source = pipeline_workflow(personas)
    document = workflow_export(workflow=source, draft=True)
    target = workflow_create(workspace=personas.other_workspace, user=None, name="Empty")
    make_provider(personas.other_workspace)

    response = upload(client_for(personas.outsider), target, json.dumps(document).encode())

    assert response.status_code == 200
    data = response.json()
    created = {agent["name"] for agent in data["agents"]}
    assert created == {"Researcher", "Analyst", "Writer"}
    ids = {
        str(pk)
        for pk in Agent.objects.filter(workspace=personas.other_workspace).values_list(
            "pk", flat=True
        )
    }
    used = {n["config"]["agent_id"] for n in data["graph"]["nodes"] if n["type"] == "agent"}
    assert used <= ids


def test_importing_an_autogen_team_reports_what_it_could_not_map(
    personas: Personas, client_for
) -> None:
    workflow = workflow_create(workspace=personas.workspace, user=None, name="Empty")
    make_provider(personas.workspace)
    content = (FIXTURES / "autogen_unsupported_parts.json").read_bytes()

    data = upload(client_for(personas.editor), workflow, content).json()

    assert any(node["type"] == "group_chat" for node in data["graph"]["nodes"])
    assert data["report"], "unsupported parts are listed"


def test_an_unreadable_import_says_why(personas: Personas, client_for) -> None:
    workflow = workflow_create(workspace=personas.workspace, user=None, name="Empty")
    client = client_for(personas.editor)
    assert "not valid JSON" in upload(client, workflow, b"{oops").json()["error"]
    assert "neither" in upload(client, workflow, b'{"hello": 1}').json()["error"]
    assert Agent.objects.filter(workspace=personas.workspace).count() == 0


def test_a_template_comes_with_its_agents(personas: Personas, client_for) -> None:
    workflow = workflow_create(workspace=personas.workspace, user=None, name="Empty")
    client = client_for(personas.editor)
    url = reverse("workflow_template_graph", args=[workflow.pk])
    assert "provider" in client.post(url, {"template": "research_pipeline"}).json()["error"]
    make_provider(personas.workspace)

    data = client.post(url, {"template": "research_pipeline"}).json()

    agent_ids = {agent["id"] for agent in data["agents"]}
    used = {n["config"]["agent_id"] for n in data["graph"]["nodes"] if n["type"] == "agent"}
    assert used and used <= agent_ids


def test_versions_are_served_and_compared(personas: Personas, client_for) -> None:
    workflow = pipeline_workflow(personas)
    workflow_publish(workflow=workflow, user=personas.owner, note="v1")
    client = client_for(personas.viewer)
    served = client.get(reverse("workflow_version_json", args=[workflow.pk, 1])).json()
    assert served["number"] == 1 and served["graph"]["nodes"]
    assert client.get(reverse("workflow_version_json", args=[workflow.pk, 9])).status_code == 404

    draft = json.loads(json.dumps(workflow.draft))
    draft["nodes"] = [n for n in draft["nodes"] if n["id"] != "writing"]
    Workflow.objects.filter(pk=workflow.pk).update(draft=draft)
    page = client.get(reverse("workflow_diff", args=[workflow.pk]), {"from": "1", "to": "draft"})

    html = page.content.decode()
    assert 'data-change="node-removed"' in html and "writing" in html
    # Defaults filled in at publishing are not changes anybody made.
    assert 'data-change="section"' not in html
    assert 'data-builder="marks"' in html


def test_an_agent_made_from_the_palette_is_announced_to_the_canvas(
    personas: Personas, client_for
) -> None:
    workflow = workflow_create(workspace=personas.workspace, user=None, name="Empty")
    provider = make_provider(personas.workspace)
    client = client_for(personas.editor)
    url = reverse("workflow_agent_new", args=[workflow.pk])
    assert 'name="provider"' in client.get(url, headers=HTMX).content.decode()
    refused = client.post(url, {"name": "", "provider": str(provider.pk), "model": "demo"})
    assert refused.status_code == 422

    response = client.post(
        url, {"name": "Critic", "role": "a critic", "provider": str(provider.pk), "model": "demo"}
    )

    agent = Agent.objects.get(workspace=personas.workspace, name="Critic")
    assert triggers(response)["wf:agent-created"]["agent"]["id"] == str(agent.pk)


def test_saving_the_same_graph_again_from_a_stale_tab_is_not_a_conflict(
    personas: Personas, client_for
) -> None:
    workflow = pipeline_workflow(personas)
    loaded = workflow.draft_updated_at.isoformat()
    client = client_for(personas.editor)
    graph = {**workflow.draft, "output": "findings"}
    assert save(client, workflow, graph, base=loaded).status_code == 200

    again = save(client, workflow, graph, base=loaded)

    assert again.status_code == 200
    workflow.refresh_from_db()
    assert triggers(again)["wf:saved"]["token"] == workflow.draft_updated_at.isoformat()


def interface_form(client: Any, workflow: Workflow, graph: Any, **data: Any) -> Any:
    return client.post(
        reverse("workflow_interface_form", args=[workflow.pk]),
        {"graph": json.dumps(graph), **data},
        headers=HTMX,
    )


def interface_rows(inputs: list[dict[str, Any]], variables: list[dict[str, Any]]) -> dict[str, Any]:
    """The editor's formsets as a browser posts them."""
    data: dict[str, Any] = {
        "apply": "1",
        "input-TOTAL_FORMS": str(len(inputs)),
        "input-INITIAL_FORMS": "0",
        "variable-TOTAL_FORMS": str(len(variables)),
        "variable-INITIAL_FORMS": "0",
    }
    for prefix, rows in (("input", inputs), ("variable", variables)):
        for index, row in enumerate(rows):
            for key, value in row.items():
                if value is True:
                    value = "on"
                if value is not False:
                    data[f"{prefix}-{index}-{key}"] = value
    return data


def test_the_inputs_editor_defines_a_topic_and_the_run_form_follows(
    personas: Personas, client_for
) -> None:
    client = client_for(personas.editor)
    client.post(reverse("workflow_new"), {"name": "Explainer"})
    workflow = Workflow.objects.get(name="Explainer")

    shown = interface_form(client, workflow, workflow.draft).content.decode()
    assert 'value="task"' in shown and "New input" in shown

    rows = interface_rows(
        [
            {
                "original": "task",
                "name": "topic",
                "type": "string",
                "label": "Topic",
                "help": "What to explain.",
                "required": True,
            },
            {
                "name": "audience",
                "type": "choice",
                "choices": "children, experts",
                "default": "experts",
                "required": True,
            },
            {"name": "depth", "type": "integer", "default": "2", "required": False},
        ],
        [{"name": "task", "type": "string", "reducer": "replace"}],
    )
    response = interface_form(client, workflow, workflow.draft, **rows)
    assert response.status_code == 200, response.content.decode()
    update = triggers(response)["wf:interface-updated"]
    assert [f["name"] for f in update["inputs"]["fields"]] == ["topic", "audience", "depth"]
    assert update["configs"]["start"]["input_mapping"] == {
        "topic": "task",
        "audience": "audience",
        "depth": "depth",
    }

    # The canvas applies it and autosaves; then the draft is published and run.
    graph = {**workflow.draft, "inputs": update["inputs"], "variables": update["variables"]}
    graph["nodes"] = [
        {**n, "config": update["configs"].get(n["id"], n.get("config", {}))} for n in graph["nodes"]
    ]
    graph["edges"] = [{"id": "start-end", "source": "start", "target": "end"}]
    workflow_create_draft = client.post(
        reverse("workflow_draft_save", args=[workflow.pk]), {"graph": json.dumps(graph)}
    )
    assert workflow_create_draft.status_code == 200
    workflow.refresh_from_db()
    workflow_publish(workflow=workflow, user=personas.editor)

    form = client.get(reverse("workflow_run", args=[workflow.pk]), headers=HTMX).content.decode()
    assert 'name="topic"' in form and 'name="task"' not in form
    assert '<select name="audience"' in form and 'value="experts" selected' in form
    assert 'name="depth"' in form and 'value="2"' in form

    schema = client.get(reverse("workflow_run_api", args=[workflow.pk])).json()
    assert [f["name"] for f in schema["inputs"]] == ["topic", "audience", "depth"]
    refused = client.post(
        reverse("workflow_run_api", args=[workflow.pk]),
        json.dumps({"inputs": {"audience": "pirates"}}),
        content_type="application/json",
    )
    assert refused.status_code == 400
    assert set(refused.json()["fields"]) == {"topic", "audience"}


def test_the_inputs_editor_names_the_bad_field(personas: Personas, client_for) -> None:
    client = client_for(personas.editor)
    client.post(reverse("workflow_new"), {"name": "Explainer"})
    workflow = Workflow.objects.get(name="Explainer")

    rows = interface_rows(
        [{"name": "count", "type": "integer", "default": "many", "required": True}],
        [{"name": "notes", "type": "string", "reducer": "append"}],
    )
    response = interface_form(client, workflow, workflow.draft, **rows)

    assert response.status_code == 422
    page = response.content.decode()
    assert "default does not fit the field: Enter a whole number." in page
    assert "reducer &#x27;append&#x27; needs type &#x27;array&#x27;" in page
    assert "wf:interface-updated" not in response.headers.get("HX-Trigger", "")


def test_a_row_with_a_label_but_no_name_is_not_dropped(personas: Personas, client_for) -> None:
    client = client_for(personas.editor)
    client.post(reverse("workflow_new"), {"name": "Explainer"})
    workflow = Workflow.objects.get(name="Explainer")

    rows = interface_rows([{"label": "Topic", "type": "string", "required": True}], [])
    response = interface_form(client, workflow, workflow.draft, **rows)

    assert response.status_code == 422
    assert "starting with a letter or underscore" in response.content.decode()


def settings_form(client: Any, workflow: Workflow, graph: Any, **data: Any) -> Any:
    return client.post(
        reverse("workflow_settings_form", args=[workflow.pk]),
        {"graph": json.dumps(graph), **data},
        headers=HTMX,
    )


SETTINGS = {
    "apply": "1",
    "priority": "high",
    "max_steps": "50",
    "timeout_s": "120",
    "token_budget": "",
    "cost_budget_usd": "0.25",
    "budget_action": "pause",
}


def test_the_run_settings_editor_hands_the_canvas_the_graph_with_them(
    personas: Personas, client_for
) -> None:
    workflow = pipeline_workflow(personas)
    client = client_for(personas.editor)
    shown = settings_form(client, workflow, workflow.draft).content.decode()
    assert "Run settings" in shown and 'value="normal" selected' in shown

    applied = settings_form(client, workflow, workflow.draft, **SETTINGS)

    assert applied.status_code == 200, applied.content.decode()
    graph = triggers(applied)["wf:set-graph"]["graph"]
    assert graph["settings"] == {
        "priority": "high",
        "max_steps": 50,
        "timeout_s": 120,
        "token_budget": None,
        "cost_budget_usd": 0.25,
        "budget_action": "pause",
    }
    assert graph["nodes"] == workflow.draft["nodes"], "only the settings change"
    assert "Applied to the draft" in applied.content.decode()
    workflow.refresh_from_db()
    assert "priority" not in (workflow.draft.get("settings") or {}), "the canvas saves it"


def test_run_settings_out_of_range_are_named_and_nothing_applied(
    personas: Personas, client_for
) -> None:
    workflow = pipeline_workflow(personas)
    client = client_for(personas.editor)
    refused = settings_form(
        client, workflow, workflow.draft, **{**SETTINGS, "priority": "urgent", "max_steps": "0"}
    )
    assert refused.status_code == 422
    assert "wf:set-graph" not in refused.headers.get("HX-Trigger", "")
    text = refused.content.decode()
    assert "Select a valid choice" in text and "greater than or equal to 1" in text
    viewer = settings_form(client_for(personas.viewer), workflow, workflow.draft, **SETTINGS)
    assert viewer.status_code == 403
    malformed = client.post(
        reverse("workflow_settings_form", args=[workflow.pk]), {"graph": "{"}, headers=HTMX
    )
    assert malformed.status_code == 400
