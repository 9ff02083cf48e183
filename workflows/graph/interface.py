"""A workflow's interface: the inputs a run asks for and the variables its nodes share.

The builder edits both as rows; `interface_apply` checks the rows against the schema (messages
name the row and the field) and keeps the start nodes' input mappings in step with renames,
removals and additions, so defining an input is enough to use it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from workflows.graph.schema import InputField, InputSchema, Variable, error_message

# The variable a new input fills when none of that name exists yet.
_VARIABLE_TYPE_OF_INPUT = {
    "string": "string",
    "text": "string",
    "choice": "string",
    "number": "number",
    "integer": "integer",
    "boolean": "boolean",
    "json": "object",
}


class InterfaceError(ValueError):
    """Rows that do not fit the schema: `errors[(kind, index)]` maps a row field to its message."""

    def __init__(self, errors: Mapping[tuple[str, int], Mapping[str, str]]) -> None:
        self.errors = {key: dict(value) for key, value in errors.items()}
        super().__init__(
            "; ".join(
                f"{kind} {index + 1}: {name}: {message}"
                for (kind, index), fields in self.errors.items()
                for name, message in fields.items()
            )
        )


@dataclass
class Interface:
    inputs: dict[str, Any]
    variables: list[dict[str, Any]]
    # Start node id → its config with the input mapping brought up to date.
    start_configs: dict[str, dict[str, Any]] = field(default_factory=dict)


def _field_of(message: str, candidates: Sequence[str], fallback: str) -> str:
    """The row field a model-level message is about ("default does not fit..." → default)."""
    lowered = message.lower()
    for name in candidates:
        # "choices" is spoken of as "a choice"; the others by their own names.
        if name.rstrip("s") in lowered:
            return name
    return fallback


def _row_errors(error: ValidationError, candidates: Sequence[str], fallback: str) -> dict[str, str]:
    errors: dict[str, str] = {}
    for item in error.errors():
        location = [part for part in item["loc"] if isinstance(part, str)]
        message = error_message(item)
        if item["type"] == "string_pattern_mismatch" and location == ["name"]:
            message = (
                "use letters, digits and underscores, starting with a letter or underscore "
                "(at most 64)"
            )
        elif item["type"] == "string_too_short" and location == ["name"]:
            message = "give a name"
        name = location[0] if location else _field_of(message, candidates, fallback)
        errors.setdefault(name, message)
    return errors


def interface_apply(
    graph: Mapping[str, Any],
    *,
    inputs: Sequence[Mapping[str, Any]],
    variables: Sequence[Mapping[str, Any]],
    renames: Mapping[str, str] | None = None,
) -> Interface:
    """The graph's new inputs and variables, checked; raises `InterfaceError` naming each field.

    `renames` maps an input's former name to its new one. Start nodes keep mapping a renamed
    input to the same variable, forget removed inputs, and map each new input to the variable of
    its name, which is created when missing.
    """
    errors: dict[tuple[str, int], dict[str, str]] = {}
    fields: list[InputField] = []
    for index, row in enumerate(inputs):
        try:
            fields.append(InputField.model_validate(dict(row)))
        except ValidationError as exc:
            errors[("input", index)] = _row_errors(
                exc, ("choices", "default", "name", "type"), "name"
            )
    declared: list[Variable] = []
    for index, row in enumerate(variables):
        try:
            declared.append(Variable.model_validate(dict(row)))
        except ValidationError as exc:
            errors[("variable", index)] = _row_errors(
                exc, ("reducer", "default", "name", "type"), "name"
            )
        else:
            problem = _default_problem(declared[-1])
            if problem:
                errors[("variable", index)] = {"default": problem}
    _repeated(errors, "input", [str(row.get("name", "")) for row in inputs])
    _repeated(errors, "variable", [str(row.get("name", "")) for row in variables])
    if errors:
        raise InterfaceError(errors)

    # Stored typed, as the API would send them: "5" from a form box becomes 5.
    fields = [
        item.model_copy(update={"default": item.coerce(item.default)})
        if item.default is not None
        else item
        for item in fields
    ]
    names = [item.name for item in fields]
    variable_names = {item.name for item in declared}
    renames = dict(renames or {})
    start_configs: dict[str, dict[str, Any]] = {}
    added: list[Variable] = []
    for node in graph.get("nodes") or []:
        if not isinstance(node, dict) or node.get("type") != "start":
            continue
        config = dict(node.get("config") or {})
        old = config.get("input_mapping")
        old = old if isinstance(old, dict) else {}
        mapping: dict[str, Any] = {}
        for name, variable in old.items():
            new_name = renames.get(name, name)
            if new_name in names:
                mapping[new_name] = variable
        for item in fields:
            if item.name in mapping:
                continue
            mapping[item.name] = item.name
            if item.name not in variable_names:
                variable_names.add(item.name)
                added.append(
                    Variable(
                        name=item.name,
                        type=_VARIABLE_TYPE_OF_INPUT[item.type],  # type: ignore[arg-type]
                        description=item.help or f"The run's input '{item.name}'.",
                    )
                )
        if mapping != old:
            config["input_mapping"] = mapping
            start_configs[str(node.get("id"))] = config
    schema = InputSchema(fields=fields)
    return Interface(
        inputs=schema.model_dump(mode="json"),
        variables=[item.model_dump(mode="json") for item in [*declared, *added]],
        start_configs=start_configs,
    )


def _repeated(errors: dict[tuple[str, int], dict[str, str]], kind: str, names: list[str]) -> None:
    seen: set[str] = set()
    for index, name in enumerate(names):
        if name and name in seen:
            errors.setdefault((kind, index), {}).setdefault(
                "name", f"another {kind} is already called '{name}'"
            )
        seen.add(name)


_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


def _default_problem(variable: Variable) -> str | None:
    value = variable.default
    if value is None:
        return None
    expected = _PYTHON_TYPES[variable.type]
    # bool is an int subclass; true is never the number someone meant.
    if isinstance(value, bool) and variable.type != "boolean":
        return f"the initial value must be of type '{variable.type}'"
    if not isinstance(value, expected):
        return f"the initial value must be of type '{variable.type}'"
    return None
