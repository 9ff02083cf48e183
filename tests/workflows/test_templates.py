from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from agents.models import Agent, AgentVersion, Provider
from tests.agents.factories import make_provider
from tests.conftest import Personas
from workflows.graph import graph_validate
from workflows.models import Workflow, WorkflowVersion
from workflows.services.workflows import workflow_validate
from workflows.templates_catalog import (
    DEMO_PROVIDER,
    DEMO_PROVIDER_FAST,
    TEMPLATES,
    template_instantiate,
    templates_seed,
)


def node_of(graph: dict, node_type: str) -> dict:
    return next(node for node in graph["nodes"] if node["type"] == node_type)


def test_the_catalog_covers_the_known_patterns() -> None:
    assert set(TEMPLATES) == {
        "research_pipeline",
        "parallel_research",
        "round_robin_debate",
        "selector_team",
        "support_handoff",
        "panel_vote",
        "council_decision",
        "approved_draft",
    }


@pytest.mark.parametrize("key", sorted(TEMPLATES))
def test_placeholder_graphs_validate_with_their_agent_slots(key: str) -> None:
    template = TEMPLATES[key]
    slots = {spec.slot for spec in template.agents}
    report = graph_validate(template.graph(), known_agents=slots, known_tools=set())
    assert report.ok, report.errors
    assert template.name and template.description


@pytest.mark.parametrize("key", sorted(TEMPLATES))
def test_instantiate_creates_agents_and_publishes_version_1(personas: Personas, key: str) -> None:
    provider = make_provider(personas.workspace, name="Demo")
    workflow = template_instantiate(
        key=key, workspace=personas.workspace, user=personas.owner, provider=provider
    )
    template = TEMPLATES[key]
    assert workflow.name == template.name
    assert workflow.latest_version == 1
    version = WorkflowVersion.objects.get(workflow=workflow, number=1)
    assert workflow_validate(workspace_id=personas.workspace.pk, graph=version.graph).ok
    agents = Agent.objects.filter(workspace=personas.workspace)
    assert sorted(agents.values_list("name", flat=True)) == sorted(s.name for s in template.agents)
    assert set(version.agent_versions) == {str(agent.pk) for agent in agents}
    for agent in agents:
        config = AgentVersion.objects.get(agent=agent, number=1).config
        assert config["model"] == {"provider_id": str(provider.pk), "model": "demo"}


def test_parallel_research_puts_the_researchers_on_two_providers(personas: Personas) -> None:
    main = make_provider(personas.workspace, name=DEMO_PROVIDER)
    fast = make_provider(personas.workspace, name=DEMO_PROVIDER_FAST)
    workflow = template_instantiate(
        key="parallel_research",
        workspace=personas.workspace,
        user=personas.owner,
        provider=main,
        second_provider=fast,
    )
    graph = workflow.versions.get().graph
    by_node = {node["id"]: node["config"].get("agent_id") for node in graph["nodes"]}
    models = {
        node_id: AgentVersion.objects.get(agent_id=agent_id).config["model"]
        for node_id, agent_id in by_node.items()
        if agent_id
    }
    assert models["research-a"] == {"provider_id": str(main.pk), "model": "demo"}
    assert models["research-b"] == {"provider_id": str(fast.pk), "model": "demo-fast"}
    assert node_of(graph, "join")["config"]["strategy"] == "concatenate"


def test_team_templates_have_the_promised_shape(personas: Personas) -> None:
    provider = make_provider(personas.workspace, name="Demo")

    def published(key: str) -> dict:
        workflow = template_instantiate(
            key=key, workspace=personas.workspace, user=None, provider=provider
        )
        return workflow.versions.get().graph

    chat = node_of(published("round_robin_debate"), "group_chat")["config"]
    assert chat["speaker_selection"] == "round_robin"
    assert chat["termination"] == {"any_of": [{"text_mention": "TERMINATE"}, {"max_messages": 12}]}
    selector = node_of(published("selector_team"), "group_chat")["config"]
    assert selector["speaker_selection"] == "llm_selector"
    assert Agent.objects.get(pk=selector["selector_agent_id"]).name == "Selector"
    assert selector["selector_agent_id"] not in selector["members"]
    handoff = node_of(published("support_handoff"), "handoff")["config"]
    triage = Agent.objects.get(pk=handoff["start_agent"])
    assert triage.name == "Triage"
    targets = AgentVersion.objects.get(agent=triage).config["handoff_targets"]
    assert {Agent.objects.get(pk=pk).name for pk in targets} == {
        "Billing support",
        "Technical support",
    }
    vote = node_of(published("panel_vote"), "vote")["config"]
    assert len(vote["voters"]) == 3 and vote["quorum"] == "majority"
    approval = published("approved_draft")
    human = node_of(approval, "human")
    branches = {
        e["source_handle"]: e["target"] for e in approval["edges"] if e["source"] == "review"
    }
    assert human["config"]["kind"] == "approval"
    assert branches == {"approved": "published", "rejected": "revise"}


def test_identical_agents_are_reused_and_edited_ones_get_a_suffix(personas: Personas) -> None:
    provider = make_provider(personas.workspace, name="Demo")
    template_instantiate(
        key="research_pipeline", workspace=personas.workspace, user=None, provider=provider
    )
    # The draft template's Writer is the pipeline's: the same agent serves both.
    template_instantiate(
        key="approved_draft", workspace=personas.workspace, user=None, provider=provider
    )
    assert (
        Agent.objects.filter(workspace=personas.workspace, name__startswith="Writer").count() == 1
    )
    Agent.objects.filter(name="Writer").update(description="Edited by someone")
    template_instantiate(
        key="approved_draft",
        workspace=personas.workspace,
        user=None,
        provider=provider,
        name="Second draft flow",
    )
    assert Agent.objects.filter(workspace=personas.workspace, name="Writer (2)").exists()


def test_a_taken_workflow_name_is_refused_and_nothing_is_left_behind(personas: Personas) -> None:
    provider = make_provider(personas.workspace, name="Demo")
    template_instantiate(
        key="panel_vote", workspace=personas.workspace, user=None, provider=provider
    )
    agents = Agent.objects.count()
    Agent.objects.filter(name="Economist").update(description="changed")
    with pytest.raises(ValidationError, match="Another workflow"):
        template_instantiate(
            key="panel_vote", workspace=personas.workspace, user=None, provider=provider
        )
    assert Agent.objects.count() == agents
    with pytest.raises(ValidationError, match="Unknown template"):
        template_instantiate(key="nope", workspace=personas.workspace, user=None, provider=provider)


def test_templates_seed_is_idempotent(personas: Personas) -> None:
    created = templates_seed(workspace=personas.workspace, user=personas.owner)
    assert len(created) == len(TEMPLATES)
    counts = (Provider.objects.count(), Agent.objects.count(), Workflow.objects.count())
    assert templates_seed(workspace=personas.workspace, user=personas.owner) == []
    assert (Provider.objects.count(), Agent.objects.count(), Workflow.objects.count()) == counts
    assert set(Provider.objects.values_list("name", "kind")) == {
        (DEMO_PROVIDER, "demo"),
        (DEMO_PROVIDER_FAST, "demo"),
    }


@pytest.mark.django_db
def test_seed_demo_seeds_providers_and_templates_twice_the_same(settings, capsys) -> None:
    settings.DEBUG = True
    call_command("seed_demo")
    first = capsys.readouterr().out
    counts = (Provider.objects.count(), Agent.objects.count(), Workflow.objects.count())
    call_command("seed_demo")
    second = capsys.readouterr().out
    assert (Provider.objects.count(), Agent.objects.count(), Workflow.objects.count()) == counts
    assert counts[0] == 2 and counts[2] == len(TEMPLATES)
    assert all(w.latest_version == 1 for w in Workflow.objects.all())
    assert f"Added {len(TEMPLATES)} template workflows" in first
    assert "already there" in second and "Log in as demo" in second
