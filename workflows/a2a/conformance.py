"""The built-in conformance agent at /a2a/conformance/ (only when A2A_CONFORMANCE_AGENT is on).

The A2A conformance kit drives the agent it certifies by the `messageId` of each message: a
prefix names the behaviour it expects (`tck-complete-task`, `tck-input-required`,
`tck-artifact-text`, `tck-stream-001`, …). A workflow of models cannot promise that, so this
agent does, behind the same edge as every workflow's agent — the SDK's routes, `AgentGate`
(415, the version header), the same error codes — and the kit certifies that layer. Its tasks
live in this process's memory: it is a test fixture, not a place to keep work, and off by default.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field

from a2a.helpers.proto_helpers import new_data_part
from a2a.server.context import ServerCallContext
from a2a.server.events.event_queue import Event
from a2a.server.request_handlers.request_handler import RequestHandler
from a2a.types.a2a_pb2 import (
    AgentCard,
    Artifact,
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
    ExtendedAgentCardNotConfiguredError,
    InvalidParamsError,
    PushNotificationNotSupportedError,
    TaskNotCancelableError,
    TaskNotFoundError,
    UnsupportedOperationError,
)

from workflows.a2a.card import agent_card
from workflows.a2a.tasks import INTERRUPTED_STATES, TERMINAL_STATES

# The kit's streaming timeout; its long-running scenario lasts twice that.
STREAMING_TIMEOUT_S = 2.0
MAX_TASKS = 5000


def conformance_card(url: str) -> AgentCard:
    return agent_card(
        url=url,
        name="A2A Studio conformance agent",
        description="Behaves as the A2A conformance kit's messageId prefixes ask, over the "
        "protocol layer that serves every workflow.",
        version=1,
        skills=[
            {
                "id": "conformance",
                "name": "Conformance scenarios",
                "description": "Completes, asks for input, rejects or streams as the "
                "message's id says.",
                "tags": ["conformance"],
            }
        ],
        organization="A2A Studio",
        provider_url=url,
        secured=False,  # the kit calls without credentials; this agent holds nothing
    )


@dataclass
class Step:
    """One thing the scenario does: a state, or an artifact (a chunk of one)."""

    state: int | None = None
    text: str = ""
    artifact: Artifact | None = None
    append: bool = False
    last_chunk: bool = True
    wait_s: float = 0.0


def _artifact(*parts: Part, artifact_id: str = "result") -> Artifact:
    return Artifact(artifact_id=artifact_id, name="result", parts=list(parts))


def scenario(message_id: str) -> list[Step] | Message:
    """What a message asks for, by its id's prefix (longest prefixes first)."""
    working = Step(state=TaskState.TASK_STATE_WORKING)
    completed = Step(state=TaskState.TASK_STATE_COMPLETED)
    stream_text = {
        "tck-stream-ordering-001": "Ordered output",
        "tck-stream-artifact-text": "Streamed text content",
        "tck-stream-001": "Stream hello from TCK",
        "tck-stream-003": "Stream task lifecycle",
    }
    if message_id.startswith("tck-message-response"):
        return Message(
            message_id=f"reply-{uuid.uuid4()}",
            role=Role.ROLE_AGENT,
            parts=[Part(text="Direct message response")],
        )
    if message_id.startswith("tck-reject-task"):
        return [Step(state=TaskState.TASK_STATE_REJECTED, text="rejected")]
    if message_id.startswith("tck-input-required"):
        return [Step(state=TaskState.TASK_STATE_INPUT_REQUIRED, text="Which one?")]
    if message_id.startswith("tck-artifact-text"):
        return [Step(artifact=_artifact(Part(text="Generated text content"))), completed]
    if message_id.startswith("tck-artifact-file-url"):
        part = Part(
            url="https://example.com/output.txt", filename="output.txt", media_type="text/plain"
        )
        return [Step(artifact=_artifact(part)), completed]
    if message_id.startswith("tck-artifact-file"):
        part = Part(raw=b"file content", filename="output.txt", media_type="text/plain")
        return [Step(artifact=_artifact(part)), completed]
    if message_id.startswith("tck-artifact-data"):
        part = new_data_part({"key": "value", "count": 42})
        return [Step(artifact=_artifact(part)), completed]
    if message_id.startswith("tck-stream-artifact-file"):
        part = Part(raw=b"file content", filename="output.txt", media_type="text/plain")
        return [working, Step(artifact=_artifact(part)), completed]
    if message_id.startswith("tck-stream-artifact-chunked"):
        return [
            working,
            Step(artifact=_artifact(Part(text="chunk-1 ")), last_chunk=False),
            Step(artifact=_artifact(Part(text="chunk-2")), append=True, last_chunk=True),
            completed,
        ]
    if message_id.startswith("tck-stream-002"):
        return [completed]
    for prefix, text in stream_text.items():
        if message_id.startswith(prefix):
            return [working, Step(artifact=_artifact(Part(text=text))), completed]
    if message_id.startswith("test-resubscribe-message-id"):
        return [working, Step(wait_s=2 * STREAMING_TIMEOUT_S), completed]
    # tck-complete-task and anything else: done, with a word.
    return [Step(state=TaskState.TASK_STATE_COMPLETED, text="Hello from TCK")]


@dataclass
class Held:
    task: Task
    listeners: list[asyncio.Queue[Event | None]] = field(default_factory=list)
    runner: asyncio.Task[None] | None = None


class ConformanceHandler(RequestHandler):
    def __init__(self) -> None:
        self.tasks: dict[str, Held] = {}

    # --- the scenario, applied --------------------------------------------------------------

    def _publish(self, held: Held, event: Event) -> None:
        for queue in held.listeners:
            queue.put_nowait(event)
        if isinstance(event, TaskStatusUpdateEvent) and (
            event.status.state in TERMINAL_STATES or event.status.state in INTERRUPTED_STATES
        ):
            for queue in held.listeners:
                queue.put_nowait(None)

    def _apply(self, held: Held, step: Step) -> list[Event]:
        task = held.task
        events: list[Event] = []
        if step.artifact is not None:
            if step.append:
                existing = next(
                    (a for a in task.artifacts if a.artifact_id == step.artifact.artifact_id), None
                )
                if existing is not None:
                    existing.parts.extend(step.artifact.parts)
                else:
                    task.artifacts.append(step.artifact)
            else:
                task.artifacts.append(step.artifact)
            events.append(
                TaskArtifactUpdateEvent(
                    task_id=task.id,
                    context_id=task.context_id,
                    artifact=step.artifact,
                    append=step.append,
                    last_chunk=step.last_chunk,
                )
            )
        if step.state is not None:
            task.status.state = step.state  # type: ignore[assignment]
            task.status.ClearField("message")
            if step.text:
                reply = Message(
                    message_id=f"agent-{uuid.uuid4()}",
                    role=Role.ROLE_AGENT,
                    task_id=task.id,
                    context_id=task.context_id,
                    parts=[Part(text=step.text)],
                )
                task.status.message.CopyFrom(reply)
                task.history.append(reply)
            task.status.timestamp.GetCurrentTime()
            events.append(
                TaskStatusUpdateEvent(
                    task_id=task.id, context_id=task.context_id, status=task.status
                )
            )
        for event in events:
            self._publish(held, event)
        return events

    async def _run(self, held: Held, steps: list[Step]) -> None:
        for step in steps:
            if held.task.status.state in TERMINAL_STATES:
                return  # cancelled meanwhile
            if step.wait_s:
                await asyncio.sleep(step.wait_s)
                continue
            self._apply(held, step)

    def _receive(self, params: SendMessageRequest) -> tuple[Held, list[Step]] | Message:
        message = params.message
        if not message.message_id:
            raise InvalidParamsError("A message needs a messageId.")
        if not message.parts:
            raise InvalidParamsError("A message needs at least one part.")
        steps = scenario(message.message_id)
        if message.task_id:
            held = self.tasks.get(message.task_id)
            if held is None:
                raise TaskNotFoundError(f"No task {message.task_id}.")
            if message.context_id and message.context_id != held.task.context_id:
                raise InvalidParamsError("This task belongs to another context.")
            if held.task.status.state in TERMINAL_STATES:
                raise UnsupportedOperationError("This task is finished; it takes no messages.")
        else:
            if isinstance(steps, Message):
                steps.context_id = message.context_id or str(uuid.uuid4())
                return steps
            task_id = str(uuid.uuid4())
            task = Task(id=task_id, context_id=message.context_id or str(uuid.uuid4()))
            task.status.state = TaskState.TASK_STATE_SUBMITTED
            task.status.timestamp.GetCurrentTime()
            held = Held(task=task)
            if len(self.tasks) >= MAX_TASKS:
                self.tasks.pop(next(iter(self.tasks)))
            self.tasks[task_id] = held
        if isinstance(steps, Message):
            steps = [Step(state=TaskState.TASK_STATE_COMPLETED, text="Hello from TCK")]
        kept = Message()
        kept.CopyFrom(message)
        kept.task_id = held.task.id
        kept.context_id = held.task.context_id
        held.task.history.append(kept)
        return held, steps

    def _view(self, task: Task, history: int | None) -> Task:
        copy = Task()
        copy.CopyFrom(task)
        if history is not None:
            if history < 0:
                raise InvalidParamsError("historyLength cannot be negative.")
            kept = list(copy.history)[-history:] if history else []
            del copy.history[:]
            copy.history.extend(kept)
        return copy

    # --- the protocol ------------------------------------------------------------------------

    async def on_message_send(
        self, params: SendMessageRequest, context: ServerCallContext
    ) -> Task | Message:
        received = self._receive(params)
        if isinstance(received, Message):
            return received
        held, steps = received
        if params.configuration.return_immediately:
            held.runner = asyncio.create_task(self._run(held, steps))
        else:
            await self._run(held, steps)
        config = params.configuration
        history = config.history_length if config.HasField("history_length") else None
        return self._view(held.task, history)

    async def on_message_send_stream(
        self, params: SendMessageRequest, context: ServerCallContext
    ) -> AsyncGenerator[Event]:
        received = self._receive(params)
        if isinstance(received, Message):
            yield received
            return
        held, steps = received
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        held.listeners.append(queue)
        try:
            yield self._view(held.task, None)
            held.runner = asyncio.create_task(self._run(held, steps))
            while True:
                event = await queue.get()
                if event is None:
                    return
                yield event
        finally:
            held.listeners.remove(queue)

    async def on_subscribe_to_task(
        self, params: SubscribeToTaskRequest, context: ServerCallContext
    ) -> AsyncGenerator[Event]:
        held = self.tasks.get(params.id)
        if held is None:
            raise TaskNotFoundError(f"No task {params.id}.")
        if held.task.status.state in TERMINAL_STATES:
            raise UnsupportedOperationError("This task is finished: nothing to subscribe to.")
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        held.listeners.append(queue)
        try:
            yield self._view(held.task, None)
            while True:
                event = await queue.get()
                if event is None:
                    return
                yield event
        finally:
            held.listeners.remove(queue)

    async def on_get_task(self, params: GetTaskRequest, context: ServerCallContext) -> Task | None:
        held = self.tasks.get(params.id)
        if held is None:
            raise TaskNotFoundError(f"No task {params.id}.")
        history = params.history_length if params.HasField("history_length") else None
        return self._view(held.task, history)

    async def on_list_tasks(
        self, params: ListTasksRequest, context: ServerCallContext
    ) -> ListTasksResponse:
        size = params.page_size or 50
        if not 1 <= size <= 100:
            raise InvalidParamsError("pageSize is between 1 and 100.")
        tasks = [held.task for held in reversed(self.tasks.values())]
        if params.context_id:
            tasks = [task for task in tasks if task.context_id == params.context_id]
        if params.status:
            tasks = [task for task in tasks if task.status.state == params.status]
        if params.HasField("status_timestamp_after"):
            after = params.status_timestamp_after.ToNanoseconds()
            tasks = [task for task in tasks if task.status.timestamp.ToNanoseconds() > after]
        start = 0
        if params.page_token:
            ids = [task.id for task in tasks]
            if params.page_token not in ids:
                raise InvalidParamsError("pageToken is not one this agent gave.")
            start = ids.index(params.page_token) + 1
        page = tasks[start : start + size]
        more = start + size < len(tasks)
        history = params.history_length if params.HasField("history_length") else 0
        return ListTasksResponse(
            tasks=[self._view(task, history) for task in page],
            next_page_token=page[-1].id if more and page else "",
            page_size=size,
            total_size=len(tasks),
        )

    async def on_cancel_task(
        self, params: CancelTaskRequest, context: ServerCallContext
    ) -> Task | None:
        held = self.tasks.get(params.id)
        if held is None:
            raise TaskNotFoundError(f"No task {params.id}.")
        if held.task.status.state in TERMINAL_STATES:
            raise TaskNotCancelableError("This task is finished already.")
        if held.runner is not None and not held.runner.done():
            held.runner.cancel()
        self._apply(held, Step(state=TaskState.TASK_STATE_CANCELED))
        return self._view(held.task, None)

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
