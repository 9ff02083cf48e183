"""`{{ name }}` and `{{ a.b.c }}` templates: lookups only, never evaluation.

A missing name renders as empty text and is reported, so a typo shows on the run page instead of
failing a run half-way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)\s*\}\}")
MISSING = object()


@dataclass(frozen=True)
class Rendered:
    text: str
    missing: tuple[str, ...]


def lookup(path: str, context: Mapping[str, Any]) -> Any:
    """The value at `a.b.c` (dict keys, list indexes), or `MISSING`."""
    current: Any = context
    for part in path.split("."):
        if isinstance(current, str) and current[:1] in "[{":
            # A JSON reply from an agent is text; its fields are still worth reaching.
            try:
                current = json.loads(current)
            except ValueError:
                return MISSING
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return MISSING
    return current


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def inputs_as_text(inputs: Mapping[str, Any]) -> str:
    """What the first node after start reads: a lone input as its text, several as
    "name: value" lines — never the JSON of the whole form, which a model would echo back."""
    if len(inputs) == 1:
        return as_text(next(iter(inputs.values())))
    return "\n".join(f"{name}: {as_text(value)}" for name, value in inputs.items())


def render(template: str, context: Mapping[str, Any]) -> Rendered:
    missing: list[str] = []

    def substitute(match: re.Match[str]) -> str:
        value = lookup(match.group(1), context)
        if value is MISSING:
            missing.append(match.group(1))
            return ""
        return as_text(value)

    return Rendered(_PLACEHOLDER.sub(substitute, template), tuple(dict.fromkeys(missing)))


def render_value(value: Any, context: Mapping[str, Any], missing: list[str]) -> Any:
    """Renders templates inside JSON-like values; a lone `{{ x }}` keeps x's type."""
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value.strip())
        if whole:
            found = lookup(whole.group(1), context)
            if found is MISSING:
                missing.append(whole.group(1))
                return None
            return found
        rendered = render(value, context)
        missing.extend(rendered.missing)
        return rendered.text
    if isinstance(value, dict):
        return {key: render_value(item, context, missing) for key, item in value.items()}
    if isinstance(value, list):
        return [render_value(item, context, missing) for item in value]
    return value
