"""The workflow graph: its versioned JSON schema, node types and validation (pure Python).

The builder, the API, the run form and the engine all go through these names.
"""

from workflows.graph import consensus, remote_agent  # noqa: F401  (register their nodes)
from workflows.graph.nodes import NODE_TYPES, NodeConfig, NodeType, Reference, register_node_type
from workflows.graph.schema import (
    GRAPH_SCHEMA_VERSION,
    UPGRADES,
    Edge,
    Graph,
    GraphError,
    GraphIssue,
    GraphSettings,
    InputError,
    InputField,
    InputSchema,
    Node,
    Position,
    Variable,
    graph_dump,
    graph_load,
    graph_upgrade,
)
from workflows.graph.validation import GraphLimits, ValidationReport, graph_validate

__all__ = [
    "GRAPH_SCHEMA_VERSION",
    "NODE_TYPES",
    "UPGRADES",
    "Edge",
    "Graph",
    "GraphError",
    "GraphIssue",
    "GraphLimits",
    "GraphSettings",
    "InputError",
    "InputField",
    "InputSchema",
    "Node",
    "NodeConfig",
    "NodeType",
    "Position",
    "Reference",
    "ValidationReport",
    "Variable",
    "graph_dump",
    "graph_load",
    "graph_upgrade",
    "graph_validate",
    "register_node_type",
]
