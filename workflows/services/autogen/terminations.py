"""AutoGen termination conditions as a group chat's or a swarm's `termination`.

AutoGen shows the task to the termination conditions as the first message; the team nodes do the
same when `task_counts_as_message` is set, which every import sets, so max_messages keeps the
number written in the file.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import TypeAdapter
from pydantic import ValidationError as PydanticError

from workflows.graph.nodes import Termination, termination_is_bounded
from workflows.services.autogen.components import Notes, obj, short

DEFAULT_MAX_MESSAGES = 20
_TERMINATION: TypeAdapter[Any] = TypeAdapter(Termination)
# Conditions that wait for something an imported team never produces.
_NEVER_FIRES = {
    "StopMessageTermination": "no agent here sends AutoGen's StopMessage",
    "ExternalTermination": "nothing outside the run can set it",
    "FunctionCallTermination": "it waits for a tool this import does not run",
}


def termination(component: Any, notes: Notes) -> dict[str, Any] | None:
    if not isinstance(component, dict):
        return None
    kind = short(component.get("provider"))
    config = obj(component.get("config"))
    report = notes.report
    if kind in ("OrTerminationCondition", "AndTerminationCondition"):
        key = "any_of" if kind.startswith("Or") else "all_of"
        parts = [termination(part, notes) for part in config.get("conditions") or []]
        kept = [part for part in parts if part is not None]
        if key == "all_of" and len(kept) < len(parts):
            report.append(
                "An AND termination lost a condition it could not map, so it may end the "
                "chat sooner than in AutoGen."
            )
        if not kept:
            return None
        return kept[0] if len(kept) == 1 else {key: kept}
    if kind == "MaxMessageTermination":
        value = int(config.get("max_messages") or DEFAULT_MAX_MESSAGES)
        if not 1 <= value <= 1000:
            report.append(f"max_messages {value} is outside 1–1000; it was clamped.")
            value = min(max(value, 1), 1000)
        if config.get("include_agent_event"):
            report.append(
                "MaxMessageTermination's include_agent_event is not supported: tool calls and "
                "other agent events are not counted as messages."
            )
        return {"max_messages": value}
    if kind == "TextMentionTermination":
        if config.get("sources"):
            report.append(
                "TextMentionTermination's sources are not supported: any speaker's "
                f"“{config.get('text')}” ends the chat."
            )
        return {"text_mention": str(config.get("text") or "TERMINATE")}
    if kind == "TokenUsageTermination":
        total = config.get("max_total_token")
        for key in ("max_prompt_token", "max_completion_token"):
            if config.get(key):
                report.append(
                    f"TokenUsageTermination's {key} is not supported; only a total budget is."
                )
        if not total:
            total = sum(
                int(config.get(key) or 0) for key in ("max_prompt_token", "max_completion_token")
            )
        return {"token_budget": int(total)} if total else None
    if kind == "TimeoutTermination":
        seconds = config.get("timeout_seconds")
        if not isinstance(seconds, int | float) or seconds <= 0:
            report.append("TimeoutTermination has no valid timeout_seconds; left out.")
            return None
        return {"timeout_s": min(math.ceil(seconds), 7 * 24 * 3600)}
    if kind == "HandoffTermination":
        # The team node decides what a hand-off to a person means; see the team importer.
        return {"handoff_to_human": True}
    if kind in _NEVER_FIRES:
        report.append(f"{kind} was left out: {_NEVER_FIRES[kind]}, so it could never fire.")
        return None
    report.append(
        f"The termination condition {kind or 'without a provider'} is not "
        "supported and was left out, so the chat may run longer than in AutoGen."
    )
    return None


def is_bounded(condition: dict[str, Any]) -> bool:
    try:
        return termination_is_bounded(_TERMINATION.validate_python(condition))
    except PydanticError:
        return False


def with_max_turns(condition: dict[str, Any] | None, max_turns: Any, notes: Notes) -> Any:
    """AutoGen's max_turns counts agent turns; max_messages here also counts the task."""
    if isinstance(max_turns, int) and not isinstance(max_turns, bool) and max_turns >= 1:
        messages = min(max_turns + 1, 1000)
        turns: dict[str, Any] = {"max_messages": messages}
        notes.report.append(
            f"max_turns {max_turns} is mapped to max_messages {messages} (the task counts as the "
            "first message)."
        )
        condition = turns if condition is None else {"any_of": [condition, turns]}
    return condition


def bounded(condition: dict[str, Any] | None, notes: Notes) -> dict[str, Any]:
    if condition is None or not is_bounded(condition):
        bound: dict[str, Any] = {"max_messages": DEFAULT_MAX_MESSAGES}
        notes.report.append(
            "The team had no termination that is sure to fire, so max_messages "
            f"{DEFAULT_MAX_MESSAGES} was added."
        )
        condition = bound if condition is None else {"any_of": [condition, bound]}
    return condition


def has_human(condition: Any) -> bool:
    if not isinstance(condition, dict):
        return False
    if "handoff_to_human" in condition:
        return True
    return any(has_human(part) for key in ("any_of", "all_of") for part in condition.get(key) or [])
