"""The node-type registry: each type's config rules, branches and references."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from workflows.graph import NODE_TYPES, NodeConfig, NodeType, Reference, register_node_type
from workflows.graph.nodes import check_template


def parse(node_type: str, **config: Any) -> NodeConfig:
    return NODE_TYPES[node_type].config_model.model_validate(config)


def refuses(node_type: str, match: str, **config: Any) -> None:
    with pytest.raises(ValidationError, match=match):
        parse(node_type, **config)


CHAT = {"members": ["ann", "bob"]}
VOTE = {"voters": ["ann", "bob", "cy"], "question": "Ship {{ draft }}?", "options": ["yes", "no"]}


def test_the_palette_lists_every_type_in_its_group():
    groups = {name: node_type.group for name, node_type in NODE_TYPES.items()}

    assert groups == {
        "start": "Flow",
        "end": "Flow",
        "agent": "Agents",
        "parallel": "Flow",
        "join": "Flow",
        "router": "Flow",
        "loop": "Flow",
        "group_chat": "Teams",
        "handoff": "Teams",
        "vote": "Teams",
        "consensus": "Teams",
        "human": "Humans",
        "tool": "Tools",
        "subworkflow": "Flow",
        "remote_agent": "Agents",
    }
    assert all(node_type.label and node_type.description for node_type in NODE_TYPES.values())


def test_wiring_rules_of_the_flow_types():
    start, end, parallel, join = (NODE_TYPES[name] for name in ("start", "end", "parallel", "join"))

    assert (start.min_in, start.max_in, start.min_out) == (0, 0, 1)
    assert end.max_out == 0
    assert (parallel.min_out, parallel.fan_out) == (2, True)
    assert join.min_in == 2
    assert not NODE_TYPES["agent"].fan_out


def test_a_router_branches_by_its_routes_and_checks_its_regexes():
    config = parse(
        "router",
        routes=["billing", "tech"],
        default_route="tech",
        rules=[{"route": "billing", "operator": "regex", "value": r"invoice|refund"}],
    )
    assert NODE_TYPES["router"].branches(config) == ["billing", "tech"]

    with pytest.raises(ValidationError) as caught:
        parse("router", routes=["a"], rules=[{"route": "a", "operator": "regex", "value": "(("}])
    [error] = caught.value.errors()
    assert error["loc"] == ("rules", 0, "value")
    assert error["msg"].startswith("Value error, invalid regex: missing )")


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"routes": ["a"], "rules": []}, "mode 'rules' needs at least one rule"),
        ({"routes": ["a"], "mode": "llm"}, "mode 'llm' needs an agent_id"),
        ({"routes": ["a", "a"], "mode": "llm", "agent_id": "x"}, "lists each route once"),
        (
            {"routes": ["a"], "rules": [{"route": "b", "operator": "contains", "value": "x"}]},
            "rule 1 sends to 'b', which is not a route",
        ),
        (
            {"routes": ["a"], "default_route": "z", "mode": "llm", "agent_id": "x"},
            "default_route 'z' is not a route",
        ),
        (
            {"routes": ["a"], "rules": [{"route": "a", "operator": "json_field_gt", "value": 3}]},
            "needs the JSON field",
        ),
        (
            {
                "routes": ["a"],
                "rules": [{"route": "a", "operator": "json_field_lt", "field": "n", "value": "3"}],
            },
            "needs a number",
        ),
    ],
)
def test_a_router_refuses_inconsistent_rules(config: dict[str, Any], match: str):
    refuses("router", match, **config)


def test_a_loop_needs_a_bounded_iteration_count_and_has_loop_and_done_branches():
    config = parse("loop", max_iterations=5, condition={"kind": "text_mention"})

    assert NODE_TYPES["loop"].branches(config) == ["loop", "done"]
    refuses("loop", "max_iterations", condition={"kind": "text_mention"})
    refuses("loop", "less than or equal to 100", max_iterations=101)
    refuses("loop", "greater than or equal to 1", max_iterations=0)
    predicate = {"kind": "variable_predicate", "variable": "score", "operator": "gte", "value": 8}
    config = parse("loop", max_iterations=3, condition=predicate)
    assert NODE_TYPES["loop"].references(config) == [
        Reference("variable", "score", "config.condition.variable")
    ]


@pytest.mark.parametrize(
    "termination",
    [
        {"max_messages": 10},
        {"any_of": [{"text_mention": "TERMINATE"}, {"max_messages": 10}]},
        {"all_of": [{"timeout_s": 60}, {"token_budget": 1000}]},
        {"any_of": [{"handoff_to_human": True}, {"all_of": [{"cost_budget_usd": 0.5}]}]},
    ],
)
def test_a_group_chat_accepts_terminations_that_always_fire(termination: dict[str, Any]):
    assert parse("group_chat", **CHAT, termination=termination)


@pytest.mark.parametrize(
    "termination",
    [
        {"text_mention": "TERMINATE"},
        {"handoff_to_human": True},
        {"any_of": [{"text_mention": "TERMINATE"}, {"handoff_to_human": True}]},
        # all_of stops only when every part fires, and a mention may never come.
        {"all_of": [{"text_mention": "TERMINATE"}, {"max_messages": 10}]},
    ],
)
def test_a_group_chat_refuses_terminations_that_may_never_fire(termination: dict[str, Any]):
    refuses("group_chat", "termination may never fire", **CHAT, termination=termination)


def test_a_malformed_termination_condition_is_named_precisely():
    with pytest.raises(ValidationError) as caught:
        parse("group_chat", **CHAT, termination={"any_of": [{"max_messages": 5}, {"stop": 1}]})

    [error] = caught.value.errors()
    assert error["type"] == "termination_kind"
    assert error["loc"] == ("termination", "any_of", "any_of", 1)


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"members": []}, "at least 1 item"),
        ({"members": ["ann", "person: "]}, "a person member is written person:<name>"),
        ({"members": ["ann", "ann"]}, "lists each member once"),
        ({**CHAT, "speaker_selection": "llm_selector"}, "needs a selector_agent_id"),
        ({**CHAT, "speaker_selection": "rules"}, "needs at least one speaker rule"),
        (
            {
                **CHAT,
                "speaker_selection": "rules",
                "speaker_rules": [{"after_speaker": "ann", "next_speaker": "zed"}],
            },
            "speaker rule 1 names 'zed', who is not a member",
        ),
    ],
)
def test_a_group_chat_refuses_bad_members_and_speaker_rules(config: dict[str, Any], match: str):
    refuses("group_chat", match, termination={"max_messages": 4}, **config)


def test_a_group_chat_refers_to_its_members_and_selector():
    config = parse(
        "group_chat",
        **CHAT,
        speaker_selection="llm_selector",
        selector_agent_id="chair",
        termination={"max_messages": 8},
    )

    assert [(ref.id, ref.field) for ref in NODE_TYPES["group_chat"].references(config)] == [
        ("ann", "config.members[0]"),
        ("bob", "config.members[1]"),
        ("chair", "config.selector_agent_id"),
    ]


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({**VOTE, "quorum": "k_of_n", "k": 4}, "k is 4 but there are only 3 voters"),
        ({**VOTE, "quorum": "k_of_n"}, "quorum 'k_of_n' needs k"),
        ({**VOTE, "k": 2}, "k only applies to quorum 'k_of_n'"),
        ({**VOTE, "tie_policy": "chair"}, "needs a chair_agent_id"),
        ({**VOTE, "options": ["yes"]}, "at least two options"),
        ({**VOTE, "free_form": True}, "options or set free_form, not both"),
        ({**VOTE, "voters": ["ann"]}, "at least 2 items"),
        ({**VOTE, "question": "Ship {{ the draft }}?"}, "is not {{ name }}"),
    ],
)
def test_a_vote_refuses_impossible_quorums_and_ties(config: dict[str, Any], match: str):
    refuses("vote", match, **config)


COUNCIL = {"proposer_agent_id": "ann", "members": ["bob", "cy", "dee"]}


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({**COUNCIL, "quorum": "k_of_n", "k": 4}, "k is 4 but there are only 3 members"),
        ({**COUNCIL, "quorum": "k_of_n"}, "quorum 'k_of_n' needs k"),
        ({**COUNCIL, "k": 2}, "k only applies to quorum 'k_of_n'"),
        ({**COUNCIL, "members": ["ann", "bob"]}, "the proposer is not also a member"),
        ({**COUNCIL, "members": ["bob", "bob"]}, "lists each member once"),
        ({**COUNCIL, "members": []}, "at least 1 item"),
        ({**COUNCIL, "max_terms": 0}, "greater than or equal to 1"),
        ({**COUNCIL, "election": "lottery"}, "'most_acceptances' or 'vote'"),
        ({**COUNCIL, "task": "Agree on {{ the plan }}"}, "is not {{ name }}"),
    ],
)
def test_a_consensus_refuses_impossible_quorums_and_members(config: dict[str, Any], match: str):
    refuses("consensus", match, **config)


@pytest.mark.parametrize(
    ("quorum", "k", "needed"), [("majority", None, 2), ("unanimous", None, 3), ("k_of_n", 1, 1)]
)
def test_a_consensus_needs_its_quorum_of_acceptances(quorum: str, k: int | None, needed: int):
    config = parse("consensus", **COUNCIL, quorum=quorum, k=k)
    assert config.needed() == needed  # type: ignore[attr-defined]


def test_a_consensus_refers_to_its_proposer_members_and_variable():
    config = parse("consensus", **COUNCIL, output_variable="plan")
    refs = NODE_TYPES["consensus"].references(config)
    assert [(ref.kind, ref.id) for ref in refs] == [
        ("agent", "ann"),
        ("agent", "bob"),
        ("agent", "cy"),
        ("agent", "dee"),
        ("variable", "plan"),
    ]


def test_a_vote_with_a_chair_refers_to_voters_and_chair():
    config = parse("vote", **{**VOTE, "tie_policy": "chair", "chair_agent_id": "dee"})

    refs = NODE_TYPES["vote"].references(config)
    assert [ref.id for ref in refs] == ["ann", "bob", "cy", "dee"]


def test_a_handoff_swarm_starts_with_one_of_its_agents():
    config = parse("handoff", agents=["triage", "billing"], start_agent="triage")

    assert config.model_dump()["max_handoffs"] == 10
    refuses("handoff", "start_agent 'sales' is not one of", agents=["a", "b"], start_agent="sales")


def test_an_approval_has_approved_and_rejected_branches_and_an_input_has_none():
    approval = parse("human", prompt="Publish?", kind="approval", on_timeout="reject", timeout_s=60)
    question = parse("human", prompt="Which audience?", field={"name": "audience"})

    assert NODE_TYPES["human"].branches(approval) == ["approved", "rejected"]
    assert NODE_TYPES["human"].branches(question) is None
    refuses("human", "only applies to kind 'approval'", prompt="?", on_timeout="approve")
    refuses("human", "needs a default_value", prompt="?", on_timeout="default_value")


def test_a_subworkflow_bounds_its_depth_and_names_its_workflow():
    config = parse("subworkflow", workflow_id="wf-9", version=3, output_mapping={"out": "summary"})

    assert NODE_TYPES["subworkflow"].references(config) == [
        Reference("workflow", "wf-9", "config.workflow_id"),
        Reference("variable", "summary", "config.output_mapping.out"),
    ]
    assert parse("subworkflow", workflow_id="w").model_dump()["max_depth"] == 3
    refuses("subworkflow", "less than or equal to 5", workflow_id="w", max_depth=6)
    refuses("subworkflow", "latest_published", workflow_id="w", version="newest")


def test_a_join_summary_needs_an_agent_and_a_tool_names_its_tool():
    refuses("join", "needs an agent_id to write the summary", strategy="llm_summary")
    config = parse("tool", tool="web_search", arguments={"q": "{{ topic }}"})
    assert NODE_TYPES["tool"].references(config) == [Reference("tool", "web_search", "config.tool")]


def test_every_node_shares_an_error_policy():
    config = parse("agent", agent_id="a", error_policy={"action": "retry", "retries": 2})

    assert config.error_policy.retries == 2
    refuses("agent", "action 'retry' needs retries", agent_id="a", error_policy={"action": "retry"})
    refuses("agent", "less than or equal to 5", agent_id="a", error_policy={"retries": 6})
    refuses("agent", "Extra inputs", agent_id="a", error_policy={"retry": 1})


@pytest.mark.parametrize(
    ("template", "ok"),
    [
        ("Hello {{ name }} and {{ doc.title }}", True),
        ("no placeholders", True),
        ("{{ two words }}", False),
        ("{{ }}", False),
        ("{{ name }", False),
    ],
)
def test_templates_take_only_dotted_names(template: str, ok: bool):
    if ok:
        assert check_template(template) == template
    else:
        with pytest.raises(ValueError):
            check_template(template)


@pytest.fixture
def remote_agent_type() -> Iterator[NodeType]:
    class RemoteAgentConfig(NodeConfig):
        card_id: str

        def references(self) -> list[Reference]:
            return [Reference("agent", self.card_id, "config.card_id")]

    node_type = register_node_type(
        NodeType("a2a_agent", "Remote agent", "Agents", "An A2A peer.", RemoteAgentConfig)
    )
    yield node_type
    del NODE_TYPES["a2a_agent"]


def test_a_new_kind_of_node_plugs_in_by_registering_it(remote_agent_type: NodeType):
    config = remote_agent_type.config_model.model_validate({"card_id": "peer-1"})

    assert NODE_TYPES["a2a_agent"] is remote_agent_type
    assert remote_agent_type.references(config) == [Reference("agent", "peer-1", "config.card_id")]
    with pytest.raises(ValueError, match="already registered"):
        register_node_type(remote_agent_type)
