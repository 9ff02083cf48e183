"""Chatting with a whole workflow: each message starts a run, the conversation is its input.

The workflow playground keeps the conversation in the page, like the agent playground: each turn
sends the earlier turns (your messages and the agents' replies) with the new message. The
conversation goes into the workflow's chat input — its first text input — as plain text, so any
published workflow can be talked to without a special node; the run starts through `run_start`
like any other, pinned to the latest published version.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError

from a2a_site.accounts.models import User
from workflows.graph import graph_load
from workflows.graph.schema import InputField, InputSchema
from workflows.models import Run, Workflow
from workflows.services.runs import run_start, workflow_latest_version

MAX_TURN_MESSAGES = 400
MAX_MESSAGE_CHARS = 20_000
# The composed conversation stays within this; the oldest turns are left out first.
MAX_CONVERSATION_CHARS = 60_000
CHAT_INPUT_TYPES = ("text", "string")


@dataclass(frozen=True)
class ChatMessage:
    role: str  # "user" or "assistant"
    content: str
    name: str = ""  # the agent that said it, for the team's messages


def chat_input_field(schema: InputSchema) -> InputField | None:
    """The input a conversation goes into: the first required text input, else the first one."""
    texts = [field for field in schema.fields if field.type in CHAT_INPUT_TYPES]
    required = [field for field in texts if field.required]
    candidates = required or texts
    return candidates[0] if candidates else None


def chat_messages(raw: Any) -> list[ChatMessage]:
    """The conversation sent by the page, checked; the last message is the user's new one."""
    if not isinstance(raw, list) or not raw:
        raise ValidationError("Send at least one message.")
    if len(raw) > MAX_TURN_MESSAGES:
        raise ValidationError(
            f"At most {MAX_TURN_MESSAGES} messages in a conversation; start a new one."
        )
    messages = []
    for item in raw:
        if not isinstance(item, dict) or item.get("role") not in ("user", "assistant"):
            raise ValidationError("Each message needs the role user or assistant.")
        content = item.get("content")
        if not isinstance(content, str) or not content.strip():
            raise ValidationError("A message cannot be empty.")
        if len(content) > MAX_MESSAGE_CHARS:
            raise ValidationError(f"A message can have at most {MAX_MESSAGE_CHARS} characters.")
        name = item.get("name") if item["role"] == "assistant" else ""
        messages.append(ChatMessage(item["role"], content.strip(), str(name or "")[:80].strip()))
    if messages[-1].role != "user":
        raise ValidationError("The last message must be yours.")
    return messages


def conversation_text(messages: list[ChatMessage]) -> str:
    """The text a run receives: the new message alone at first, then with the conversation."""
    *earlier, latest = messages
    if not earlier:
        return latest.content
    lines = [f"{'You' if m.role == 'user' else (m.name or 'Team')}: {m.content}" for m in earlier]
    while lines and sum(len(line) for line in lines) > MAX_CONVERSATION_CHARS:
        lines.pop(0)
    return (
        "The conversation so far:\n\n"
        + "\n\n".join(lines)
        + f"\n\nThe user's new message:\n\n{latest.content}"
    )


def team_chat_start(*, workflow: Workflow, user: User | None, messages: Any) -> Run:
    """Starts a run of the latest published version with the conversation as its chat input."""
    version = workflow_latest_version(workflow)
    if version is None:
        raise ValidationError("Publish the workflow before chatting with it.")
    field = chat_input_field(graph_load(version.graph).inputs)
    if field is None:
        raise ValidationError(
            "This workflow has no text input to receive the conversation: add one in the "
            "builder and publish."
        )
    conversation = chat_messages(messages)
    return run_start(
        workflow=workflow,
        user=user,
        inputs={field.name: conversation_text(conversation)},
        version=version,
    )
