from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from agents.models import Agent, AgentVersion, Provider
from tests.agents.factories import make_provider
from tests.conftest import Personas
from workflows.models import Workflow
from workflows.services.transfer import workflow_export, workflow_import
from workflows.services.workflows import workflow_validate
from workflows.templates_catalog import template_instantiate


def shape(graph: dict) -> list:
    return sorted((n["id"], n["type"]) for n in graph["nodes"]) + sorted(
        (e["source"], e["target"], e.get("source_handle")) for e in graph["edges"]
    )


@pytest.fixture
def support(personas: Personas) -> Workflow:
    provider = make_provider(personas.workspace, name="Offline demo model")
    return template_instantiate(
        key="support_handoff", workspace=personas.workspace, user=None, provider=provider
    )


def test_export_is_self_contained_and_names_providers_not_ids(
    personas: Personas, support: Workflow
) -> None:
    document = workflow_export(workflow=support)
    assert document["format"] == "a2a-studio.workflow" and document["format_version"] == 1
    assert document["workflow"]["name"] == "Customer support hand-off"
    assert document["source"] == "version 1"
    assert {agent["name"] for agent in document["agents"]} == {
        "Triage",
        "Billing support",
        "Technical support",
    }
    provider = Provider.objects.get(workspace=personas.workspace)
    text = json.dumps(document)
    assert str(provider.pk) not in text
    triage = next(a for a in document["agents"] if a["name"] == "Triage")
    assert triage["config"]["model"]["provider"] == {
        "kind": "demo",
        "name": "Offline demo model",
        "model": "demo",
    }
    assert "provider_id" not in triage["config"]["model"]


def test_round_trip_into_another_workspace(personas: Personas, support: Workflow) -> None:
    document = json.loads(json.dumps(workflow_export(workflow=support)))
    other = personas.other_workspace
    make_provider(other, name="Elsewhere demo")
    result = workflow_import(workspace=other, user=personas.outsider, document=document)
    workflow = result.workflow
    assert workflow.workspace == other and workflow.name == "Customer support hand-off"
    assert workflow.latest_version == 1
    graph = workflow.versions.get().graph
    assert shape(graph) == shape(support.versions.get().graph)
    assert workflow_validate(workspace_id=other.pk, graph=graph).ok
    new_ids = {str(a.pk) for a in Agent.objects.filter(workspace=other)}
    handoff = next(n for n in graph["nodes"] if n["type"] == "handoff")["config"]
    assert set(handoff["agents"]) == new_ids and handoff["start_agent"] in new_ids
    assert len(result.agents_created) == 3
    # The exported provider's kind exists under another name: used, and said so.
    assert any("“Elsewhere demo” is used" in warning for warning in result.warnings)
    triage = Agent.objects.get(workspace=other, name="Triage")
    targets = AgentVersion.objects.filter(agent=triage).order_by("-number")[0].config
    assert set(targets["handoff_targets"]) <= new_ids and len(targets["handoff_targets"]) == 2

    again = workflow_import(workspace=other, user=None, document=document)
    assert again.workflow.name == "Customer support hand-off (imported)"
    assert Agent.objects.filter(workspace=other, name="Triage (imported)").exists()
    assert Workflow.objects.filter(workspace=other).count() == 2


def test_import_without_providers_creates_the_demo_one(
    personas: Personas, support: Workflow
) -> None:
    document = workflow_export(workflow=support)
    result = workflow_import(workspace=personas.other_workspace, user=None, document=document)
    provider = Provider.objects.get(workspace=personas.other_workspace)
    assert provider.kind == "demo"
    assert any("had no provider" in warning for warning in result.warnings)


def test_import_keeps_an_invalid_graph_as_an_explained_draft(
    personas: Personas, support: Workflow
) -> None:
    document = workflow_export(workflow=support)
    document["graph"]["edges"] = []
    result = workflow_import(workspace=personas.other_workspace, user=None, document=document)
    assert result.workflow.latest_version == 0
    assert result.workflow.draft["edges"] == []
    assert any("not published" in warning for warning in result.warnings)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": "something.else"}, "not an A2A Studio workflow export"),
        ({"format_version": 2}, "newer A2A Studio"),
        ({"graph": None}, "lacks its “graph”"),
        ({"agents": [{"name": "x"}]}, "lacks its “ref”"),
    ],
)
def test_import_refuses_bad_documents_with_clear_messages(
    personas: Personas, support: Workflow, change: dict, message: str
) -> None:
    document = {**workflow_export(workflow=support), **change}
    with pytest.raises(ValidationError, match=message):
        workflow_import(workspace=personas.other_workspace, user=None, document=document)
    assert not Workflow.objects.filter(workspace=personas.other_workspace).exists()


def test_export_and_import_commands(
    personas: Personas, support: Workflow, tmp_path: Path, capsys
) -> None:
    target = tmp_path / "support.json"
    call_command("export_workflow", support.name, "--output", str(target))
    assert json.loads(target.read_text())["format"] == "a2a-studio.workflow"
    call_command("import_workflow", str(target), "--workspace", "Elsewhere")
    out = capsys.readouterr().out
    assert "published as version 1" in out and "created agent “Triage”" in out
    assert "Warning:" in out
    assert Workflow.objects.filter(workspace=personas.other_workspace).count() == 1


def test_import_command_errors(personas: Personas, tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="does not exist"):
        call_command("import_workflow", str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(CommandError, match="is not JSON"):
        call_command("import_workflow", str(bad))
    unknown = tmp_path / "unknown.json"
    unknown.write_text('{"hello": 1}')
    with pytest.raises(CommandError, match="Several workspaces exist"):
        call_command("import_workflow", str(unknown))
    with pytest.raises(CommandError, match="neither an A2A Studio"):
        call_command("import_workflow", str(unknown), "--workspace", "Lab")
    with pytest.raises(CommandError, match="No workspace is called"):
        call_command("import_workflow", str(unknown), "--workspace", "Nowhere")
    with pytest.raises(CommandError, match="No workflow is called"):
        call_command("export_workflow", "Nothing")


def test_a_consensus_with_a_model_policy_travels_to_another_workspace(
    personas: Personas,
) -> None:
    from tests.workflows.test_consensus_run import council_workflow

    workflow = council_workflow(personas)
    planner = Agent.objects.get(workspace=personas.workspace, name="Planner")
    provider = Provider.objects.get(workspace=personas.workspace)
    config = planner.versions.get().config
    rule = {
        "when": "role_is",
        "value": "proposer",
        "use": {"provider_id": str(provider.pk), "model": "demo-fast"},
    }
    from agents.services.agents import agent_update

    agent_update(
        agent=planner,
        user=None,
        name=planner.name,
        description="",
        config={**config, "model_policy": {"kind": "rules", "rules": [rule]}},
        known_tools=[],
        note="policy",
    )
    document = json.loads(json.dumps(workflow_export(workflow=workflow, draft=True)))
    assert str(provider.pk) not in json.dumps(document)

    other = personas.other_workspace
    make_provider(other, name="Elsewhere demo")
    result = workflow_import(workspace=other, user=None, document=document)
    graph = result.workflow.versions.get().graph
    assert workflow_validate(workspace_id=other.pk, graph=graph).ok
    agree = next(n for n in graph["nodes"] if n["type"] == "consensus")["config"]
    new_ids = {str(a.pk) for a in Agent.objects.filter(workspace=other)}
    assert {agree["proposer_agent_id"], *agree["members"]} == new_ids
    imported = Agent.objects.get(workspace=other, name="Planner").versions.get().config
    [use] = [r["use"] for r in imported["model_policy"]["rules"]]
    assert use == {
        "provider_id": str(Provider.objects.get(workspace=other).pk),
        "model": "demo-fast",
    }
