"""Properties: graph_validate answers every input with a report, and dumps round-trip."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workflows.graph import NODE_TYPES, GraphError, graph_dump, graph_load, graph_validate
from workflows.graph.examples import group_chat_debate, parallel_research, research_pipeline

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)
ids = st.sampled_from(["start", "end", "research", "analysis", "x", "", "a b", "-"]) | st.text(
    max_size=8
)
node_types = st.sampled_from(sorted(NODE_TYPES)) | st.text(max_size=10)
handles = st.none() | st.sampled_from(["loop", "done", "error", "approved", "yes", ""])
agent_ids = st.text(alphabet="abcdefgh-_", min_size=1, max_size=8)


@st.composite
def example_graphs(draw: st.DrawFn) -> dict[str, Any]:
    """One of the example graphs with drawn agent ids, positions and labels: always valid."""
    a, b, c = draw(st.lists(agent_ids, min_size=3, max_size=3, unique=True))
    document = draw(
        st.sampled_from(
            [
                research_pipeline(a, b, c),
                parallel_research(a, b, c),
                group_chat_debate([a, b, c], max_messages=draw(st.integers(1, 1000))),
            ]
        )
    )
    for node in document["nodes"]:
        node["label"] = draw(st.text(max_size=30))
        finite = st.floats(allow_nan=False, allow_infinity=False, width=32)
        node["position"] = {"x": draw(finite), "y": draw(finite)}
    return document


@st.composite
def mutated_graphs(draw: st.DrawFn) -> dict[str, Any]:
    """A plausible graph with a few random edits: the inputs a buggy or hostile client sends."""
    document = copy.deepcopy(draw(example_graphs()))
    for _ in range(draw(st.integers(0, 4))):
        nodes, edges = document.get("nodes"), document.get("edges")
        action = draw(
            st.sampled_from(
                [
                    "set_top",
                    "drop_top",
                    "node_field",
                    "node_config",
                    "add_node",
                    "add_edge",
                    "edge_field",
                    "duplicate_node",
                    "delete_node",
                ]
            )
        )
        if action == "set_top":
            key = draw(
                st.sampled_from(
                    [
                        "nodes",
                        "edges",
                        "variables",
                        "inputs",
                        "output",
                        "settings",
                        "schema_version",
                        "extra",
                    ]
                )
            )
            document[key] = draw(json_values)
        elif action == "drop_top" and document:
            del document[draw(st.sampled_from(sorted(document)))]
        elif action in ("node_field", "node_config") and isinstance(nodes, list) and nodes:
            node = draw(st.sampled_from(nodes))
            if isinstance(node, dict):
                if action == "node_field":
                    key = draw(st.sampled_from(["id", "type", "label", "position", "config"]))
                    node[key] = draw(json_values | node_types | ids)
                elif isinstance(node.get("config"), dict):
                    key = draw(
                        st.text(max_size=12) | st.sampled_from(sorted(node["config"]) or ["x"])
                    )
                    node["config"][key] = draw(json_values | agent_ids)
        elif action == "add_node" and isinstance(nodes, list):
            nodes.append({"id": draw(ids), "type": draw(node_types), "config": draw(json_values)})
        elif action == "add_edge" and isinstance(edges, list):
            edges.append(
                {
                    "id": draw(ids),
                    "source": draw(ids),
                    "target": draw(ids),
                    "source_handle": draw(handles),
                }
            )
        elif action == "edge_field" and isinstance(edges, list) and edges:
            edge = draw(st.sampled_from(edges))
            if isinstance(edge, dict):
                key = draw(st.sampled_from(["id", "source", "target", "source_handle", "x"]))
                edge[key] = draw(ids | handles | json_values)
        elif action == "duplicate_node" and isinstance(nodes, list) and nodes:
            nodes.append(copy.deepcopy(draw(st.sampled_from(nodes))))
        elif action == "delete_node" and isinstance(nodes, list) and nodes:
            nodes.pop(draw(st.integers(0, len(nodes) - 1)))
    return document


def assert_is_a_report(document: Any) -> None:
    report = graph_validate(document, known_agents={"abc", "def"}, known_tools=[])
    assert [issue for issue in report.errors if issue.code == "internal_error"] == []
    assert report.ok == (report.graph is not None and not report.errors)
    assert isinstance(report.as_json(), dict)
    for issue in [*report.errors, *report.warnings]:
        assert issue.code and issue.message


@SETTINGS
@given(json_values)
def test_validate_answers_any_json_value_with_a_report(document: Any):
    assert_is_a_report(document)


@SETTINGS
@given(
    st.dictionaries(
        st.sampled_from(
            ["nodes", "edges", "variables", "inputs", "output", "settings", "schema_version"]
        ),
        json_values,
    )
)
def test_validate_answers_any_graph_like_object_with_a_report(document: dict[str, Any]):
    assert_is_a_report(document)


@SETTINGS
@given(mutated_graphs())
def test_validate_answers_mutated_graphs_with_a_report(document: dict[str, Any]):
    assert_is_a_report(document)


@SETTINGS
@given(example_graphs())
def test_generated_example_graphs_are_valid_and_round_trip(document: dict[str, Any]):
    assert graph_validate(document).ok
    dumped = graph_dump(graph_load(document))
    assert graph_dump(graph_load(dumped)) == dumped


@SETTINGS
@given(mutated_graphs())
def test_whatever_loads_round_trips(document: dict[str, Any]):
    try:
        dumped = graph_dump(graph_load(document))
    except GraphError:
        return
    assert graph_dump(graph_load(copy.deepcopy(dumped))) == dumped
