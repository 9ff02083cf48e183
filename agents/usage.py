"""Who uses an agent: answered by the apps that reference agents (workflows, later the API).

The agents app must not import the workflows app (the dependency runs the other way), so users of
agents register a function here when their app loads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agents.models import Agent

UsageFinder = Callable[["Agent"], list[str]]
_finders: list[UsageFinder] = []


def register_usage_finder(finder: UsageFinder) -> None:
    if finder not in _finders:
        _finders.append(finder)


def agent_published_usages(agent: Agent) -> list[str]:
    """Names of the published workflows that use the agent."""
    names: list[str] = []
    for finder in _finders:
        names.extend(finder(agent))
    return names
