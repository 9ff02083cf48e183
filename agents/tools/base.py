"""What a tool is: a spec the model sees, a context the studio supplies, and a result it returns.

Built-in tools, MCP tools and remote A2A agents all present this same shape, so the registry and
the agent loop need not care where a tool comes from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, Protocol, runtime_checkable

DEFAULT_TIMEOUT_S: Final = 30.0

Identifier = int | str


class ToolError(Exception):
    """An expected failure whose message the model should see (bad input, refused URL, ...)."""


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    # A JSON schema for the arguments object, in the subset `schema_errors` understands.
    parameters: Mapping[str, Any]
    timeout_s: float = DEFAULT_TIMEOUT_S

    def openai_tool(self) -> dict[str, Any]:
        """The entry for the `tools` list of an OpenAI-style chat completion request."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": dict(self.parameters),
            },
        }


@dataclass(frozen=True)
class ToolContext:
    workspace_id: Identifier | None = None
    run_id: Identifier | None = None
    step_id: Identifier | None = None
    variables: Mapping[str, Any] = field(default_factory=dict)
    # Hosts this call may reach at private or loopback addresses: the administrator's tool
    # allow-list (A2A_TOOL_ALLOWED_HOSTS) narrowed by the workspace's (`tool_hosts_for`). Empty:
    # public addresses only. Never the providers' allow-list.
    allowed_hosts: tuple[str, ...] = ()
    # When set, the only hosts this call may reach at all (the workspace chose a closed list).
    only_hosts: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        # A snapshot behind a read-only proxy: a tool cannot change the workflow's variables, and
        # later changes by the workflow do not leak into a call already under way.
        object.__setattr__(self, "variables", MappingProxyType(dict(self.variables)))


@dataclass(frozen=True)
class ToolResult:
    content: str
    is_error: bool = False
    data: Any = None

    @classmethod
    def error(cls, message: str) -> ToolResult:
        return cls(content=message, is_error=True)


@runtime_checkable
class Tool(Protocol):
    @property
    def spec(self) -> ToolSpec: ...

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        """Run with arguments already validated against `spec.parameters`."""
        ...


_TYPE_NAMES: Final = {
    "object": "an object",
    "array": "an array",
    "string": "a string",
    "number": "a number",
    "integer": "an integer",
    "boolean": "true or false",
    "null": "null",
}


def _has_type(value: Any, expected: str) -> bool:
    # bool is an int subclass in Python but not a number in JSON.
    if expected == "object":
        return isinstance(value, dict)
    if expected == "array":
        return isinstance(value, list)
    if expected == "string":
        return isinstance(value, str)
    if expected == "boolean":
        return isinstance(value, bool)
    if expected == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if expected == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if expected == "null":
        return value is None
    raise ValueError(f"unsupported schema type {expected!r}")


def schema_errors(schema: Mapping[str, Any], value: Any, path: str = "arguments") -> list[str]:
    """What is wrong with `value` under `schema`, each message naming the field at fault.

    Understands the subset our tool specs use: type (object, array, string, number, integer,
    boolean, null), properties, required, additionalProperties false, items, enum, maxLength,
    minLength, minimum and maximum.
    """
    expected = schema.get("type")
    if expected is not None:
        types = [expected] if isinstance(expected, str) else list(expected)
        if not any(_has_type(value, name) for name in types):
            wanted = " or ".join(_TYPE_NAMES.get(name, name) for name in types)
            return [f"{path} must be {wanted}."]
    errors: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        choices = ", ".join(repr(choice) for choice in schema["enum"])
        errors.append(f"{path} must be one of {choices}.")
    if isinstance(value, str):
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append(f"{path} must be at most {schema['maxLength']} characters long.")
        if "minLength" in schema and len(value) < schema["minLength"]:
            errors.append(f"{path} must be at least {schema['minLength']} characters long.")
    if _has_type(value, "number"):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{path} must be at least {schema['minimum']}.")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{path} must be at most {schema['maximum']}.")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            errors.extend(schema_errors(schema["items"], item, f"{path}[{index}]"))
    if isinstance(value, dict):
        properties: Mapping[str, Any] = schema.get("properties", {})
        for name in schema.get("required", ()):
            if name not in value:
                errors.append(f"{_field(path, name)} is required.")
        for name, item in value.items():
            if name in properties:
                errors.extend(schema_errors(properties[name], item, _field(path, name)))
            elif schema.get("additionalProperties", True) is False:
                known = ", ".join(properties) or "none"
                errors.append(f"{_field(path, name)} is not allowed (known fields: {known}).")
    return errors


def _field(path: str, name: str) -> str:
    return name if path == "arguments" else f"{path}.{name}"
