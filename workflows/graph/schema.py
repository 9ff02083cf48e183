"""A workflow graph as validated, versioned JSON.

Every workflow version stores one `Graph` as JSON. `schema_version` lets later releases change the
shape: `graph_load` runs the registered upgrade steps before validating, so stored versions never
need rewriting. To change the shape, bump `GRAPH_SCHEMA_VERSION` and register in `UPGRADES` a
function that turns a document of the previous version into the new one.

This module checks shapes only. Per-type node configs, wiring and references are checked by
`graph_validate` (validation.py), which never raises and reports every problem at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from a2a_site.json_input import JsonInputError, json_parse

GRAPH_SCHEMA_VERSION = 1
MAX_LABEL = 120
ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
IDENTIFIER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"

VariableType = Literal["string", "number", "integer", "boolean", "object", "array"]
InputType = Literal["string", "text", "number", "integer", "boolean", "choice", "json"]

_TRUE_WORDS = frozenset({"true", "on", "yes", "1"})
_FALSE_WORDS = frozenset({"false", "off", "no", "0", ""})


@dataclass(frozen=True)
class GraphIssue:
    """One problem, placed so the builder can badge the node or edge it belongs to."""

    code: str
    message: str
    node_id: str | None = None
    edge_id: str | None = None
    field: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return asdict(self)


class GraphError(ValueError):
    """A graph document that cannot be loaded; `issues` says why, in the validator's terms."""

    def __init__(self, issues: Sequence[GraphIssue]) -> None:
        self.issues = list(issues)
        super().__init__("; ".join(issue.message for issue in self.issues) or "invalid graph")


class InputError(ValueError):
    """Run inputs that do not fit the workflow's input schema, as {field: message}."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{name}: {message}" for name, message in self.errors.items()))


class _Strict(BaseModel):
    # A typo in a stored graph should be reported, not silently dropped; NaN would not survive JSON.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Position(_Strict):
    x: float = 0.0
    y: float = 0.0


class Node(_Strict):
    id: str = Field(pattern=ID_PATTERN)
    type: str = Field(min_length=1, max_length=64)
    label: str = Field(default="", max_length=MAX_LABEL)
    position: Position = Field(default_factory=Position)
    # Checked per type by the node-type registry, so one schema serves present and future types.
    config: dict[str, Any] = Field(default_factory=dict)


class Edge(_Strict):
    id: str = Field(pattern=ID_PATTERN)
    source: str = Field(min_length=1, max_length=64)
    target: str = Field(min_length=1, max_length=64)
    # A branch label: a router's route, "error", a loop's "loop"/"done", "approved"/"rejected".
    source_handle: str | None = Field(default=None, min_length=1, max_length=64)
    target_handle: str | None = Field(default=None, min_length=1, max_length=64)


class Variable(_Strict):
    name: str = Field(pattern=IDENTIFIER_PATTERN)
    type: VariableType
    reducer: Literal["replace", "append", "merge"] = "replace"
    default: Any = None
    description: str = Field(default="", max_length=2000)

    @model_validator(mode="after")
    def _reducer_fits_type(self) -> Variable:
        # Concurrent branches writing one variable is only safe with a reducer that can combine.
        if self.reducer == "append" and self.type != "array":
            raise ValueError(f"reducer 'append' needs type 'array', not '{self.type}'")
        if self.reducer == "merge" and self.type != "object":
            raise ValueError(f"reducer 'merge' needs type 'object', not '{self.type}'")
        return self


class InputField(_Strict):
    name: str = Field(pattern=IDENTIFIER_PATTERN)
    type: InputType = "string"
    label: str = Field(default="", max_length=MAX_LABEL)
    help: str = Field(default="", max_length=2000)
    required: bool = True
    default: Any = None
    choices: list[str] = Field(default_factory=list, max_length=200)

    @model_validator(mode="after")
    def _choices_fit_type(self) -> InputField:
        if self.type == "choice" and not self.choices:
            raise ValueError("a 'choice' field needs at least one choice")
        if self.type != "choice" and self.choices:
            raise ValueError(f"choices only apply to 'choice' fields, not '{self.type}'")
        if len(set(self.choices)) != len(self.choices):
            raise ValueError("lists each choice once")
        if self.default is not None:
            try:
                self.coerce(self.default)
            except ValueError as exc:
                raise ValueError(f"default does not fit the field: {exc}") from None
        return self

    def coerce(self, value: Any) -> Any:
        """The typed value of `value`, accepting the strings an HTML form sends."""
        kind = self.type
        if kind in ("string", "text", "choice"):
            if not isinstance(value, str):
                raise ValueError("Enter text.")
            if kind == "choice" and value not in self.choices:
                raise ValueError(f"Choose one of: {', '.join(self.choices)}.")
            return value
        if kind == "boolean":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().lower() in _TRUE_WORDS | _FALSE_WORDS:
                return value.strip().lower() in _TRUE_WORDS
            raise ValueError("Enter true or false.")
        if kind == "integer":
            return _coerce_integer(value)
        if kind == "number":
            return _coerce_number(value)
        # json: forms send the text, the API sends the value itself.
        if isinstance(value, str):
            try:
                return json_parse(value, what="This")
            except JsonInputError as error:
                raise ValueError(f"Enter valid JSON ({error}).") from None
        return value


def _coerce_integer(value: Any) -> int:
    # bool is an int subclass, but True is never what someone meant by 1 in a form.
    if isinstance(value, bool):
        raise ValueError("Enter a whole number.")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise ValueError("Enter a whole number.")


def _coerce_number(value: Any) -> int | float:
    if isinstance(value, bool):
        raise ValueError("Enter a number.")
    number: int | float
    if isinstance(value, int | float):
        number = value
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise ValueError("Enter a number.") from None
    else:
        raise ValueError("Enter a number.")
    if isinstance(number, float) and not math.isfinite(number):
        raise ValueError("Enter a finite number.")
    return number


class InputSchema(_Strict):
    fields: list[InputField] = Field(default_factory=list, max_length=100)

    @field_validator("fields")
    @classmethod
    def _unique_names(cls, value: list[InputField]) -> list[InputField]:
        names = [field.name for field in value]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"input names must be unique; repeated: {', '.join(duplicates)}")
        return value

    def validate_inputs(
        self, data: Mapping[str, Any], *, allow_unknown: bool = False
    ) -> dict[str, Any]:
        """Run inputs coerced to their types; raises `InputError` naming every bad field."""
        values: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for field in self.fields:
            raw = data.get(field.name)
            # An empty form box means "not given"; an unticked checkbox is not sent at all.
            if raw is None or (isinstance(raw, str) and not raw.strip()):
                if field.default is not None:
                    values[field.name] = field.coerce(field.default)
                elif field.type == "boolean":
                    values[field.name] = False
                elif field.required:
                    errors[field.name] = "This field is required."
                else:
                    values[field.name] = None
                continue
            try:
                values[field.name] = field.coerce(raw)
            except ValueError as exc:
                errors[field.name] = str(exc)
        if not allow_unknown:
            known = {field.name for field in self.fields}
            for name in data:
                if name not in known:
                    errors[str(name)] = "Unknown input."
        if errors:
            raise InputError(errors)
        return values


class GraphSettings(_Strict):
    max_steps: int = Field(default=200, ge=1, le=100_000)
    timeout_s: int = Field(default=3600, ge=1, le=7 * 24 * 3600)
    token_budget: int | None = Field(default=None, ge=1)
    cost_budget_usd: float | None = Field(default=None, ge=0)
    budget_action: Literal["stop", "pause"] = "stop"
    # The runs' priority unless their launch says otherwise (workflows.models.RunPriority).
    priority: Literal["low", "normal", "high"] = "normal"


class Graph(_Strict):
    schema_version: int = GRAPH_SCHEMA_VERSION
    nodes: list[Node] = Field(default_factory=list)
    edges: list[Edge] = Field(default_factory=list)
    variables: list[Variable] = Field(default_factory=list)
    inputs: InputSchema = Field(default_factory=InputSchema)
    # A variable name or a node id whose result is the run's output.
    output: str | None = Field(default=None, min_length=1, max_length=64)
    settings: GraphSettings = Field(default_factory=GraphSettings)

    @field_validator("schema_version")
    @classmethod
    def _current_version(cls, value: int) -> int:
        if value != GRAPH_SCHEMA_VERSION:
            raise ValueError(f"expected schema_version {GRAPH_SCHEMA_VERSION}; run graph_upgrade")
        return value


def _upgrade_0_to_1(data: dict[str, Any]) -> dict[str, Any]:
    """The unversioned prototype format: nodes had "kind", edges were {from, to, branch}."""
    # Only lists are rewritten; anything else is left for validation to report as it stands.
    nodes = data.get("nodes")
    edges = data.get("edges")
    upgraded = dict(data)
    if isinstance(nodes, list):
        upgraded["nodes"] = [_upgrade_0_to_1_node(node) for node in nodes]
    if isinstance(edges, list):
        upgraded["edges"] = [_upgrade_0_to_1_edge(index, edge) for index, edge in enumerate(edges)]
    upgraded["schema_version"] = 1
    return upgraded


def _upgrade_0_to_1_node(node: Any) -> Any:
    if isinstance(node, dict) and "kind" in node and "type" not in node:
        return {("type" if key == "kind" else key): value for key, value in node.items()}
    return node


def _upgrade_0_to_1_edge(index: int, edge: Any) -> Any:
    renames = {"from": "source", "to": "target", "branch": "source_handle"}
    if isinstance(edge, dict) and renames.keys() & edge.keys():
        edge = {renames.get(key, key): value for key, value in edge.items()}
        # Prototype edges had no ids; position-based ones are stable for a stored document.
        edge.setdefault("id", f"edge-{index + 1}")
    return edge


UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {0: _upgrade_0_to_1}


def graph_upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """`data` brought to `GRAPH_SCHEMA_VERSION`; raises `GraphError` for unknown versions."""
    # A document without a version predates versioning: that is version 0.
    version = data.get("schema_version", 0)
    if isinstance(version, bool) or not isinstance(version, int):
        raise GraphError(
            [
                GraphIssue(
                    "schema_version_invalid",
                    f"schema_version must be a whole number, not {version!r}.",
                    field="schema_version",
                )
            ]
        )
    if version > GRAPH_SCHEMA_VERSION:
        raise GraphError(
            [
                GraphIssue(
                    "schema_version_unsupported",
                    f"This workflow was saved by a newer A2A Studio (schema {version}, this one "
                    f"reads up to {GRAPH_SCHEMA_VERSION}); upgrade A2A Studio to open it.",
                    field="schema_version",
                )
            ]
        )
    if version < min(UPGRADES, default=GRAPH_SCHEMA_VERSION):
        raise GraphError(
            [
                GraphIssue(
                    "schema_version_unsupported",
                    f"schema_version {version} is older than any this A2A Studio can upgrade.",
                    field="schema_version",
                )
            ]
        )
    upgraded = dict(data)
    while version < GRAPH_SCHEMA_VERSION:
        upgraded = UPGRADES[version](upgraded)
        version += 1
        upgraded["schema_version"] = version
    return upgraded


def format_location(location: Sequence[int | str]) -> str:
    """('config', 'rules', 1, 'value') as 'config.rules[1].value'."""
    text = ""
    for part in location:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def describe_location(location: Sequence[int | str]) -> str:
    """('rules', 1, 'value') as "rule 2, field 'value'": positions counted from 1 for people."""
    parts = _without_repeats(location)
    if len(parts) >= 2 and isinstance(parts[0], str) and isinstance(parts[1], int):
        name = parts[0]
        singular = name[:-1] if name.endswith("s") and not name.endswith("ss") else name
        head = f"{singular} {parts[1] + 1}"
        return f"{head}, field '{format_location(parts[2:])}'" if parts[2:] else head
    return f"field '{format_location(parts)}'" if parts else ""


def _without_repeats(location: Sequence[int | str]) -> list[int | str]:
    # Tagged unions repeat the tag in the location: ('any_of', 'any_of', 0) means any_of[0].
    parts: list[int | str] = []
    for part in location:
        if not (parts and isinstance(part, str) and part == parts[-1]):
            parts.append(part)
    return parts


def error_message(item: Mapping[str, Any]) -> str:
    if item.get("type") == "extra_forbidden":
        return "unknown field (a typo?)"
    return str(item.get("msg", "invalid")).removeprefix("Value error, ")


def issues_from_validation_error(error: ValidationError, data: Any) -> list[GraphIssue]:
    """Pydantic errors on a graph document, placed on the node or edge they belong to."""
    issues: list[GraphIssue] = []
    for item in error.errors():
        location = _without_repeats([part for part in item["loc"] if isinstance(part, int | str)])
        code = {"missing": "missing_field", "extra_forbidden": "unknown_field"}.get(
            item["type"], "invalid_field"
        )
        message = error_message(item)
        owner = _owner(location, data)
        if owner is not None:
            kind, owner_id, rest = owner
            field = format_location(rest) or None
            where = f" {describe_location(rest)}:" if rest else ""
            issues.append(
                GraphIssue(
                    code,
                    f"{kind.title()} '{owner_id}':{where} {message}",
                    node_id=owner_id if kind == "node" else None,
                    edge_id=owner_id if kind == "edge" else None,
                    field=field,
                )
            )
        else:
            field = format_location(location) or None
            where = f"Field '{field}'" if field else "The graph"
            issues.append(GraphIssue(code, f"{where}: {message}", field=field))
    return issues


def _owner(location: list[int | str], data: Any) -> tuple[str, str, list[int | str]] | None:
    """('node', id, rest) when `location` is inside a node or edge that has a usable id."""
    if len(location) < 3 or location[0] not in ("nodes", "edges") or not isinstance(data, dict):
        return None
    items = data.get(location[0])
    index = location[1]
    if not isinstance(items, list) or not isinstance(index, int) or index >= len(items):
        return None
    item = items[index]
    owner_id = item.get("id") if isinstance(item, dict) else None
    # An id that is itself broken cannot name the owner; the caller then gives the full path.
    if not isinstance(owner_id, str) or location[2] == "id":
        return None
    kind = "node" if location[0] == "nodes" else "edge"
    return kind, owner_id, location[2:]


def graph_load(data: Any) -> Graph:
    """A `Graph` from stored or submitted JSON, upgraded first; raises `GraphError`.

    Shapes only: run `graph_validate` for wiring, node configs and references.
    """
    if not isinstance(data, dict):
        raise GraphError([GraphIssue("not_an_object", "A workflow graph must be a JSON object.")])
    upgraded = graph_upgrade(data)
    try:
        return Graph.model_validate(upgraded)
    except ValidationError as exc:
        raise GraphError(issues_from_validation_error(exc, upgraded)) from None


def graph_dump(graph: Graph) -> dict[str, Any]:
    """JSON-ready, keys in field order, so dumping a loaded dump gives the same document."""
    return graph.model_dump(mode="json")
