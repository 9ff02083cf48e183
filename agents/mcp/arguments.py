"""A tool's arguments form, drawn from its JSON schema, and the typed arguments read back from it.

Strings, numbers, integers, booleans and enums get their own inputs; anything else (objects,
arrays, unions) is entered as JSON. Values left empty are not sent, so the tool's defaults hold.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ArgumentField:
    name: str
    kind: str  # "string" | "number" | "integer" | "boolean" | "enum" | "json"
    required: bool
    description: str = ""
    choices: list[str] = field(default_factory=list)
    default: Any = None
    value: str = ""
    error: str = ""

    @property
    def input_name(self) -> str:
        return f"arg.{self.name}"

    @property
    def placeholder(self) -> str:
        if self.default is None:
            return ""
        return f"default: {json.dumps(self.default)}"


def _kind(schema: Mapping[str, Any]) -> str:
    if "enum" in schema and all(isinstance(item, str) for item in schema["enum"]):
        return "enum"
    kind = schema.get("type")
    if kind in ("string", "number", "integer", "boolean"):
        return str(kind)
    return "json"


def _description(name: str, prop: Mapping[str, Any]) -> str:
    if prop.get("description"):
        return str(prop["description"])
    title = str(prop.get("title") or "")
    # Generated schemas title every field after its name ("a" → "A"): nothing to add.
    return "" if title.replace(" ", "_").lower() == name.lower() else title


def argument_fields(schema: Mapping[str, Any]) -> list[ArgumentField]:
    properties: Mapping[str, Any] = schema.get("properties") or {}
    required = set(schema.get("required") or ())
    fields = []
    for name, prop in properties.items():
        prop = prop if isinstance(prop, Mapping) else {}
        fields.append(
            ArgumentField(
                name=str(name),
                kind=_kind(prop),
                required=name in required,
                description=_description(str(name), prop),
                choices=[str(item) for item in prop.get("enum", [])],
                default=prop.get("default"),
            )
        )
    return fields


def arguments_read(
    fields: list[ArgumentField], data: Mapping[str, str]
) -> tuple[dict[str, Any], bool]:
    """The arguments the form holds, and whether every field read cleanly (errors on fields)."""
    arguments: dict[str, Any] = {}
    ok = True
    for item in fields:
        raw = data.get(item.input_name, "")
        item.value = raw if item.kind != "boolean" else ("on" if raw else "")
        if item.kind == "boolean":
            if raw or item.required:
                arguments[item.name] = bool(raw)
            continue
        if not raw.strip():
            if item.required:
                item.error, ok = "Required.", False
            continue
        try:
            if item.kind in ("string", "enum"):
                arguments[item.name] = raw
            elif item.kind == "integer":
                arguments[item.name] = int(raw.strip())
            elif item.kind == "number":
                number = float(raw.strip())
                arguments[item.name] = int(number) if number.is_integer() else number
            else:
                arguments[item.name] = json.loads(raw)
        except ValueError:
            expected = {"integer": "a whole number", "number": "a number"}.get(item.kind, "JSON")
            item.error, ok = f"Enter {expected}.", False
    return arguments, ok
