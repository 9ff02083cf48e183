"""Every run event's envelope: who sent it, to whom, what it is, and what it answers.

Each event's data carries `type` (its kind), `sender`, `receiver` (None when it is addressed to
no one in particular) and `correlation_id`, the id a request shares with its reply:

* a tool call and its result: `tool:<call id>` (a tool node's own call: `tool:<step key>`);
* a hand-off and its acceptance (the next turn of the agent it went to): `handoff:<step key>`;
* a question to a person (`human_request`) and the answer: `ask:<step key>`;
* anything else: `step:<step key>`, which links the events of one step.

The ids come from step keys and the model's tool call ids, both recorded, so a resumed or
replayed run gives its events the same ids. The fields are added beside the existing ones, so
viewers that read only those see what they always did.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ENVELOPE = ("type", "sender", "receiver", "correlation_id")
PERSON = "person"


def ask_id(step_key: str) -> str:
    return f"ask:{step_key}"


def handoff_id(step_key: str) -> str:
    return f"handoff:{step_key}"


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _derived(kind: str, data: Mapping[str, Any], step_key: str) -> dict[str, Any]:
    node = _text(data.get("node_id")) or (step_key.split("/")[0] if step_key else None) or "run"
    agent = _text(data.get("agent"))
    sender: str | None = agent or node
    receiver: str | None = None
    correlation = f"step:{step_key}" if step_key else "run"
    if kind in ("tool_call", "tool_result"):
        call = _text(data.get("id"))
        correlation = f"tool:{call}" if call else f"tool:{step_key}"
        tool = _text(data.get("name")) or "tool"
        sender, receiver = (agent or node, tool) if kind == "tool_call" else (tool, agent or node)
    elif kind == "handoff":
        sender, receiver = _text(data.get("from")) or sender, _text(data.get("to"))
        correlation = handoff_id(step_key)
    elif kind == "human_request":
        receiver = _text(data.get("person")) or PERSON
        sender = node
        correlation = ask_id(_text(data.get("key")) or step_key)
    elif kind == "message" and data.get("role") == "human":
        sender = agent or PERSON
        correlation = ask_id(step_key)
    elif kind == "router_decision":
        receiver = _text(data.get("route"))
    elif kind == "vote":
        receiver = node
    return {"type": kind, "sender": sender, "receiver": receiver, "correlation_id": correlation}


def enveloped(kind: str, data: Mapping[str, Any], step_key: str | None) -> dict[str, Any]:
    """`data` with the envelope's fields; those it sets itself are kept."""
    derived = _derived(kind, data, step_key or "")
    return {**data, **{name: value for name, value in derived.items() if name not in data}}
