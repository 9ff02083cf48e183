"""What changed between two graph documents, for the builder's version diff.

Nodes are matched by id. Edges are matched by what they connect (source, target and branch), not
by id: the builder makes new edge ids when an edge is drawn again, and a redrawn edge is the same
wire to a reader. Documents are compared as stored, so this never raises on odd input; fields it
cannot read count as changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

EdgeKey = tuple[str, str, str | None]

# Top-level parts of a graph other than nodes and edges, named as a person reads them.
_SECTIONS = {
    "variables": "Variables",
    "inputs": "Run inputs",
    "output": "Output",
    "settings": "Run settings",
}


@dataclass
class NodeChange:
    id: str
    label: str
    fields: list[str]


@dataclass
class GraphDiff:
    nodes_added: list[str] = field(default_factory=list)
    nodes_removed: list[str] = field(default_factory=list)
    nodes_changed: list[NodeChange] = field(default_factory=list)
    edges_added: list[EdgeKey] = field(default_factory=list)
    edges_removed: list[EdgeKey] = field(default_factory=list)
    sections_changed: list[str] = field(default_factory=list)
    # Node id → label across both documents, so removed nodes can still be named.
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (
            self.nodes_added
            or self.nodes_removed
            or self.nodes_changed
            or self.edges_added
            or self.edges_removed
            or self.sections_changed
        )

    def describe_edge(self, key: EdgeKey) -> str:
        source, target, branch = key
        text = f"{self.labels.get(source, source)} → {self.labels.get(target, target)}"
        return f"{text} ({branch})" if branch else text


@dataclass
class DiffDrawing:
    """Both documents overlaid: every node and edge once, each marked added, removed or changed."""

    graph: dict[str, Any]
    node_marks: dict[str, str]
    edge_marks: dict[str, str]


def _nodes(document: Any) -> dict[str, dict[str, Any]]:
    nodes = document.get("nodes") if isinstance(document, dict) else None
    found: dict[str, dict[str, Any]] = {}
    for node in nodes if isinstance(nodes, list) else []:
        if isinstance(node, dict) and isinstance(node.get("id"), str):
            found.setdefault(node["id"], node)
    return found


def _edges(document: Any) -> dict[EdgeKey, dict[str, Any]]:
    edges = document.get("edges") if isinstance(document, dict) else None
    found: dict[EdgeKey, dict[str, Any]] = {}
    for edge in edges if isinstance(edges, list) else []:
        if not isinstance(edge, dict):
            continue
        source, target = edge.get("source"), edge.get("target")
        branch = edge.get("source_handle")
        if isinstance(source, str) and isinstance(target, str):
            found.setdefault((source, target, branch if isinstance(branch, str) else None), edge)
    return found


def _label(node: dict[str, Any]) -> str:
    label = node.get("label")
    return label if isinstance(label, str) and label else str(node.get("id"))


def _config(node: dict[str, Any]) -> dict[str, Any]:
    config = node.get("config")
    return config if isinstance(config, dict) else {}


def _changed_fields(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    changed = []
    if old.get("type") != new.get("type"):
        changed.append("type")
    if old.get("label") != new.get("label"):
        changed.append("label")
    old_config = _config(old)
    new_config = _config(new)
    for key in sorted(set(old_config) | set(new_config)):
        if old_config.get(key) != new_config.get(key):
            changed.append(f"config.{key}")
    # Moving a node changes nothing a run does; it is still a change someone made.
    if old.get("position") != new.get("position") and not changed:
        changed.append("position")
    return changed


def graph_diff(old: Any, new: Any) -> GraphDiff:
    old_nodes, new_nodes = _nodes(old), _nodes(new)
    old_edges, new_edges = _edges(old), _edges(new)
    diff = GraphDiff()
    diff.labels = {
        **{node_id: _label(node) for node_id, node in old_nodes.items()},
        **{node_id: _label(node) for node_id, node in new_nodes.items()},
    }
    diff.nodes_added = [node_id for node_id in new_nodes if node_id not in old_nodes]
    diff.nodes_removed = [node_id for node_id in old_nodes if node_id not in new_nodes]
    for node_id, node in new_nodes.items():
        if node_id in old_nodes:
            fields = _changed_fields(old_nodes[node_id], node)
            if fields:
                diff.nodes_changed.append(NodeChange(node_id, _label(node), fields))
    diff.edges_added = [key for key in new_edges if key not in old_edges]
    diff.edges_removed = [key for key in old_edges if key not in new_edges]
    old_doc = old if isinstance(old, dict) else {}
    new_doc = new if isinstance(new, dict) else {}
    diff.sections_changed = [
        title for key, title in _SECTIONS.items() if old_doc.get(key) != new_doc.get(key)
    ]
    return diff


def diff_drawing(old: Any, new: Any, diff: GraphDiff) -> DiffDrawing:
    """The new document plus what the old one had and the new one lost, marked for the canvas."""
    old_nodes, new_nodes = _nodes(old), _nodes(new)
    old_edges, new_edges = _edges(old), _edges(new)
    nodes = [*new_nodes.values(), *(old_nodes[node_id] for node_id in diff.nodes_removed)]
    edges = list(new_edges.values())
    taken = {edge.get("id") for edge in edges}
    edge_marks: dict[str, str] = {}
    for key, edge in new_edges.items():
        if key in diff.edges_added:
            edge_marks[str(edge.get("id"))] = "added"
    for key in diff.edges_removed:
        edge = dict(old_edges[key])
        # An old edge may share its id with a different new one; the drawing needs both.
        if edge.get("id") in taken:
            edge["id"] = f"{edge.get('id')}-removed"
        taken.add(edge.get("id"))
        edges.append(edge)
        edge_marks[str(edge["id"])] = "removed"
    node_marks = dict.fromkeys(diff.nodes_added, "added")
    node_marks.update(dict.fromkeys(diff.nodes_removed, "removed"))
    node_marks.update({change.id: "changed" for change in diff.nodes_changed})
    base = new if isinstance(new, dict) else {}
    return DiffDrawing({**base, "nodes": nodes, "edges": edges}, node_marks, edge_marks)
