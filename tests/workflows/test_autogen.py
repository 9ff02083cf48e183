from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from agents.models import Agent, AgentVersion, Provider
from tests.agents.factories import make_provider
from tests.conftest import Personas
from workflows.models import Workflow
from workflows.services.autogen import autogen_import
from workflows.services.workflows import workflow_validate

FIXTURES = Path(__file__).parent / "fixtures"


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def team_config(workflow: Workflow) -> dict[str, Any]:
    graph = workflow.versions.get().graph
    assert workflow_validate(workspace_id=workflow.workspace_id, graph=graph).ok
    return next(n for n in graph["nodes"] if n["id"] == "team")["config"]


def config_of(workspace, name: str) -> dict[str, Any]:
    agent = Agent.objects.get(workspace=workspace, name=name)
    return AgentVersion.objects.filter(agent=agent).order_by("-number")[0].config


def names(ids: list[str]) -> list[str]:
    return [Agent.objects.get(pk=pk).name for pk in ids]


def test_round_robin_with_openai_and_or_termination(personas: Personas) -> None:
    openai = make_provider(
        personas.workspace, kind="openai", name="OpenAI", api_key="sk-mine-1234567"
    )
    result = autogen_import(
        workspace=personas.workspace, user=None, document=load("autogen_round_robin_openai.json")
    )
    assert result.workflow.name == "Writer and critic" and result.workflow.latest_version == 1
    team = team_config(result.workflow)
    assert team["speaker_selection"] == "round_robin"
    assert names(team["members"]) == ["writer", "critic"]
    assert team["termination"] == {"any_of": [{"text_mention": "APPROVE"}, {"max_messages": 10}]}
    writer = config_of(personas.workspace, "writer")
    assert writer["model"] == {"provider_id": str(openai.pk), "model": "gpt-4o-mini"}
    assert writer["temperature"] == 0.7 and writer["max_tokens"] == 800
    assert writer["tools"] == ["current_time"]
    assert writer["system_message"].startswith("You are a writer.")
    # The key in the file is never stored anywhere: the provider keeps its own.
    assert "sk-not-a-real-key" not in json.dumps(list(AgentVersion.objects.values("config")))
    assert Provider.objects.get(pk=openai.pk).credential_hint == "4567"
    assert any("API key in the file was not imported" in w for w in result.warnings)
    assert any("tool_call_summary_format" in line for line in result.report)
    assert not any("reflect_on_tool_use" in line for line in result.report)


def test_selector_with_azure_and_anthropic(personas: Personas) -> None:
    azure = make_provider(
        personas.workspace,
        kind="azure",
        name="Azure",
        base_url="https://contoso.openai.azure.com",
        api_version="2024-06-01",
        api_key="azure-key-123456",
    )
    claude = make_provider(
        personas.workspace, kind="anthropic", name="Claude", api_key="ant-key-1234567"
    )
    result = autogen_import(
        workspace=personas.workspace,
        user=None,
        document=load("autogen_selector_azure_anthropic.json"),
    )
    team = team_config(result.workflow)
    assert team["speaker_selection"] == "llm_selector"
    assert names(team["members"]) == ["planning_agent", "data_analyst_agent"]
    assert names([team["selector_agent_id"]]) == ["Selector"]
    assert team["termination"] == {
        "any_of": [{"text_mention": "TERMINATE"}, {"max_messages": 25}, {"timeout_s": 300}]
    }
    planner = config_of(personas.workspace, "planning_agent")
    assert planner["model"] == {"provider_id": str(azure.pk), "model": "gpt4o-prod"}
    analyst = config_of(personas.workspace, "data_analyst_agent")
    assert analyst["model"] == {"provider_id": str(claude.pk), "model": "claude-3-5-haiku-latest"}
    assert analyst["max_tokens"] == 2048 and analyst["temperature"] == 0.0
    assert analyst["tools"] == ["calculator"]
    selector = config_of(personas.workspace, "Selector")
    assert selector["model"] == {"provider_id": str(azure.pk), "model": "gpt4o-mini-selector"}
    # AutoGen's selector settings carry over; the engine fills the prompt's placeholders.
    assert team["selector_prompt"].startswith("Select an agent to perform task.")
    assert "{history}" in team["selector_prompt"] and "{participants}" in team["selector_prompt"]
    assert team["allow_repeated_speaker"] is False and team["max_selector_attempts"] == 3
    assert team["task_counts_as_message"] is True
    report = "\n".join(result.report)
    assert "azure_endpoint was not imported" in report and "api_version" in report
    assert "max_selector_attempts" not in report and "allow_repeated_speaker" not in report
    assert "the tool “calculator” runs as the built-in calculator" in report


def test_swarm_with_ollama_and_handoffs(personas: Personas) -> None:
    ollama = make_provider(personas.workspace, kind="ollama", name="Ollama")
    result = autogen_import(
        workspace=personas.workspace, user=None, document=load("autogen_swarm_ollama.json")
    )
    team = team_config(result.workflow)
    assert names(team["agents"]) == ["travel_agent", "flights_refunder"]
    assert names([team["start_agent"]]) == ["travel_agent"]
    assert team["max_handoffs"] == 15
    assert team["termination"] == {
        "any_of": [{"handoff_to_human": True}, {"text_mention": "TERMINATE"}, {"max_messages": 15}]
    }
    assert team["task_counts_as_message"] is True
    travel = config_of(personas.workspace, "travel_agent")
    refunder = config_of(personas.workspace, "flights_refunder")
    assert travel["model"] == {"provider_id": str(ollama.pk), "model": "llama3.2"}
    assert names(travel["handoff_targets"]) == ["flights_refunder"]
    assert names(refunder["handoff_targets"]) == ["travel_agent"]
    assert refunder["tools"] == []
    report = "\n".join(result.report)
    # The travel agent's hand-off to the user is AutoGen's HandoffTermination: a wait here.
    assert "hand-off to “user”" not in report
    assert "HandoffTermination (user): AutoGen ends the run" in report
    assert "Agent “flights_refunder” may hand the conversation to the user here" in report
    assert "the tool “refund_flight” (FunctionTool) was not imported" in report
    assert "host is not supported" in report


def test_unsupported_parts_are_all_reported(personas: Personas) -> None:
    demo = make_provider(personas.workspace, name="Demo")
    result = autogen_import(
        workspace=personas.workspace, user=None, document=load("autogen_unsupported_parts.json")
    )
    team = team_config(result.workflow)
    # The UserProxyAgent is a person member: the run waits for them on their turn.
    assert names(team["members"][:2]) == ["coder", "reviewer"]
    assert team["members"][2] == "person:user_proxy"
    # ExternalTermination is dropped; max_turns bounds the chat.
    # AutoGen's max_turns counts agent turns; max_messages here counts the task too.
    assert team["termination"] == {"any_of": [{"text_mention": "LGTM"}, {"max_messages": 9}]}
    coder = config_of(personas.workspace, "coder")
    assert coder["model"] == {"provider_id": str(demo.pk), "model": "demo"}
    assert coder["tools"] == []
    report = "\n".join(result.report)
    for expected in (
        "ExternalTermination was left out",
        "the tool “run_python” (FunctionTool) was not imported",
        "base_url was not imported",
        "max_retries is not supported",
        "GeminiChatCompletionClient” is not supported",
        "“user_proxy” (UserProxyAgent) is a person here",
        "max_turns 8 is mapped to max_messages 9",
    ):
        assert expected in report
    # Streaming and reflecting on tool results are what runs here do anyway.
    assert "model_client_stream" not in report and "reflect_on_tool_use" not in report
    assert any("no openai provider" in warning for warning in result.warnings)
    assert not Agent.objects.filter(name="user_proxy").exists()


def test_an_unbounded_team_gets_max_messages_20(personas: Personas) -> None:
    make_provider(personas.workspace, name="Demo")
    document = load("autogen_unsupported_parts.json")
    del document["config"]["max_turns"]
    result = autogen_import(workspace=personas.workspace, user=None, document=document)
    team = team_config(result.workflow)
    assert team["termination"] == {"any_of": [{"text_mention": "LGTM"}, {"max_messages": 20}]}
    assert any("max_messages 20 was added" in line for line in result.report)


def test_not_a_team_is_refused(personas: Personas) -> None:
    document = load("autogen_round_robin_openai.json")
    document["provider"] = "autogen_agentchat.teams.GraphFlow"
    with pytest.raises(ValidationError, match="GraphFlow.*is not supported"):
        autogen_import(workspace=personas.workspace, user=None, document=document)
    assert not Workflow.objects.exists()


def test_import_command_detects_autogen(personas: Personas, capsys) -> None:
    call_command(
        "import_workflow", str(FIXTURES / "autogen_swarm_ollama.json"), "--workspace", "Lab"
    )
    out = capsys.readouterr().out
    assert "Imported the AutoGen Studio team as the workflow “Travel desk swarm”" in out
    assert "Differs from AutoGen:" in out and "Warning:" in out
    assert Workflow.objects.filter(workspace=personas.workspace, latest_version=1).count() == 1


def test_a_chat_hand_off_to_the_user_becomes_a_wait_for_a_person(personas: Personas) -> None:
    make_provider(personas.workspace, name="Demo")
    document = load("autogen_round_robin_openai.json")
    writer = document["config"]["participants"][0]["config"]
    writer["handoffs"] = [{"target": "user", "name": "transfer_to_user"}]
    conditions = document["config"]["termination_condition"]["config"]["conditions"]
    conditions.append(
        {
            "provider": "autogen_agentchat.conditions.HandoffTermination",
            "component_type": "termination",
            "config": {"target": "user"},
        }
    )
    result = autogen_import(workspace=personas.workspace, user=None, document=document)
    team = team_config(result.workflow)
    assert {"handoff_to_human": True} in team["termination"]["any_of"]
    assert config_of(personas.workspace, "writer")["system_message"].endswith(
        "When you need the user, write HANDOFF_TO_HUMAN."
    )
    assert "HANDOFF_TO_HUMAN" not in config_of(personas.workspace, "critic")["system_message"]
    assert any(line.startswith("HandoffTermination (user)") for line in result.report)


def test_a_renamed_agent_is_the_name_the_selector_sees(personas: Personas) -> None:
    make_provider(personas.workspace, name="Demo")
    document = load("autogen_gallery_selector.json")
    autogen_import(workspace=personas.workspace, user=None, document=document)
    again = autogen_import(workspace=personas.workspace, user=None, document=document)
    prompt = team_config(again.workflow)["selector_prompt"]
    assert "available:\nassistant_agent (imported): An agent that helps" in prompt
    assert "critic_agent (imported): an agent that reviews" in prompt
    assert any(
        line.startswith("Agent “assistant_agent” is named “assistant_agent (imported)” here")
        for line in again.report
    )
