"""The tools an agent can be given, as the agent form lists them."""

from __future__ import annotations

from typing import Any

from agents.tools.registry import builtin_registry


def tool_choices(workspace_id: Any = None) -> list[tuple[str, str]]:
    """The built-in tools, and with a workspace the listed tools of its MCP servers."""
    registry = builtin_registry()
    choices = [
        (name, f"{name} — {registry.get(name).spec.description}") for name in registry.names()
    ]
    if workspace_id is not None:
        from agents.mcp.tools import mcp_tool_choices

        choices.extend(mcp_tool_choices(workspace_id))
    return choices
