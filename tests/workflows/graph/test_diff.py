"""The version diff: what a reader of two versions would call added, removed and changed."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from workflows.graph import examples
from workflows.graph.diff import diff_drawing, graph_diff


def pipeline() -> dict[str, Any]:
    return examples.research_pipeline("r", "a", "w")


def test_the_same_graph_has_no_differences() -> None:
    assert graph_diff(pipeline(), pipeline()).empty


def test_a_node_added_with_its_edges_and_a_node_removed() -> None:
    old, new = pipeline(), pipeline()
    writer = next(node for node in new["nodes"] if node["id"] == "writing")
    new["nodes"].remove(writer)
    new["edges"] = [e for e in new["edges"] if "writing" not in (e["source"], e["target"])]
    new["nodes"].append(examples.node("editor", "agent", 900, 0, agent_id="w"))
    new["edges"] += [examples.edge("analysis", "editor"), examples.edge("editor", "end")]

    diff = graph_diff(old, new)

    assert diff.nodes_added == ["editor"]
    assert diff.nodes_removed == ["writing"]
    assert ("analysis", "editor", None) in diff.edges_added
    assert ("analysis", "writing", None) in diff.edges_removed
    assert diff.describe_edge(("analysis", "writing", None)) == "Analysis → Writing"


def test_a_changed_config_names_the_field_and_a_redrawn_edge_is_the_same_edge() -> None:
    old, new = pipeline(), pipeline()
    analyst = next(node for node in new["nodes"] if node["id"] == "analysis")
    analyst["config"]["input_template"] = "Analyse: {{ findings }}"
    for edge in new["edges"]:
        edge["id"] = edge["id"] + "-redrawn"

    diff = graph_diff(old, new)

    assert [(c.id, c.fields) for c in diff.nodes_changed] == [
        ("analysis", ["config.input_template"])
    ]
    assert not diff.edges_added and not diff.edges_removed


def test_settings_and_inputs_changes_are_listed_by_section() -> None:
    old, new = pipeline(), pipeline()
    new["settings"] = {"max_steps": 20}
    new["inputs"]["fields"][0]["label"] = "Subject"
    assert graph_diff(old, new).sections_changed == ["Run inputs", "Run settings"]


def test_the_drawing_keeps_removed_nodes_and_edges_marked() -> None:
    old = pipeline()
    new = copy.deepcopy(old)
    new["nodes"] = [n for n in new["nodes"] if n["id"] != "writing"]
    new["edges"] = [e for e in new["edges"] if "writing" not in (e["source"], e["target"])]
    new["edges"].append(examples.edge("analysis", "end"))
    diff = graph_diff(old, new)

    drawing = diff_drawing(old, new, diff)

    assert drawing.node_marks == {"writing": "removed"}
    assert {n["id"] for n in drawing.graph["nodes"]} == {n["id"] for n in old["nodes"]}
    marked = {
        (e["source"], e["target"]): drawing.edge_marks.get(e["id"]) for e in drawing.graph["edges"]
    }
    assert marked[("analysis", "end")] == "added"
    assert marked[("writing", "end")] == "removed"
    assert len({e["id"] for e in drawing.graph["edges"]}) == len(drawing.graph["edges"])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=20,
)


@given(json_values, json_values)
def test_never_raises_on_arbitrary_documents(old: Any, new: Any) -> None:
    diff = graph_diff(old, new)
    diff_drawing(old, new, diff)
