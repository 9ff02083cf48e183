"""The A2A request handler of a published workflow: every method goes through the run services.

The SDK's routes (JSON-RPC and HTTP+JSON) parse, check the version header and serialize; this
handler answers. Its task store is the run tables (`RunTaskStore`): a task IS a run. Streams
follow the run through its own event log (`workflows.a2a.feed`), so any web process can serve
any task whichever process or worker executes it.

    SendMessage without taskId         run_start(launched_via=A2A, api_token=caller's token)
    SendMessage with taskId            run_answer, when the run waits for a person
                                       (input-required); refused otherwise
    blocking (unless returnImmediately) returns at completed, failed, canceled or
                                       input-required, or after A2A_BLOCKING_SECONDS as it is
    GetTask, ListTasks                 the caller's A2A runs of this workflow, newest first
    CancelTask                         run_cancel; a finished run is TaskNotCancelable
    SendStreamingMessage, SubscribeToTask   the task, then its status changes and agent
                                       messages, the artifact, ending after a terminal or
                                       interrupted state
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from a2a.helpers.proto_helpers import new_data_part
from a2a.server.context import ServerCallContext
from a2a.server.events.event_queue import Event
from a2a.server.request_handlers.request_handler import RequestHandler
from a2a.server.tasks.task_store import TaskStore
from a2a.types.a2a_pb2 import (
    AgentCard,
    CancelTaskRequest,
    DeleteTaskPushNotificationConfigRequest,
    GetExtendedAgentCardRequest,
    GetTaskPushNotificationConfigRequest,
    GetTaskRequest,
    ListTaskPushNotificationConfigsRequest,
    ListTaskPushNotificationConfigsResponse,
    ListTasksRequest,
    ListTasksResponse,
    Message,
    Part,
    Role,
    SendMessageRequest,
    SubscribeToTaskRequest,
    Task,
    TaskArtifactUpdateEvent,
    TaskPushNotificationConfig,
    TaskState,
    TaskStatusUpdateEvent,
)
from a2a.utils.errors import (
    ContentTypeNotSupportedError,
    ExtendedAgentCardNotConfiguredError,
    InternalError,
    InvalidParamsError,
    PushNotificationNotSupportedError,
    TaskNotCancelableError,
    TaskNotFoundError,
    UnsupportedOperationError,
)
from channels.db import database_sync_to_async
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q

from a2a_site.accounts.models import User
from a2a_site.api.models import ApiToken
from workflows.a2a.card import INPUT_MODES, OUTPUT_MODES
from workflows.a2a.feed import RunFeed, wait_for_status
from workflows.a2a.tasks import (
    INTERRUPTED_STATES,
    TERMINAL_STATES,
    MessageRefused,
    agent_message,
    is_waiting_for_person,
    message_answer,
    message_inputs,
    output_artifact,
    run_statuses_of,
    run_task,
)
from workflows.graph import graph_load
from workflows.models import TERMINAL_STATUSES, LaunchedVia, Run, RunEvent, Workflow
from workflows.services import runs as run_services
from workflows.spend_gate import LaunchRefused

logger = logging.getLogger(__name__)

TASK_FIELDS = (
    "id",
    "status",
    "reason",
    "output",
    "inputs",
    "waiting_request",
    "created_at",
    "started_at",
    "finished_at",
    "a2a_context_id",
    "last_seq",
)
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100
MAX_HISTORY = 100


@dataclass(frozen=True)
class AgentCaller:
    """Who calls, and which agent: set on the request by the ASGI middleware (workflows.a2a.app)
    after the token and the access seam let it through."""

    user: User
    token: ApiToken
    workflow: Workflow


def caller_of(context: ServerCallContext) -> AgentCaller:
    caller = context.state.get("a2a_caller")
    if not isinstance(caller, AgentCaller):
        raise InternalError("No caller on this request.")  # the middleware always sets one
    return caller


def _runs_of(caller: AgentCaller) -> Any:
    """Scoped to the caller: their own A2A tasks of this workflow. Anyone else's is not found."""
    return Run.objects.filter(
        workflow_id=caller.workflow.pk, launched_via=LaunchedVia.A2A, created_by_id=caller.user.pk
    )


def _uuid_or_none(value: str) -> str | None:
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        return None


class RunTaskStore(TaskStore):
    """The SDK's task store over the run tables. Reads only: tasks change through the run
    services (a run's state is written by its engine), never by saving a task."""

    async def get(self, task_id: str, context: ServerCallContext) -> Task | None:
        row = await self.row(task_id, context)
        return None if row is None else run_task(row)

    async def row(self, task_id: str, context: ServerCallContext) -> dict[str, Any] | None:
        pk = _uuid_or_none(task_id)
        if pk is None:
            return None
        return await _runs_of(caller_of(context)).filter(pk=pk).values(*TASK_FIELDS).afirst()

    async def list(self, params: ListTasksRequest, context: ServerCallContext) -> ListTasksResponse:
        size = params.page_size or DEFAULT_PAGE_SIZE
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise InvalidParamsError(f"pageSize is between 1 and {MAX_PAGE_SIZE}.")
        runs = _runs_of(caller_of(context))
        if params.context_id:
            runs = runs.filter(
                Q(a2a_context_id=params.context_id)
                | Q(a2a_context_id="", pk=_uuid_or_none(params.context_id))
            )
        if params.status:
            runs = runs.filter(**run_statuses_of(params.status))
        if params.HasField("status_timestamp_after"):
            after = params.status_timestamp_after.ToDatetime(tzinfo=UTC)
            runs = runs.filter(
                Q(finished_at__gt=after)
                | Q(finished_at__isnull=True, started_at__gt=after)
                | Q(finished_at__isnull=True, started_at__isnull=True, created_at__gt=after)
            )
        total = await runs.acount()
        if params.page_token:
            created_at, pk = _cursor_decode(params.page_token)
            runs = runs.filter(Q(created_at__lt=created_at) | Q(created_at=created_at, pk__lt=pk))
        page = runs.order_by("-created_at", "-id").values(*TASK_FIELDS)[: size + 1]
        rows = [row async for row in page]
        more = len(rows) > size
        rows = rows[:size]
        history = params.history_length if params.HasField("history_length") else 0
        tasks = []
        for row in rows:
            messages = await task_history(row, history) if history > 0 else []
            tasks.append(run_task(row, history=messages, include_artifacts=True))
        return ListTasksResponse(
            tasks=tasks,
            next_page_token=_cursor_encode(rows[-1]) if more and rows else "",
            page_size=size,
            total_size=total,
        )

    async def save(self, task: Task, context: ServerCallContext) -> None:
        raise UnsupportedOperationError("Tasks change through their runs, not by saving them.")

    async def delete(self, task_id: str, context: ServerCallContext) -> None:
        raise UnsupportedOperationError("A task is a run: delete it with the run's retention.")


def _cursor_encode(row: dict[str, Any]) -> str:
    raw = json.dumps([row["created_at"].isoformat(), str(row["id"])])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _cursor_decode(token: str) -> tuple[Any, str]:
    try:
        padded = token + "=" * (-len(token) % 4)
        created, pk = json.loads(base64.urlsafe_b64decode(padded.encode()))
        return datetime.fromisoformat(created), str(_uuid_or_none(pk) or "")
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise InvalidParamsError("pageToken is not one this server gave.") from None


async def task_history(row: dict[str, Any], limit: int) -> list[Message]:
    """The conversation of a task, oldest first, its last `limit` messages: the inputs the run
    started with, then each finished message of the run (a person's answers as the user's)."""
    task_id = str(row["id"])
    context_id = row.get("a2a_context_id") or task_id
    inputs = row.get("inputs") or {}
    texts = [value for value in inputs.values() if isinstance(value, str)]
    first = Message(
        message_id=f"{task_id}-inputs", task_id=task_id, context_id=context_id, role=Role.ROLE_USER
    )
    if len(texts) == 1 and len(inputs) == 1:
        first.parts.append(Part(text=texts[0]))
    else:
        first.parts.append(new_data_part(json.loads(json.dumps(inputs, default=str))))
    messages = [first]
    if not row.get("last_seq"):
        return messages[-limit:]  # nothing has happened yet: no need to ask
    events = RunEvent.objects.filter(run_id=row["id"], kind="message").order_by("-seq")
    async for event in events.values("seq", "data")[: max(limit, 1)]:
        data = event["data"] if isinstance(event["data"], dict) else {}
        text = str(data.get("text") or "")
        if not text:
            continue
        message = agent_message(
            text, task_id=task_id, context_id=context_id, message_id=f"{task_id}-{event['seq']}"
        )
        if data.get("role") == "human":
            message.role = Role.ROLE_USER
        messages.insert(1, message)
    return messages[-limit:]


def _check_modes(params: SendMessageRequest) -> None:
    for part in params.message.parts:
        media = part.media_type
        if part.HasField("raw") or part.HasField("url"):
            raise ContentTypeNotSupportedError(
                "This agent takes text and JSON data parts, not files."
            )
        if media and media not in INPUT_MODES:
            raise ContentTypeNotSupportedError(
                f"This agent takes {', '.join(INPUT_MODES)}, not {media}."
            )
    accepted = list(params.configuration.accepted_output_modes)
    if accepted and not set(accepted) & set(OUTPUT_MODES):
        raise ContentTypeNotSupportedError(
            f"This agent answers in {', '.join(OUTPUT_MODES)}, none of {', '.join(accepted)}."
        )


class WorkflowAgentHandler(RequestHandler):
    def __init__(self) -> None:
        self.store = RunTaskStore()

    # --- reads -------------------------------------------------------------------------------

    async def _task(
        self, task_id: str, context: ServerCallContext, *, history: int | None = None
    ) -> Task:
        row = await self.store.row(task_id, context)
        if row is None:
            raise TaskNotFoundError(f"No task {task_id} of yours on this agent.")
        limit = MAX_HISTORY if history is None else min(history, MAX_HISTORY)
        messages = await task_history(row, limit) if limit > 0 else []
        return run_task(row, history=messages)

    async def on_get_task(self, params: GetTaskRequest, context: ServerCallContext) -> Task | None:
        if params.HasField("history_length") and params.history_length < 0:
            raise InvalidParamsError("historyLength cannot be negative.")
        history = params.history_length if params.HasField("history_length") else None
        return await self._task(params.id, context, history=history)

    async def on_list_tasks(
        self, params: ListTasksRequest, context: ServerCallContext
    ) -> ListTasksResponse:
        if params.HasField("history_length") and params.history_length < 0:
            raise InvalidParamsError("historyLength cannot be negative.")
        return await self.store.list(params, context)

    # --- messages ------------------------------------------------------------------------------

    async def _deliver(
        self, params: SendMessageRequest, context: ServerCallContext
    ) -> tuple[str, int]:
        """Starts a run, or answers the one the message continues: its id and the seq from
        which what follows is new."""
        caller = caller_of(context)
        message = params.message
        _check_modes(params)
        if message.task_id:
            row = await self.store.row(message.task_id, context)
            if row is None:
                raise TaskNotFoundError(f"No task {message.task_id} of yours on this agent.")
            context_id = row["a2a_context_id"] or str(row["id"])
            if message.context_id and message.context_id != context_id:
                raise InvalidParamsError(
                    f"Task {message.task_id} belongs to context {context_id}, "
                    f"not {message.context_id}."
                )
            if row["status"] in TERMINAL_STATUSES:
                raise UnsupportedOperationError(
                    f"Task {message.task_id} is {row['status']}: it takes no more messages. "
                    "Send a message without taskId to start a new one."
                )
            waiting = row["waiting_request"] or {}
            if not is_waiting_for_person(row["status"], waiting):
                raise UnsupportedOperationError(
                    f"Task {message.task_id} is working and asks for nothing now; send a "
                    "message on it when it is input-required."
                )
            try:
                answer = message_answer(waiting, message)
            except MessageRefused as refused:
                raise InvalidParamsError(str(refused)) from None
            await database_sync_to_async(_answer)(row["id"], waiting, answer, caller.user)
            return str(row["id"]), int(row["last_seq"])
        run = await database_sync_to_async(_start)(caller, message)
        return str(run.pk), 0

    async def on_message_send(
        self, params: SendMessageRequest, context: ServerCallContext
    ) -> Task | Message:
        task_id, after = await self._deliver(params, context)
        history = (
            params.configuration.history_length
            if params.configuration.HasField("history_length")
            else None
        )
        if not params.configuration.return_immediately:
            await self._settle(task_id, caller_of(context).user, after)
        return await self._task(task_id, context, history=history)

    async def _settle(self, task_id: str, user: User, after: int) -> None:
        """Waits until the run stops or asks a person (bounded by A2A_BLOCKING_SECONDS)."""
        feed = RunFeed(run_id=task_id, user=user)
        frames = feed.messages_after(after)

        async def watch() -> None:
            async for frame in frames:
                if frame.get("type") != "status":
                    continue
                status = frame.get("status")
                if status in TERMINAL_STATUSES:
                    return
                if status == "waiting":
                    row = await Run.objects.filter(pk=task_id).values("waiting_request").afirst()
                    if row and is_waiting_for_person("waiting", row["waiting_request"]):
                        return

        try:
            await asyncio.wait_for(watch(), settings.A2A_BLOCKING_SECONDS)
        except TimeoutError:
            pass
        finally:
            await frames.aclose()

    async def on_message_send_stream(
        self, params: SendMessageRequest, context: ServerCallContext
    ) -> AsyncGenerator[Event]:
        task_id, after = await self._deliver(params, context)
        async for event in self._follow(task_id, context, after):
            yield event

    async def on_subscribe_to_task(
        self, params: SubscribeToTaskRequest, context: ServerCallContext
    ) -> AsyncGenerator[Event]:
        row = await self.store.row(params.id, context)
        if row is None:
            raise TaskNotFoundError(f"No task {params.id} of yours on this agent.")
        if row["status"] in TERMINAL_STATUSES:
            raise UnsupportedOperationError(
                f"Task {params.id} is {row['status']}: there is nothing left to subscribe to "
                "(GetTask has its result)."
            )
        async for event in self._follow(str(row["id"]), context, int(row["last_seq"])):
            yield event

    async def _follow(
        self, task_id: str, context: ServerCallContext, after: int
    ) -> AsyncGenerator[Event]:
        """The task now, then what changes: agent messages as working updates, each new state,
        the output artifact before completed. Ends after a terminal or interrupted state."""
        caller = caller_of(context)
        task = await self._task(task_id, context, history=0)
        yield task
        last_state = task.status.state
        if last_state in TERMINAL_STATES or last_state in INTERRUPTED_STATES:
            return
        context_id = task.context_id
        feed = RunFeed(run_id=task_id, user=caller.user)
        frames = feed.messages_after(after)
        try:
            async for frame in frames:
                kind = frame.get("type")
                if kind == "event" and frame.get("kind") == "message":
                    data = frame.get("data") or {}
                    text = str(data.get("text") or "") if isinstance(data, dict) else ""
                    if text and data.get("role") != "human":
                        update = TaskStatusUpdateEvent(task_id=task_id, context_id=context_id)
                        update.status.state = TaskState.TASK_STATE_WORKING
                        update.status.message.CopyFrom(
                            agent_message(
                                text,
                                task_id=task_id,
                                context_id=context_id,
                                message_id=f"{task_id}-{frame['seq']}",
                            )
                        )
                        update.status.timestamp.GetCurrentTime()
                        last_state = TaskState.TASK_STATE_WORKING
                        yield update
                elif kind == "status":
                    row = await self.store.row(task_id, context)
                    if row is None:
                        return
                    now = run_task(row)
                    state = now.status.state
                    if state == last_state and state not in TERMINAL_STATES:
                        continue
                    if row["status"] == "succeeded":
                        artifact = output_artifact(row.get("output"))
                        if artifact is not None:
                            yield TaskArtifactUpdateEvent(
                                task_id=task_id,
                                context_id=context_id,
                                artifact=artifact,
                                last_chunk=True,
                            )
                    last_state = state
                    yield TaskStatusUpdateEvent(
                        task_id=task_id, context_id=context_id, status=now.status
                    )
                    if state in TERMINAL_STATES or state in INTERRUPTED_STATES:
                        return
        finally:
            await frames.aclose()

    # --- cancel --------------------------------------------------------------------------------

    async def on_cancel_task(
        self, params: CancelTaskRequest, context: ServerCallContext
    ) -> Task | None:
        row = await self.store.row(params.id, context)
        if row is None:
            raise TaskNotFoundError(f"No task {params.id} of yours on this agent.")
        if row["status"] in TERMINAL_STATUSES:
            raise TaskNotCancelableError(f"Task {params.id} is {row['status']} already.")
        caller = caller_of(context)
        await database_sync_to_async(_cancel)(row["id"], caller.user)
        # The engine stops a running step within a second; the answer waits for it, briefly.
        await wait_for_status(
            str(row["id"]),
            caller.user,
            after_seq=int(row["last_seq"]),
            done=set(TERMINAL_STATUSES),
            timeout=10,
        )
        return await self._task(params.id, context, history=0)

    # --- not offered ---------------------------------------------------------------------------

    async def on_create_task_push_notification_config(
        self, params: TaskPushNotificationConfig, context: ServerCallContext
    ) -> TaskPushNotificationConfig:
        raise PushNotificationNotSupportedError()

    async def on_get_task_push_notification_config(
        self, params: GetTaskPushNotificationConfigRequest, context: ServerCallContext
    ) -> TaskPushNotificationConfig:
        raise PushNotificationNotSupportedError()

    async def on_list_task_push_notification_configs(
        self, params: ListTaskPushNotificationConfigsRequest, context: ServerCallContext
    ) -> ListTaskPushNotificationConfigsResponse:
        raise PushNotificationNotSupportedError()

    async def on_delete_task_push_notification_config(
        self, params: DeleteTaskPushNotificationConfigRequest, context: ServerCallContext
    ) -> None:
        raise PushNotificationNotSupportedError()

    async def on_get_extended_agent_card(
        self, params: GetExtendedAgentCardRequest, context: ServerCallContext
    ) -> AgentCard:
        raise ExtendedAgentCardNotConfiguredError()


# --- the services, on the database thread ------------------------------------------------------


def _start(caller: AgentCaller, message: Message) -> Run:
    workflow = caller.workflow
    version = workflow.versions.order_by("-number").first()
    if version is None:
        raise TaskNotFoundError("This agent has no published version.")
    fields = graph_load(version.graph).inputs.fields
    message_id = message.message_id[:200]
    # The same message again (a client retrying after a lost answer) is the same task.
    sent = _runs_of(caller).filter(a2a_message_id=message_id).first() if message_id else None
    if sent is not None:
        return sent
    try:
        inputs = message_inputs(fields, message)
        with transaction.atomic():
            return run_services.run_start(
                workflow=workflow,
                user=caller.user,
                inputs=inputs,
                version=version,
                launched_via=LaunchedVia.A2A,
                api_token=caller.token,
                a2a_context_id=message.context_id[:200],
                a2a_message_id=message_id,
            )
    except IntegrityError:
        # Its twin, sent at the same moment, was inserted first: answer with that run.
        twin = _runs_of(caller).filter(a2a_message_id=message_id).first()
        if twin is None:
            raise
        return twin
    except MessageRefused as refused:
        raise InvalidParamsError(str(refused)) from None
    except LaunchRefused as refused:
        raise UnsupportedOperationError(refused.messages[0]) from None
    except ValidationError as error:
        raise InvalidParamsError(
            "The message does not fit the workflow's inputs: " + "; ".join(_messages(error))
        ) from None


def _messages(error: ValidationError) -> list[str]:
    if hasattr(error, "message_dict"):
        return [f"{field}: {' '.join(texts)}" for field, texts in error.message_dict.items()]
    return list(error.messages)


def _answer(run_id: Any, waiting: dict[str, Any], answer: Any, user: User) -> None:
    run = Run.objects.get(pk=run_id)
    try:
        run_services.run_answer(
            run=run, step_key=str(waiting.get("step_key", "")), answer=answer, user=user
        )
    except ValidationError as error:
        raise UnsupportedOperationError(" ".join(error.messages)) from None


def _cancel(run_id: Any, user: User) -> None:
    run_services.run_cancel(run=Run.objects.get(pk=run_id), user=user)
