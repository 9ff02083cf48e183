"""The registry the agent loop calls tools through.

Whatever goes wrong in a call comes back as an error result rather than an exception: the model
produced the call, so the model must see what was wrong with it and may try again.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable
from functools import cache
from typing import Any

from .base import Tool, ToolContext, ToolError, ToolResult, schema_errors
from .builtin import BUILTIN_TOOLS

logger = logging.getLogger(__name__)


class ToolRegistry:
    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools:
            self.register(tool)

    def register(self, tool: Tool) -> None:
        name = tool.spec.name
        if name in self._tools:
            raise ValueError(f"A tool named {name!r} is already registered.")
        self._tools[name] = tool

    def get(self, name: str) -> Tool:
        try:
            return self._tools[name]
        except KeyError:
            raise KeyError(f"No tool named {name!r}; available: {self._available()}.") from None

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def names(self) -> list[str]:
        return sorted(self._tools)

    def specs(self, names: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """The OpenAI `tools` list for the named tools (all of them when `names` is None)."""
        chosen = self.names() if names is None else list(names)
        return [self.get(name).spec.openai_tool() for name in chosen]

    def _available(self) -> str:
        return ", ".join(self.names()) or "none"

    async def call(self, name: str, arguments_json: str, context: ToolContext) -> ToolResult:
        tool = self._tools.get(name)
        if tool is None:
            return ToolResult.error(
                f"There is no tool named {name!r}. Available: {self._available()}."
            )
        arguments = _parse_arguments(arguments_json)
        if isinstance(arguments, ToolResult):
            return arguments
        try:
            errors = schema_errors(tool.spec.parameters, arguments)
        except ValueError:
            # A schema beyond the subset we check (an MCP server's): the tool checks itself.
            errors = []
        if errors:
            return ToolResult.error(f"Invalid arguments for {name}: " + " ".join(errors))
        timeout_s = tool.spec.timeout_s
        try:
            result = await asyncio.wait_for(tool.run(arguments, context), timeout=timeout_s)
        except TimeoutError:
            return ToolResult.error(f"{name} timed out after {timeout_s:g} s.")
        except ToolError as error:
            return ToolResult.error(str(error))
        except Exception as error:
            # The message may hold internals (paths, addresses); the log gets it, the model not.
            logger.exception(
                "Tool %s failed (run %s, step %s)", name, context.run_id, context.step_id
            )
            return ToolResult.error(f"{name} failed unexpectedly ({type(error).__name__}).")
        if not isinstance(result, ToolResult):
            logger.error("Tool %s returned %r instead of a ToolResult", name, type(result))
            return ToolResult.error(f"{name} failed unexpectedly (bad result).")
        return result


def _parse_arguments(arguments_json: str) -> dict[str, Any] | ToolResult:
    # Models send "" for a call without arguments as often as "{}".
    if not arguments_json.strip():
        return {}
    try:
        arguments = json.loads(arguments_json)
    except (json.JSONDecodeError, RecursionError) as error:
        detail = getattr(error, "msg", "too deeply nested")
        return ToolResult.error(f"The arguments are not valid JSON ({detail}); send a JSON object.")
    if not isinstance(arguments, dict):
        return ToolResult.error("The arguments must be a JSON object.")
    return arguments


@cache
def builtin_registry() -> ToolRegistry:
    return ToolRegistry(tool_class() for tool_class in BUILTIN_TOOLS)
