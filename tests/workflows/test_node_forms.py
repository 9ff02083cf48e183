"""Node property forms, derived from the registry: every type gets a form; pydantic decides."""

from __future__ import annotations

from typing import Any

import pytest

from workflows.graph import NODE_TYPES
from workflows.node_forms import node_form_class

AGENTS = [("a1", "Researcher"), ("a2", "Analyst"), ("a3", "Writer")]


def form_for(node: dict[str, Any], data: dict[str, Any] | None = None) -> Any:
    form_class = node_form_class(
        NODE_TYPES[node["type"]],
        agents=AGENTS,
        tools=[("current_time", "current_time"), ("calculator", "calculator")],
        workflows=[("w1", "Other flow")],
        node=node,
    )
    return form_class(data, node=node)


def post_of(form: Any) -> dict[str, Any]:
    """What a browser submits for the form as rendered."""
    data: dict[str, Any] = {}
    for bound in form:
        value = bound.value()
        if isinstance(value, list):
            data[bound.name] = value
        elif value is None or value is False:
            continue
        else:
            data[bound.name] = (
                bound.field.prepare_value(value) if hasattr(bound.field, "prepare_value") else value
            )
    return data


@pytest.mark.parametrize("node_type", sorted(NODE_TYPES))
def test_every_node_type_renders_and_resubmits_its_default(node_type: str) -> None:
    node = {
        "id": "n1",
        "type": node_type,
        "label": "Step",
        "config": dict(NODE_TYPES[node_type].default_config),
    }
    html = form_for(node).as_div()
    assert 'name="label"' in html and 'name="error_action"' in html
    # Unchanged resubmission is either accepted or refused with a message on a field.
    resubmitted = form_for(node, post_of(form_for(node)))
    config = resubmitted.config()
    assert config is not None or resubmitted.errors


def test_an_agent_node_takes_an_agent_from_the_workspace() -> None:
    node = {"id": "research", "type": "agent", "label": "", "config": {"agent_id": ""}}
    form = form_for(
        node,
        {
            "label": "Research",
            "agent_id": "a1",
            "input_template": "{{ topic }}",
            "error_action": "fail",
            "error_retries": "0",
            "error_backoff_s": "1",
        },
    )
    assert form.config() == {"agent_id": "a1", "input_template": "{{ topic }}"}
    assert form.node_update(form.config())["label"] == "Research"


def router_post(**changes: str) -> dict[str, str]:
    return {
        "mode": "rules",
        "routes": "yes\nno",
        "rules": '[{"route": "yes", "operator": "contains", "value": "x"}]',
        "error_action": "fail",
        "error_retries": "0",
        "error_backoff_s": "1",
        **changes,
    }


def test_pydantic_errors_land_on_the_field_that_caused_them() -> None:
    node = {"id": "r", "type": "router", "label": "", "config": {}}
    form = form_for(node, router_post(error_action="retry"))
    assert form.config() is None
    assert form.errors == {"error_action": ["action 'retry' needs retries of 1 to 5"]}


def test_errors_across_fields_are_shown_above_the_form() -> None:
    node = {"id": "r", "type": "router", "label": "", "config": {}}
    rules = '[{"route": "maybe", "operator": "contains", "value": "x"}]'
    form = form_for(node, router_post(rules=rules))
    assert form.config() is None
    assert form.non_field_errors() == ["rule 1 sends to 'maybe', which is not a route"]
    assert form_for(node, router_post()).config() == {
        "routes": ["yes", "no"],
        "rules": [{"route": "yes", "operator": "contains", "value": "x"}],
    }


def test_bad_json_and_bounds_are_refused_before_pydantic() -> None:
    node = {"id": "l", "type": "loop", "label": "", "config": {}}
    form = form_for(
        node,
        {
            "max_iterations": "500",
            "condition": "{not json",
            "error_action": "fail",
            "error_retries": "0",
            "error_backoff_s": "1",
        },
    )
    assert form.config() is None
    assert "max_iterations" in form.errors and "condition" in form.errors


def test_members_keep_their_speaking_order_and_unknown_agents_stay_visible() -> None:
    node = {
        "id": "chat",
        "type": "group_chat",
        "label": "",
        "config": {"members": ["a3", "gone", "a1"], "termination": {"max_messages": 6}},
    }
    rendered = form_for(node).as_div()
    assert "Missing: gone" in rendered
    form = form_for(
        node,
        {
            "members": ["a1", "a2", "a3", "gone"],
            "speaker_selection": "round_robin",
            "termination": '{"max_messages": 6}',
            "error_action": "fail",
            "error_retries": "0",
            "error_backoff_s": "1",
        },
    )
    config = form.config()
    assert config is not None
    assert config["members"] == ["a3", "gone", "a1", "a2"]


def test_an_error_policy_is_stored_only_when_it_is_not_the_default() -> None:
    node = {"id": "t", "type": "tool", "label": "", "config": {"tool": "current_time"}}
    form = form_for(
        node,
        {
            "tool": "calculator",
            "arguments": '{"expression": "1+1"}',
            "error_action": "default",
            "error_retries": "0",
            "error_backoff_s": "1",
            "error_default": '"n/a"',
        },
    )
    assert form.config() == {
        "tool": "calculator",
        "arguments": {"expression": "1+1"},
        "error_policy": {
            "action": "default",
            "retries": 0,
            "backoff_s": 1.0,
            "default_value": "n/a",
        },
    }


def test_an_agent_step_takes_the_name_of_its_agent_unless_someone_named_it() -> None:
    policy = {"error_action": "fail", "error_retries": "0", "error_backoff_s": "1"}
    node = {"id": "a", "type": "agent", "label": "Agent", "config": {"agent_id": ""}}
    form = form_for(node, {"label": "Agent", "agent_id": "a3", **policy})
    assert form.node_update(form.config())["label"] == "Writer"

    node = {"id": "a", "type": "agent", "label": "Writer", "config": {"agent_id": "a3"}}
    form = form_for(node, {"label": "Writer", "agent_id": "a2", **policy})
    assert form.node_update(form.config())["label"] == "Analyst"

    form = form_for(node, {"label": "Final copy", "agent_id": "a2", **policy})
    assert form.node_update(form.config())["label"] == "Final copy"


@pytest.mark.parametrize(
    "node",
    [
        {
            "id": "team",
            "type": "group_chat",
            "label": "Team",
            "config": {
                "members": ["a1", "a2"],
                "speaker_selection": "llm_selector",
                "selector_agent_id": "a3",
                "allow_repeated_speaker": False,
                "selector_prompt": "Roles:\nResearcher\n\n{history}\nPick from {participants}.",
                "max_selector_attempts": 3,
                "termination": {"any_of": [{"text_mention": "TERMINATE"}, {"max_messages": 10}]},
                "task_counts_as_message": True,
                "output_variable": "transcript",
            },
        },
        {
            "id": "team",
            "type": "handoff",
            "label": "Team",
            "config": {
                "agents": ["a1", "a2"],
                "start_agent": "a1",
                "termination": {"any_of": [{"handoff_to_human": True}, {"max_messages": 10}]},
                "task_counts_as_message": True,
                "max_handoffs": 15,
                "output_variable": "transcript",
            },
        },
    ],
    ids=["selector", "swarm"],
)
def test_an_imported_autogen_team_resubmits_unchanged(node: dict[str, Any]) -> None:
    config = form_for(node, post_of(form_for(node))).config()
    assert config is not None
    assert {key: config.get(key) for key in node["config"]} == node["config"]


def test_a_consensus_form_picks_a_proposer_and_members() -> None:
    node = {"id": "agree", "type": "consensus", "label": "", "config": {}}
    form = form_for(node)
    assert form.fields["proposer_agent_id"].label == "Proposer"
    assert "the proposer is not one" in form.fields["members"].help_text
    post = {
        "proposer_agent_id": "a1",
        "members": ["a2", "a3"],
        "task": "{{ input }}",
        "quorum": "unanimous",
        "max_terms": "4",
        "election": "vote",
        "on_no_consensus": "fail",
        "error_action": "fail",
        "error_retries": "0",
        "error_backoff_s": "1",
    }
    assert form_for(node, post).config() == {
        "proposer_agent_id": "a1",
        "members": ["a2", "a3"],
        "quorum": "unanimous",
        "max_terms": 4,
        "election": "vote",
    }
    refused = form_for(node, {**post, "members": ["a1", "a2"]})
    assert refused.config() is None
    assert "the proposer is not also a member" in str(refused.errors)
