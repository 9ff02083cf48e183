"""graph_validate: what the builder's badges and the API's refusals are made of."""

from __future__ import annotations

import copy
import gc
import json
import time
from typing import Any

import pytest

from workflows.graph import GraphLimits, graph_validate
from workflows.graph.examples import (
    edge,
    graph,
    group_chat_debate,
    node,
    parallel_research,
    research_pipeline,
    text_variable,
)

AGENTS = {"researcher", "analyst", "writer", "critic"}


def flow(*middle: dict[str, Any], edges: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """start → (middle nodes, wired by `edges`) → end, with variables topic and out."""
    document = graph(
        nodes=[node("start", "start", 0, 0), *middle, node("end", "end", 0, 0)],
        edges=edges,
        variables=[text_variable("topic"), text_variable("out")],
        output="out",
    )
    document.update(extra)
    return document


def agent(node_id: str, agent_id: str = "writer", **config: Any) -> dict[str, Any]:
    return node(node_id, "agent", 0, 0, agent_id=agent_id, **config)


def codes(document: Any, **kwargs: Any) -> list[tuple[str, str | None, str | None]]:
    report = graph_validate(document, **kwargs)
    return [(issue.code, issue.node_id, issue.field) for issue in report.errors]


def router(node_id: str = "route", routes: tuple[str, ...] = ("yes", "no")) -> dict[str, Any]:
    return node(node_id, "router", 0, 0, mode="llm", agent_id="analyst", routes=list(routes))


@pytest.mark.parametrize(
    "document",
    [
        research_pipeline("researcher", "analyst", "writer"),
        parallel_research("researcher", "critic", "analyst"),
        group_chat_debate(["researcher", "critic"]),
    ],
    ids=["sequence", "parallel", "group-chat"],
)
def test_the_examples_validate_cleanly_against_their_agents(document: dict[str, Any]):
    report = graph_validate(document, known_agents=AGENTS, known_tools=[], known_workflows=[])

    assert report.errors == [] and report.warnings == []
    assert report.ok and report.graph is not None


def test_the_examples_name_the_agents_they_were_given():
    report = graph_validate(research_pipeline("r1", "a1", "writr"), known_agents={"r1", "a1"})

    assert [(i.code, i.node_id, i.field) for i in report.errors] == [
        ("unknown_agent", "writing", "config.agent_id")
    ]
    assert report.errors[0].message == (
        "Node 'writing': agent 'writr' in field 'config.agent_id' does not exist"
    )
    report = graph_validate(research_pipeline("r1", "a1", "writr"), known_agents={"writer"})
    assert len(report.errors) == 3
    assert report.errors[2].message.endswith("does not exist; did you mean 'writer'?")


@pytest.mark.parametrize("document", [None, [], "graph", 3, True])
def test_a_document_that_is_not_an_object_is_refused(document: Any):
    report = graph_validate(document)

    assert not report.ok and report.graph is None
    assert [issue.code for issue in report.errors] == ["not_an_object"]


def test_size_limits_refuse_big_documents_before_parsing_them():
    many_nodes = {"nodes": [{"id": f"n{i}"} for i in range(11)]}
    many_edges = {"nodes": [], "edges": [{}] * 6}
    deep: Any = "bottom"
    for _ in range(5000):  # deeper than Python's recursion limit
        deep = [deep]
    limits = GraphLimits(max_nodes=10, max_edges=5, max_json_bytes=5000, max_depth=20)

    assert codes(many_nodes, limits=limits) == [("too_many_nodes", None, "nodes")]
    assert codes(many_edges, limits=limits) == [("too_many_edges", None, "edges")]
    assert codes({"nodes": deep}, limits=limits) == [("too_deep", None, None)]
    assert codes({"x": "a" * 5000}, limits=limits) == [("too_large", None, None)]
    assert codes({"x": float("nan")}) == [("not_json", None, None)]
    assert codes({"x": {1: 2}}) == [("not_json", None, None)]
    assert codes({"x": {1, 2}}) == [("not_json", None, None)]


def test_the_byte_limit_roughly_matches_the_serialised_size():
    document = research_pipeline("researcher", "analyst", "writer")
    size = len(json.dumps(document).encode())

    assert graph_validate(document, limits=GraphLimits(max_json_bytes=int(size * 1.1))).ok
    assert not graph_validate(document, limits=GraphLimits(max_json_bytes=int(size * 0.9))).ok


def test_shape_errors_are_placed_on_the_node_by_its_position():
    document = research_pipeline("researcher", "analyst", "writer")
    document["nodes"][3]["position"] = {"x": "left", "y": 0}

    assert codes(document) == [("invalid_field", "writing", "position.x")]


def test_a_legacy_graph_is_upgraded_and_validated_and_a_future_one_refused():
    legacy = research_pipeline("researcher", "analyst", "writer")
    del legacy["schema_version"]
    for item in legacy["nodes"]:
        item["kind"] = item.pop("type")
    for item in legacy["edges"]:
        item["from"], item["to"] = item.pop("source"), item.pop("target")
        del item["id"]

    assert graph_validate(legacy).ok
    future = {**legacy, "schema_version": 2}
    assert codes(future) == [("schema_version_unsupported", None, "schema_version")]


def test_duplicate_ids_are_reported_on_the_repeated_id():
    document = research_pipeline("researcher", "analyst", "writer")
    document["nodes"].append(copy.deepcopy(document["nodes"][1]))
    document["edges"].append(copy.deepcopy(document["edges"][0]))

    report = graph_validate(document)

    assert [(i.code, i.node_id, i.edge_id, i.field) for i in report.errors][:2] == [
        ("duplicate_node_id", "research", None, "id"),
        ("duplicate_edge_id", None, "start--research", "id"),
    ]


def test_an_unknown_type_suggests_the_closest_one():
    document = flow(node("a", "agnet", 0, 0), edges=[edge("start", "a"), edge("a", "end")])

    report = graph_validate(document)

    [issue] = report.errors
    assert (issue.code, issue.node_id, issue.field) == ("unknown_node_type", "a", "type")
    assert issue.message == "Node 'a': unknown type 'agnet'; did you mean 'agent'?"


def test_a_bad_regex_names_the_node_the_rule_and_the_field():
    route = node(
        "router-1",
        "router",
        0,
        0,
        routes=["a"],
        rules=[
            {"route": "a", "operator": "contains", "value": "ok"},
            {"route": "a", "operator": "regex", "value": "([a-z]"},
        ],
    )
    document = flow(route, edges=[edge("start", "router-1"), edge("router-1", "end", "a")])

    [issue] = graph_validate(document).errors

    assert (issue.code, issue.node_id, issue.field) == (
        "invalid_config",
        "router-1",
        "config.rules[1].value",
    )
    assert issue.message.startswith(
        "Node 'router-1': rule 2, field 'value': invalid regex: missing ), unterminated"
    )


def test_a_config_typo_and_a_missing_setting_are_both_reported():
    document = flow(
        node("a", "agent", 0, 0, agentid="writer"), edges=[edge("start", "a"), edge("a", "end")]
    )

    assert codes(document) == [
        ("invalid_config", "a", "config.agent_id"),
        ("invalid_config", "a", "config.agentid"),
    ]


def test_dangling_edges_name_their_missing_end():
    document = flow(agent("a"), edges=[edge("start", "a"), edge("a", "ned"), edge("x", "a")])

    report = graph_validate(document)
    dangling = [(i.code, i.edge_id, i.field) for i in report.errors if i.edge_id]
    assert dangling == [
        ("edge_unknown_target", "a--ned", "target"),
        ("edge_unknown_source", "x--a", "source"),
    ]
    assert "did you mean 'end'?" in report.errors[0].message


def test_a_router_must_wire_each_route_and_only_its_routes():
    document = flow(
        router(),
        agent("a"),
        edges=[
            edge("start", "route"),
            edge("route", "a", "yes"),
            edge("route", "end", "maybe"),
            edge("a", "end"),
        ],
    )

    report = graph_validate(document, known_agents=AGENTS)

    assert [(i.code, i.node_id, i.edge_id) for i in report.errors] == [
        ("unknown_branch", "route", "route--end"),
        ("missing_branch", "route", None),
    ]
    assert report.errors[0].message == (
        "Node 'route': edge 'route--end' leaves by branch 'maybe', which is not one of: "
        "'yes', 'no'."
    )
    assert "branch 'no' is not connected" in report.errors[1].message


def test_an_unlabelled_edge_from_a_router_needs_a_label():
    document = flow(router(routes=("only",)), edges=[edge("start", "route"), edge("route", "end")])

    report = graph_validate(document)

    assert [i.code for i in report.errors] == ["unknown_branch", "missing_branch"]
    assert report.errors[0].message.endswith("needs a branch label, one of: 'only'.")


def test_an_approval_must_wire_approved_and_rejected():
    approve = node("ok", "human", 0, 0, prompt="Publish?", kind="approval")
    document = flow(approve, edges=[edge("start", "ok"), edge("ok", "end", "approved")])

    assert codes(document) == [("missing_branch", "ok", None)]


def test_an_error_branch_needs_an_error_edge_and_an_error_edge_needs_the_policy():
    policy = {"action": "error_branch"}
    with_policy = flow(
        agent("a", error_policy=policy), edges=[edge("start", "a"), edge("a", "end")]
    )
    without_policy = flow(
        agent("a"),
        agent("b"),
        edges=[edge("start", "a"), edge("a", "end"), edge("a", "b", "error"), edge("b", "end")],
    )

    assert codes(with_policy) == [("missing_branch", "a", "config.error_policy.action")]
    report = graph_validate(without_policy)
    assert [(i.code, i.edge_id) for i in report.errors] == [("unknown_branch", "a--b")]
    assert "set config.error_policy.action to 'error_branch'" in report.errors[0].message
    with_policy["nodes"].insert(2, agent("b"))
    with_policy["edges"] += [edge("a", "b", "error"), edge("b", "end")]
    assert graph_validate(with_policy).ok


def test_two_default_edges_from_one_output_are_ambiguous_outside_parallel():
    document = flow(
        agent("a"),
        agent("b"),
        edges=[edge("start", "a"), edge("start", "b"), edge("a", "end"), edge("b", "end")],
    )

    [issue] = graph_validate(document).errors
    assert (issue.code, issue.node_id) == ("ambiguous_output", "start")
    assert "2 edges ('start--a', 'start--b') leave by the default output" in issue.message


def test_fan_in_and_fan_out_counts():
    lonely_join = flow(
        node("p", "parallel", 0, 0),
        node("j", "join", 0, 0),
        edges=[edge("start", "p"), edge("p", "j"), edge("j", "end")],
    )

    assert codes(lonely_join) == [("too_few_outputs", "p", None), ("too_few_inputs", "j", None)]


def test_start_takes_no_input_and_end_gives_no_output():
    document = flow(agent("a"), edges=[edge("start", "a"), edge("a", "end"), edge("end", "start")])

    found = codes(document)
    assert found[:2] == [("too_many_inputs", "start", None), ("too_many_outputs", "end", None)]
    assert ("unbounded_cycle", "start", None) in found


def test_exactly_one_start_and_at_least_one_end():
    no_ends = graph(
        nodes=[node("s", "start", 0, 0), agent("a")],
        edges=[edge("s", "a")],
        variables=[],
        output="a",
    )
    two_starts = flow(
        node("start-2", "start", 0, 0), edges=[edge("start", "end"), edge("start-2", "end")]
    )
    no_start = graph(nodes=[node("end", "end", 0, 0)], edges=[], variables=[], output="end")

    assert codes(no_ends) == [("missing_end", None, None)]
    assert codes(two_starts) == [("multiple_starts", "start-2", None)]
    assert codes(no_start) == [("missing_start", None, None)]


def test_orphans_are_unreachable_and_dead_ends_are_warned_about():
    document = flow(
        agent("orphan"),
        agent("stuck"),
        node("end-2", "end", 0, 0),
        edges=[edge("start", "stuck"), edge("orphan", "end-2")],
    )

    report = graph_validate(document)

    assert [(i.code, i.node_id) for i in report.errors] == [
        ("unreachable", "orphan"),
        ("unreachable", "end-2"),
        ("unreachable", "end"),
    ]
    assert [(i.code, i.node_id) for i in report.warnings] == [
        ("dead_end", "start"),
        ("dead_end", "stuck"),
    ]


def loop_flow(body_back_to: str, exit_handle: str = "done") -> dict[str, Any]:
    repeat = node("repeat", "loop", 0, 0, max_iterations=3, condition={"kind": "text_mention"})
    return flow(
        repeat,
        agent("draft"),
        agent("review"),
        edges=[
            edge("start", "repeat"),
            edge("repeat", "draft", "loop"),
            edge("draft", "review"),
            edge("review", body_back_to),
            edge("repeat", "end", exit_handle),
        ],
    )


def test_a_cycle_through_a_loops_loop_branch_is_bounded():
    assert graph_validate(loop_flow("repeat")).ok


def test_a_cycle_without_a_loop_node_is_unbounded_and_names_its_nodes():
    document = loop_flow("repeat")
    document["edges"].append(edge("review", "draft"))
    document["nodes"][2]["config"]["error_policy"] = {"action": "default"}

    found = [i for i in graph_validate(document).errors if i.code == "unbounded_cycle"]

    [issue] = found
    assert issue.node_id == "draft"
    assert issue.message.startswith("Nodes 'draft', 'review' form a cycle")


def test_a_cycle_closed_by_a_loops_done_branch_is_unbounded():
    document = loop_flow("end")
    document["edges"][-1] = edge("repeat", "start", "done")
    document["edges"].append(edge("review", "end"))

    assert ("unbounded_cycle", "start", None) in codes(document)


def test_unknown_tools_workflows_variables_inputs_and_output():
    document = flow(
        node("t", "tool", 0, 0, tool="web_serch", output_variable="hits"),
        node("w", "subworkflow", 0, 0, workflow_id="wf-2"),
        edges=[edge("start", "t"), edge("t", "w"), edge("w", "end")],
        output="result",
    )
    document["nodes"][0]["config"]["input_mapping"] = {"subject": "topic"}

    report = graph_validate(document, known_tools={"web_search"}, known_workflows={"wf-1"})

    assert [(i.code, i.node_id, i.field) for i in report.errors] == [
        ("unknown_input", "start", "config.input_mapping.subject"),
        ("unknown_tool", "t", "config.tool"),
        ("unknown_variable", "t", "config.output_variable"),
        ("unknown_workflow", "w", "config.workflow_id"),
        ("unknown_output", None, "output"),
    ]
    assert "did you mean 'web_search'?" in report.errors[1].message


def test_existence_checks_are_skipped_when_no_catalogue_is_given():
    document = flow(
        node("t", "tool", 0, 0, tool="anything"), edges=[edge("start", "t"), edge("t", "end")]
    )

    assert graph_validate(document).ok
    assert not graph_validate(document, known_tools=set()).ok


def test_a_stricter_label_limit_applies():
    document = research_pipeline("researcher", "analyst", "writer")
    document["nodes"][1]["label"] = "x" * 50

    assert codes(document, limits=GraphLimits(max_label=40)) == [
        ("label_too_long", "research", "label")
    ]


def test_duplicate_variables_are_refused():
    document = research_pipeline("researcher", "analyst", "writer")
    document["variables"].append(text_variable("topic"))

    assert codes(document) == [("duplicate_variable", None, "variables[4].name")]


def test_the_report_groups_issues_by_node_and_serialises_to_json():
    document = flow(
        router(), agent("x"), edges=[edge("start", "route"), edge("route", "end", "yes")]
    )

    report = graph_validate(document)
    by_node = report.by_node()

    assert list(by_node) == ["route", "x"]
    assert [i.code for i in by_node["x"]] == ["unreachable"]
    payload = json.loads(json.dumps(report.as_json()))
    assert payload["ok"] is False
    assert payload["by_node"]["route"] == [
        {"level": "error", "code": "missing_branch", "message": by_node["route"][0].message}
    ]
    assert payload["errors"][0]["node_id"] == "route"


def test_the_same_graph_always_gives_the_same_report():
    document = flow(
        router(), agent("x"), agent("y"), edges=[edge("start", "route"), edge("x", "y")]
    )

    first = graph_validate(document).as_json()

    assert all(graph_validate(copy.deepcopy(document)).as_json() == first for _ in range(5))


def big_graph(size: int) -> dict[str, Any]:
    """A chain of agents with loops, routers and parallel sections: ~`size` nodes."""
    nodes = [node("start", "start", 0, 0)]
    edges: list[dict[str, Any]] = []
    previous = "start"
    index = 0
    while len(nodes) < size - 5:
        index += 1
        p, a, b, j = (f"p{index}", f"a{index}", f"b{index}", f"j{index}")
        nodes += [
            node(p, "parallel", 0, 0),
            agent(a, "researcher", input_template="{{ topic }}"),
            agent(b, "critic"),
            node(j, "join", 0, 0),
        ]
        edges += [edge(previous, p), edge(p, a), edge(p, b), edge(a, j), edge(b, j)]
        previous = j
    nodes.append(node("end", "end", 0, 0, output="topic"))
    edges.append(edge(previous, "end"))
    return graph(nodes=nodes, edges=edges, variables=[text_variable("topic")], output="topic")


def test_a_500_node_graph_validates_quickly():
    document = big_graph(500)
    assert len(document["nodes"]) >= 495

    # The validator's own CPU time, without a collection of the whole suite's heap that may
    # fall in it (one took this past a second late in a services pass; it takes ~10 ms): the
    # bound guards against a validator that grows worse than linearly, a hundred times over.
    gc.disable()
    try:
        started = time.thread_time()
        report = graph_validate(document, known_agents=AGENTS)
        elapsed = time.thread_time() - started
    finally:
        gc.enable()

    assert report.ok, report.errors[:3]
    assert elapsed < 1.0
