"""A run seen as an A2A task, and an A2A message read as a run's inputs or a person's answer.

A task IS a run: the task id is the run id, its state is the run's status, its artifact is the
run's output and its history is read from the run's events. Nothing about a task is stored
anywhere else (the caller's context id is a column of the run).

States:

    queued, never started       → submitted
    queued again, running       → working
    waiting for a person        → input-required (the status message carries the question)
    waiting on a sub-workflow   → working (its own question, if it asks one, comes up as ours)
    succeeded                   → completed, with the output as the artifact "output"
    failed                      → failed (the status message says why)
    cancelled                   → canceled
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from a2a.helpers.proto_helpers import get_data_parts, get_text_parts, new_data_part
from a2a.types.a2a_pb2 import (
    Artifact,
    Message,
    Part,
    Role,
    Task,
    TaskState,
    TaskStatus,
)
from google.protobuf.json_format import ParseDict
from google.protobuf.struct_pb2 import Struct

from workflows.graph.schema import InputField

TERMINAL_STATES = frozenset(
    {
        TaskState.TASK_STATE_COMPLETED,
        TaskState.TASK_STATE_FAILED,
        TaskState.TASK_STATE_CANCELED,
        TaskState.TASK_STATE_REJECTED,
    }
)
# A stream ends after one of these; a blocking SendMessage returns at one of them.
INTERRUPTED_STATES = frozenset(
    {TaskState.TASK_STATE_INPUT_REQUIRED, TaskState.TASK_STATE_AUTH_REQUIRED}
)
OUTPUT_ARTIFACT_ID = "output"
TEXT_TYPES = ("string", "text")


class MessageRefused(ValueError):
    """The message cannot start or continue a run; `str()` says why, for the caller."""


def is_waiting_for_person(status: str, waiting: Mapping[str, Any] | None) -> bool:
    return status == "waiting" and bool(waiting) and (waiting or {}).get("kind") != "subrun"


def task_state(status: str, *, started: bool, waiting: Mapping[str, Any] | None) -> int:
    if status == "queued":
        return TaskState.TASK_STATE_WORKING if started else TaskState.TASK_STATE_SUBMITTED
    if status == "running":
        return TaskState.TASK_STATE_WORKING
    if status == "waiting":
        if is_waiting_for_person(status, waiting):
            return TaskState.TASK_STATE_INPUT_REQUIRED
        return TaskState.TASK_STATE_WORKING
    return {
        "succeeded": TaskState.TASK_STATE_COMPLETED,
        "failed": TaskState.TASK_STATE_FAILED,
        "cancelled": TaskState.TASK_STATE_CANCELED,
    }.get(status, TaskState.TASK_STATE_WORKING)


def run_statuses_of(state: int) -> dict[str, Any]:
    """The run filter for ListTasks' `status`."""
    match state:
        case TaskState.TASK_STATE_SUBMITTED:
            return {"status": "queued", "started_at__isnull": True}
        case TaskState.TASK_STATE_WORKING:
            return {"status__in": ["queued", "running", "waiting"]}
        case TaskState.TASK_STATE_INPUT_REQUIRED:
            return {"status": "waiting"}
        case TaskState.TASK_STATE_COMPLETED:
            return {"status": "succeeded"}
        case TaskState.TASK_STATE_FAILED:
            return {"status": "failed"}
        case TaskState.TASK_STATE_CANCELED:
            return {"status": "cancelled"}
    return {"pk__in": []}


def agent_message(text: str, *, task_id: str, context_id: str, message_id: str) -> Message:
    return Message(
        message_id=message_id,
        task_id=task_id,
        context_id=context_id,
        role=Role.ROLE_AGENT,
        parts=[Part(text=text)],
    )


def waiting_text(waiting: Mapping[str, Any]) -> str:
    """What the run asks, as the caller reads it."""
    prompt = str(waiting.get("prompt") or "").strip()
    if waiting.get("kind") == "approval":
        hint = 'Answer "approve" or "reject" (with a comment if you like).'
    else:
        field = waiting.get("field") or {}
        label = field.get("label") or field.get("name") if isinstance(field, Mapping) else None
        hint = f"Answer with the {label}." if label else "Answer with a message."
    return f"{prompt}\n\n{hint}" if prompt else hint


def output_parts(output: Any) -> list[Part]:
    """The run's output as parts: text when it is text (or one text field), else data too."""
    if output is None:
        return []
    if isinstance(output, str):
        return [Part(text=output)]
    parts: list[Part] = []
    if isinstance(output, Mapping):
        texts = [value for value in output.values() if isinstance(value, str)]
        if len(texts) == 1 and len(output) == 1:
            parts.append(Part(text=texts[0]))
    try:
        parts.append(new_data_part(json.loads(json.dumps(output)), "application/json"))
    except (TypeError, ValueError):
        parts.append(Part(text=json.dumps(output, default=str)))
    return parts


def output_artifact(output: Any) -> Artifact | None:
    parts = output_parts(output)
    if not parts:
        return None
    return Artifact(
        artifact_id=OUTPUT_ARTIFACT_ID,
        name="output",
        description="The workflow's output",
        parts=parts,
    )


def run_task(
    run: Mapping[str, Any],
    *,
    history: Iterable[Message] = (),
    include_artifacts: bool = True,
    message_id: str = "",
) -> Task:
    """The task of a run, from the run's columns (`id`, `status`, `reason`, `output`,
    `waiting_request`, `started_at`, `finished_at`, `created_at`, `a2a_context_id`)."""
    task_id = str(run["id"])
    context_id = run.get("a2a_context_id") or task_id
    waiting = run.get("waiting_request")
    state = task_state(run["status"], started=run.get("started_at") is not None, waiting=waiting)
    status = TaskStatus(state=state)  # type: ignore[arg-type]
    when: datetime | None = run.get("finished_at") or run.get("started_at") or run["created_at"]
    if when is not None:
        status.timestamp.FromDatetime(when)
    status_id = message_id or f"{task_id}-status"
    if state == TaskState.TASK_STATE_INPUT_REQUIRED and waiting:
        status.message.CopyFrom(
            agent_message(
                waiting_text(waiting),
                task_id=task_id,
                context_id=context_id,
                message_id=f"{status_id}-{waiting.get('step_key', '')}",
            )
        )
    elif state in (TaskState.TASK_STATE_FAILED, TaskState.TASK_STATE_CANCELED) and run.get(
        "reason"
    ):
        status.message.CopyFrom(
            agent_message(
                str(run["reason"]), task_id=task_id, context_id=context_id, message_id=status_id
            )
        )
    task = Task(id=task_id, context_id=context_id, status=status, history=list(history))
    if include_artifacts and run["status"] == "succeeded":
        artifact = output_artifact(run.get("output"))
        if artifact is not None:
            task.artifacts.append(artifact)
    metadata = {"workflowRunStatus": run["status"]}
    task.metadata.CopyFrom(ParseDict(metadata, Struct()))
    return task


# --- messages in ------------------------------------------------------------------------------


def message_content(message: Message) -> tuple[str, dict[str, Any]]:
    """The message's text (its text parts joined) and its data (its object data parts merged)."""
    text = "\n".join(part for part in get_text_parts(message.parts) if part.strip()).strip()
    data: dict[str, Any] = {}
    for item in get_data_parts(message.parts):
        if isinstance(item, dict):
            data.update(_whole_numbers(item))
    return text, data


def _whole_numbers(value: Any) -> Any:
    # Protobuf's Value keeps every number as a double: 3 comes back as 3.0.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _whole_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_whole_numbers(item) for item in value]
    return value


def message_inputs(fields: list[InputField], message: Message) -> dict[str, Any]:
    """A new task's run inputs: the data part's fields by name, and the text in the first text
    field not given that way (so a one-question workflow takes a plain sentence)."""
    text, data = message_content(message)
    if not text and not data:
        raise MessageRefused("The message has no text or data part to start the workflow with.")
    inputs = {field.name: data[field.name] for field in fields if field.name in data}
    if text:
        target = next(
            (f for f in fields if f.type in TEXT_TYPES and f.name not in inputs),
            None,
        )
        if target is None:
            target = next((f for f in fields if f.name not in inputs), None)
        if target is not None:
            inputs[target.name] = text
    return inputs


def message_answer(waiting: Mapping[str, Any], message: Message) -> Any:
    """A person's answer from a message on an input-required task."""
    text, data = message_content(message)
    if waiting.get("kind") == "approval":
        if "approved" in data:
            return {"approved": bool(data["approved"]), "comment": str(data.get("comment", ""))}
        if not text:
            raise MessageRefused('Answer "approve" or "reject".')
        word, _, comment = text.partition(" ")
        approved = word.strip(".,!:").lower() in {"approve", "approved", "yes", "y", "ok", "true"}
        return {"approved": approved, "comment": comment.strip() if comment else ""}
    field = waiting.get("field") or {}
    name = field.get("name") if isinstance(field, Mapping) else None
    if name and name in data:
        return data[name]
    if text:
        return text
    if data:
        return data
    raise MessageRefused("The message has no answer in it (no text or data part).")
