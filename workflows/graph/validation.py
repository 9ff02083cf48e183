"""`graph_validate`: every problem of a workflow graph at once, placed on its node or edge.

The builder posts its graph here on every change and badges nodes from `report.by_node()`; the
API and the run form refuse a graph whose report is not `ok`. The document comes from a browser,
so this never raises: anything at all comes back as a report.
"""

from __future__ import annotations

import difflib
import math
from collections import defaultdict, deque
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from workflows.graph.nodes import ERROR_BRANCH, NODE_TYPES, NodeConfig, NodeType
from workflows.graph.schema import (
    MAX_LABEL,
    Edge,
    Graph,
    GraphError,
    GraphIssue,
    Node,
    describe_location,
    error_message,
    format_location,
    graph_upgrade,
    issues_from_validation_error,
)

__all__ = ["GraphIssue", "GraphLimits", "ValidationReport", "graph_validate"]


@dataclass(frozen=True)
class GraphLimits:
    max_nodes: int = 500
    max_edges: int = 2000
    max_json_bytes: int = 1_000_000
    max_depth: int = 20
    max_label: int = MAX_LABEL


@dataclass
class ValidationReport:
    graph: Graph | None
    errors: list[GraphIssue] = field(default_factory=list)
    warnings: list[GraphIssue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.graph is not None and not self.errors

    def by_node(self) -> dict[str, list[GraphIssue]]:
        """Errors then warnings per node id, for the builder's badges."""
        found: dict[str, list[GraphIssue]] = {}
        for issue in [*self.errors, *self.warnings]:
            if issue.node_id is not None:
                found.setdefault(issue.node_id, []).append(issue)
        return found

    def as_json(self) -> dict[str, Any]:
        errors = {id(issue) for issue in self.errors}
        return {
            "ok": self.ok,
            "errors": [issue.as_dict() for issue in self.errors],
            "warnings": [issue.as_dict() for issue in self.warnings],
            "by_node": {
                node_id: [
                    {
                        "level": "error" if id(issue) in errors else "warning",
                        "code": issue.code,
                        "message": issue.message,
                    }
                    for issue in issues
                ]
                for node_id, issues in self.by_node().items()
            },
        }


def graph_validate(
    data: Any,
    *,
    known_agents: Collection[str] | None = None,
    known_tools: Collection[str] | None = None,
    known_workflows: Collection[str] | None = None,
    limits: GraphLimits = GraphLimits(),  # noqa: B008 - frozen, so sharing the default is safe
) -> ValidationReport:
    """The report on `data`; `known_*` of None skips that existence check."""
    try:
        return _validate(data, known_agents, known_tools, known_workflows, limits)
    except Exception as exc:  # a bug here must not become a 500 in the builder
        issue = GraphIssue("internal_error", f"The graph could not be checked: {exc!r}")
        return ValidationReport(graph=None, errors=[issue])


def _validate(
    data: Any,
    known_agents: Collection[str] | None,
    known_tools: Collection[str] | None,
    known_workflows: Collection[str] | None,
    limits: GraphLimits,
) -> ValidationReport:
    if not isinstance(data, dict):
        issue = GraphIssue("not_an_object", "A workflow graph must be a JSON object.")
        return ValidationReport(graph=None, errors=[issue])
    # Cheap refusals first, so a huge or hostile document never reaches pydantic.
    size_issues = _size_issues(data, limits)
    if size_issues:
        return ValidationReport(graph=None, errors=size_issues)
    try:
        upgraded = graph_upgrade(data)
    except GraphError as exc:
        return ValidationReport(graph=None, errors=exc.issues)
    try:
        graph = Graph.model_validate(upgraded)
    except ValidationError as exc:
        return ValidationReport(graph=None, errors=issues_from_validation_error(exc, upgraded))
    checker = _Checker(graph, limits)
    checker.run(known_agents, known_tools, known_workflows)
    return ValidationReport(graph=graph, errors=checker.errors, warnings=checker.warnings)


def _size_issues(data: dict[str, Any], limits: GraphLimits) -> list[GraphIssue]:
    nodes, edges = data.get("nodes"), data.get("edges")
    if isinstance(nodes, list) and len(nodes) > limits.max_nodes:
        message = f"The graph has {len(nodes)} nodes; the limit is {limits.max_nodes}."
        return [GraphIssue("too_many_nodes", message, field="nodes")]
    if isinstance(edges, list) and len(edges) > limits.max_edges:
        message = f"The graph has {len(edges)} edges; the limit is {limits.max_edges}."
        return [GraphIssue("too_many_edges", message, field="edges")]
    # One pass that stops at the first limit crossed: no recursion, no serialising to measure.
    size = 0
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > limits.max_depth:
                message = f"The graph is nested more than {limits.max_depth} levels deep."
                return [GraphIssue("too_deep", message)]
            size += 2 + len(value)
            if size > limits.max_json_bytes:
                break
            if isinstance(value, dict):
                for key, item in value.items():
                    if not isinstance(key, str):
                        return [GraphIssue("not_json", f"Object key {key!r} is not a string.")]
                    size += len(key) + 3
                    stack.append((item, depth + 1))
            else:
                stack.extend((item, depth + 1) for item in value)
        elif isinstance(value, str):
            size += len(value.encode("utf-8", "surrogatepass")) + 2
        elif value is None or isinstance(value, bool):
            size += 5
        elif isinstance(value, int):
            size += value.bit_length() // 3 + 2
        elif isinstance(value, float):
            if not math.isfinite(value):
                return [GraphIssue("not_json", f"{value!r} is not a JSON number.")]
            size += 24
        else:
            message = f"A value of type {type(value).__name__} is not JSON."
            return [GraphIssue("not_json", message)]
        if size > limits.max_json_bytes:
            break
    if size > limits.max_json_bytes:
        message = f"The graph is larger than {limits.max_json_bytes:,} bytes of JSON."
        return [GraphIssue("too_large", message)]
    return []


def _close(name: str, candidates: Iterable[str]) -> str:
    pool = list(candidates)
    # difflib is quadratic-ish; a typo hint is not worth a slow check on huge catalogues.
    if len(pool) > 2000:
        return ""
    matches = difflib.get_close_matches(name, pool, n=1)
    return f"; did you mean '{matches[0]}'?" if matches else ""


def _handle_name(handle: str | None) -> str:
    return "the default output" if handle is None else f"branch '{handle}'"


class _Checker:
    """The semantic checks, run in a fixed order so the same graph always gives the same report."""

    def __init__(self, graph: Graph, limits: GraphLimits) -> None:
        self.graph = graph
        self.limits = limits
        self.errors: list[GraphIssue] = []
        self.warnings: list[GraphIssue] = []
        # First occurrence wins; later duplicates are reported and otherwise ignored.
        self.nodes: dict[str, Node] = {}
        for node in graph.nodes:
            self.nodes.setdefault(node.id, node)
        self.types: dict[str, NodeType] = {}
        self.configs: dict[str, NodeConfig] = {}
        self.edges = [
            edge for edge in graph.edges if edge.source in self.nodes and edge.target in self.nodes
        ]
        self.outgoing: dict[str, list[Edge]] = defaultdict(list)
        self.incoming: dict[str, list[Edge]] = defaultdict(list)
        for edge in self.edges:
            self.outgoing[edge.source].append(edge)
            self.incoming[edge.target].append(edge)

    def error(self, code: str, message: str, **where: str | None) -> None:
        self.errors.append(GraphIssue(code, message, **where))

    def warning(self, code: str, message: str, **where: str | None) -> None:
        self.warnings.append(GraphIssue(code, message, **where))

    def run(
        self,
        known_agents: Collection[str] | None,
        known_tools: Collection[str] | None,
        known_workflows: Collection[str] | None,
    ) -> None:
        self.check_ids()
        self.check_nodes()
        self.check_variables()
        self.check_edges()
        self.check_start_and_end()
        self.check_wiring()
        self.check_references(
            {"agent": known_agents, "tool": known_tools, "workflow": known_workflows}
        )
        self.check_output()
        self.check_reachability()
        self.check_cycles()

    def check_ids(self) -> None:
        seen: set[str] = set()
        for node in self.graph.nodes:
            if node.id in seen:
                self.error(
                    "duplicate_node_id",
                    f"Node id '{node.id}' is used by more than one node; ids must be unique.",
                    node_id=node.id,
                    field="id",
                )
            seen.add(node.id)
        seen = set()
        for edge in self.graph.edges:
            if edge.id in seen:
                self.error(
                    "duplicate_edge_id",
                    f"Edge id '{edge.id}' is used by more than one edge; ids must be unique.",
                    edge_id=edge.id,
                    field="id",
                )
            seen.add(edge.id)

    def check_nodes(self) -> None:
        for node in self.nodes.values():
            if len(node.label) > self.limits.max_label:
                self.error(
                    "label_too_long",
                    f"Node '{node.id}': the label has {len(node.label)} characters; "
                    f"the limit is {self.limits.max_label}.",
                    node_id=node.id,
                    field="label",
                )
            node_type = NODE_TYPES.get(node.type)
            if node_type is None:
                self.error(
                    "unknown_node_type",
                    f"Node '{node.id}': unknown type '{node.type}'{_close(node.type, NODE_TYPES)}",
                    node_id=node.id,
                    field="type",
                )
                continue
            self.types[node.id] = node_type
            try:
                self.configs[node.id] = node_type.config_model.model_validate(node.config)
            except ValidationError as exc:
                for item in exc.errors():
                    location = [part for part in item["loc"] if isinstance(part, int | str)]
                    where = describe_location(location)
                    self.error(
                        "invalid_config",
                        f"Node '{node.id}': {where + ': ' if where else ''}{error_message(item)}",
                        node_id=node.id,
                        field=format_location(["config", *location]),
                    )

    def check_variables(self) -> None:
        seen: set[str] = set()
        for index, variable in enumerate(self.graph.variables):
            if variable.name in seen:
                self.error(
                    "duplicate_variable",
                    f"Variable '{variable.name}' is declared more than once.",
                    field=f"variables[{index}].name",
                )
            seen.add(variable.name)
        self.variables = seen

    def check_edges(self) -> None:
        for edge in self.graph.edges:
            for end in ("source", "target"):
                node_id = getattr(edge, end)
                if node_id not in self.nodes:
                    self.error(
                        f"edge_unknown_{end}",
                        f"Edge '{edge.id}': its {end} '{node_id}' is not a node"
                        f"{_close(node_id, self.nodes)}",
                        edge_id=edge.id,
                        field=end,
                    )

    def check_start_and_end(self) -> None:
        starts = [node for node in self.nodes.values() if node.type == "start"]
        if not starts:
            self.error("missing_start", "The graph needs a start node.")
        for extra in starts[1:]:
            self.error(
                "multiple_starts",
                f"Node '{extra.id}': the graph already starts at '{starts[0].id}'; "
                "keep exactly one start node.",
                node_id=extra.id,
            )
        if not any(node.type == "end" for node in self.nodes.values()):
            self.error("missing_end", "The graph needs at least one end node.")

    def check_wiring(self) -> None:
        for node_id, config in self.configs.items():
            node_type = self.types[node_id]
            outgoing = self.outgoing[node_id]
            branches = node_type.branches(config)
            allowed: list[str | None] = list(branches) if branches is not None else [None]
            wants_error_branch = config.error_policy.action == "error_branch"
            if wants_error_branch:
                allowed.append(ERROR_BRANCH)
            by_handle: dict[str | None, list[Edge]] = defaultdict(list)
            for edge in outgoing:
                by_handle[edge.source_handle].append(edge)
                if edge.source_handle not in allowed:
                    self.error(
                        "unknown_branch",
                        self._unknown_branch_message(node_id, edge, branches, wants_error_branch),
                        node_id=node_id,
                        edge_id=edge.id,
                        field="source_handle",
                    )
            for branch in [*(branches or []), *([ERROR_BRANCH] if wants_error_branch else [])]:
                if branch not in by_handle:
                    why = (
                        "its error policy is 'error_branch'"
                        if branch == ERROR_BRANCH
                        else f"a {node_type.type} node must wire each branch"
                    )
                    self.error(
                        "missing_branch",
                        f"Node '{node_id}': branch '{branch}' is not connected, and {why}; "
                        "connect it to the next step.",
                        node_id=node_id,
                        field="config.error_policy.action" if branch == ERROR_BRANCH else None,
                    )
            if not node_type.fan_out:
                for handle, edges in by_handle.items():
                    if handle in allowed and len(edges) > 1:
                        names = ", ".join(f"'{edge.id}'" for edge in edges)
                        self.error(
                            "ambiguous_output",
                            f"Node '{node_id}': {len(edges)} edges ({names}) leave by "
                            f"{_handle_name(handle)}; use a parallel node to run steps side "
                            "by side.",
                            node_id=node_id,
                        )
            self._check_counts(node_id, node_type, len(self.incoming[node_id]), outgoing)

    def _unknown_branch_message(
        self, node_id: str, edge: Edge, branches: list[str] | None, wants_error_branch: bool
    ) -> str:
        handle = edge.source_handle
        start = f"Node '{node_id}': edge '{edge.id}'"
        if branches is None and handle == ERROR_BRANCH:
            return (
                f"{start} leaves by the 'error' branch, but the node's error policy is not "
                "'error_branch'; set config.error_policy.action to 'error_branch'."
            )
        if branches is None:
            return f"{start} leaves by branch '{handle}', but this node has one unlabelled output."
        choices = ", ".join(f"'{name}'" for name in branches)
        if wants_error_branch:
            choices += ", 'error'"
        if handle is None:
            return f"{start} needs a branch label, one of: {choices}."
        return f"{start} leaves by branch '{handle}', which is not one of: {choices}."

    def _check_counts(
        self, node_id: str, node_type: NodeType, incoming: int, outgoing: list[Edge]
    ) -> None:
        # An error branch is a side exit, not one of the outputs a node's rules count.
        outputs = sum(1 for edge in outgoing if edge.source_handle != ERROR_BRANCH)
        kind = node_type.type
        if incoming < node_type.min_in:
            self.error(
                "too_few_inputs",
                f"Node '{node_id}': a {kind} node needs at least "
                f"{_edges(node_type.min_in, 'incoming')}; it has {incoming}.",
                node_id=node_id,
            )
        if node_type.max_in is not None and incoming > node_type.max_in:
            self.error(
                "too_many_inputs",
                f"Node '{node_id}': a {kind} node takes at most "
                f"{_edges(node_type.max_in, 'incoming')}; it has {incoming}.",
                node_id=node_id,
            )
        if outputs < node_type.min_out:
            self.error(
                "too_few_outputs",
                f"Node '{node_id}': a {kind} node needs at least "
                f"{_edges(node_type.min_out, 'outgoing')}; it has {outputs}.",
                node_id=node_id,
            )
        if node_type.max_out is not None and outputs > node_type.max_out:
            self.error(
                "too_many_outputs",
                f"Node '{node_id}': a {kind} node takes at most "
                f"{_edges(node_type.max_out, 'outgoing')}; it has {outputs}.",
                node_id=node_id,
            )

    def check_references(self, known: dict[str, Collection[str] | None]) -> None:
        inputs = {input_field.name for input_field in self.graph.inputs.fields}
        for node_id, config in self.configs.items():
            for reference in self.types[node_id].references(config):
                if reference.kind == "variable":
                    pool: Collection[str] | None = self.variables
                else:
                    pool = known.get(reference.kind)
                if pool is None or reference.id in pool:
                    continue
                self.error(
                    f"unknown_{reference.kind}",
                    f"Node '{node_id}': {reference.kind} '{reference.id}' in field "
                    f"'{reference.field}' does not exist{_close(reference.id, pool)}",
                    node_id=node_id,
                    field=reference.field,
                )
            mapping = getattr(config, "input_mapping", None)
            if self.types[node_id].type == "start" and isinstance(mapping, dict):
                for name in mapping:
                    if name not in inputs:
                        self.error(
                            "unknown_input",
                            f"Node '{node_id}': input '{name}' in field 'config.input_mapping' "
                            f"is not one of the graph's inputs{_close(name, inputs)}",
                            node_id=node_id,
                            field=f"config.input_mapping.{name}",
                        )

    def check_output(self) -> None:
        output = self.graph.output
        if output is not None and output not in self.variables and output not in self.nodes:
            self.error(
                "unknown_output",
                f"The output '{output}' is neither a variable nor a node"
                f"{_close(output, [*self.variables, *self.nodes])}",
                field="output",
            )

    def _walk(self, roots: Iterable[str], forward: bool) -> set[str]:
        seen = set(roots)
        queue = deque(seen)
        while queue:
            current = queue.popleft()
            edges = self.outgoing[current] if forward else self.incoming[current]
            for edge in edges:
                following = edge.target if forward else edge.source
                if following not in seen:
                    seen.add(following)
                    queue.append(following)
        return seen

    def check_reachability(self) -> None:
        starts = [node_id for node_id, node in self.nodes.items() if node.type == "start"]
        ends = [node_id for node_id, node in self.nodes.items() if node.type == "end"]
        reached = self._walk(starts, forward=True) if starts else set(self.nodes)
        for node_id in self.nodes:
            if node_id not in reached:
                self.error(
                    "unreachable",
                    f"Node '{node_id}' cannot be reached from the start node; connect it or "
                    "delete it.",
                    node_id=node_id,
                )
        if not ends:
            return
        finishing = self._walk(ends, forward=False)
        for node_id in self.nodes:
            if node_id in reached and node_id not in finishing:
                self.warning(
                    "dead_end",
                    f"Node '{node_id}' has no path to an end node; a run that gets there "
                    "finishes without an output.",
                    node_id=node_id,
                )

    def check_cycles(self) -> None:
        # Every cycle must repeat through a loop node's "loop" branch, which max_iterations
        # bounds; so without those edges the graph must be acyclic.
        successors: dict[str, list[str]] = {node_id: [] for node_id in self.nodes}
        for edge in self.edges:
            if self.nodes[edge.source].type == "loop" and edge.source_handle == "loop":
                continue
            successors[edge.source].append(edge.target)
        for component in _strongly_connected(successors):
            if len(component) == 1 and component[0] not in successors[component[0]]:
                continue
            names = ", ".join(f"'{node_id}'" for node_id in component)
            self.error(
                "unbounded_cycle",
                f"Nodes {names} form a cycle that does not repeat through a loop node's 'loop' "
                "branch, so nothing bounds it; route the repetition through a loop node.",
                node_id=component[0],
            )


def _edges(count: int | None, kind: str) -> str:
    return f"{count} {kind} edge" if count == 1 else f"{count} {kind} edges"


def _strongly_connected(successors: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's components, iteratively (a 500-node chain would overflow the recursion limit),
    each in document order, listed by their first node's position."""
    position = {node_id: index for index, node_id in enumerate(successors)}
    index_of: dict[str, int] = {}
    lowlink: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in successors:
        if root in index_of:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node_id, next_child = work.pop()
            if next_child == 0:
                index_of[node_id] = lowlink[node_id] = counter
                counter += 1
                stack.append(node_id)
                on_stack.add(node_id)
            children = successors[node_id]
            descended = False
            for child_index in range(next_child, len(children)):
                child = children[child_index]
                if child not in index_of:
                    work.append((node_id, child_index + 1))
                    work.append((child, 0))
                    descended = True
                    break
                if child in on_stack:
                    lowlink[node_id] = min(lowlink[node_id], index_of[child])
            if descended:
                continue
            if lowlink[node_id] == index_of[node_id]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node_id:
                        break
                components.append(sorted(component, key=position.__getitem__))
            if work:
                parent = work[-1][0]
                lowlink[parent] = min(lowlink[parent], lowlink[node_id])
    return sorted(components, key=lambda component: position[component[0]])
