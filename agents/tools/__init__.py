"""Function tools an agent may call: built-ins now, MCP tools and remote A2A agents later."""

from .base import Tool, ToolContext, ToolError, ToolResult, ToolSpec, schema_errors
from .registry import ToolRegistry, builtin_registry

__all__ = [
    "Tool",
    "ToolContext",
    "ToolError",
    "ToolRegistry",
    "ToolResult",
    "ToolSpec",
    "builtin_registry",
    "schema_errors",
]
