"""The tools an agent can be given, as the agent form lists them."""

from __future__ import annotations

from agents.tools.registry import builtin_registry


def tool_choices() -> list[tuple[str, str]]:
    registry = builtin_registry()
    return [(name, f"{name} — {registry.get(name).spec.description}") for name in registry.names()]
