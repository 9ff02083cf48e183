"""One conversation with a remote A2A agent through the a2a-sdk's client (JSON-RPC binding).

`remote_call` sends a message (streamed when the card declares streaming, else sent and then
polled with GetTask) and follows the task until it completes or asks for input. It reports the
task id as soon as the remote agent names it (`remember`), so an interrupted step can follow
the same task later (`remembered`): by GetTask, then SubscribeToTask (or polling) while it
still runs, instead of sending its message again. Cancelled, it asks the remote agent to
cancel the task when the caller says so.

Every URL is checked against the outbound URL policy before it is called, redirects are never
followed, and a credential goes only to the origin it was saved with. No message raised here
contains the credential.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
from a2a.client import ClientConfig, ClientFactory
from a2a.client.client import Client
from a2a.types.a2a_pb2 import (
    AgentCard,
    Artifact,
    CancelTaskRequest,
    GetTaskRequest,
    Message,
    Part,
    Role,
    SendMessageRequest,
    StreamResponse,
    SubscribeToTaskRequest,
    Task,
    TaskState,
)
from a2a.utils.errors import A2AError
from google.protobuf.json_format import MessageToDict

from agents.remote.card import (
    RemoteCard,
    RemoteCardError,
    remote_card_fetch_async,
    remote_host,
    remote_origin,
    remote_url_check,
)
from workflows.engine.contracts import (
    RemoteAgentError,
    RemoteRequest,
    RemoteResult,
    RemoteUpdate,
)

logger = logging.getLogger(__name__)

POLL_S = 0.5
CANCEL_TIMEOUT_S = 5.0
FINAL = {"completed", "failed", "canceled", "rejected"}
INTERRUPTED = {"input-required", "auth-required"}


def state_name(state: int) -> str:
    """TASK_STATE_INPUT_REQUIRED → "input-required"."""
    return TaskState.Name(state).removeprefix("TASK_STATE_").lower().replace("_", "-")


def parts_text(parts: Any) -> str:
    return "".join(part.text for part in parts if part.HasField("text"))


@dataclass
class Remembered:
    task_id: str
    context_id: str = ""


@dataclass
class _Progress:
    """What the stream has told so far about one task."""

    agent: str
    task_id: str = ""
    context_id: str = ""
    state: str = ""
    message: str = ""  # the latest status message's text
    message_id: str = ""
    artifacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    direct: str | None = None  # a direct Message answer (no task)
    usage: dict[str, Any] | None = None

    def take_task(self, task: Task) -> None:
        self.task_id, self.context_id = task.id, task.context_id
        self.state = state_name(task.status.state)
        if task.status.HasField("message"):
            self.message = parts_text(task.status.message.parts)
            self.message_id = task.status.message.message_id
        self.artifacts = {}
        for artifact in task.artifacts:
            self.take_artifact(artifact, append=False)
        self.take_usage(task.metadata)

    def take_artifact(self, artifact: Artifact, *, append: bool) -> str:
        text = parts_text(artifact.parts)
        data = [MessageToDict(part.data) for part in artifact.parts if part.HasField("data")]
        kept = self.artifacts.get(artifact.artifact_id)
        if append and kept is not None:
            kept["text"] += text
            kept["data"] += data
        else:
            self.artifacts[artifact.artifact_id] = {
                "id": artifact.artifact_id,
                "name": artifact.name,
                "text": text,
                "data": data,
            }
        return text

    def take_usage(self, metadata: Any) -> None:
        # Not part of the protocol: some agents report their usage in the task's metadata.
        found = MessageToDict(metadata) if metadata is not None else {}
        usage = found.get("usage") if isinstance(found, dict) else None
        if isinstance(usage, dict):
            tokens = usage.get("tokens", usage.get("totalTokens"))
            cost = usage.get("cost_usd", usage.get("costUsd"))
            self.usage = {
                "tokens": int(tokens) if isinstance(tokens, int | float) else None,
                "cost_usd": str(cost) if isinstance(cost, int | float | str) else None,
            }

    @property
    def settled(self) -> bool:
        return self.direct is not None or self.state in FINAL or self.state in INTERRUPTED


def _message(request: RemoteRequest) -> Message:
    message = Message(
        message_id=request.message_id, role=Role.ROLE_USER, parts=[Part(text=request.text)]
    )
    if request.task_id:
        message.task_id = request.task_id
    if request.context_id:
        message.context_id = request.context_id
    if request.skill_id:
        message.metadata.update({"skillId": request.skill_id})
    return message


def _failure(error: BaseException, host: str) -> RemoteAgentError:
    """A client error in a person's words; never with a credential (httpx does not put headers
    in its messages)."""
    cause: BaseException | None = error
    while cause is not None and not isinstance(cause, httpx.HTTPError):
        cause = cause.__cause__
    if isinstance(cause, httpx.HTTPStatusError):
        status = cause.response.status_code
        if status in (401, 403):
            return RemoteAgentError(
                f"The remote agent at {host} refused the call (HTTP {status}): check the "
                "credential saved for it on the remote agents page."
            )
        return RemoteAgentError(f"The remote agent at {host} answered HTTP {status}.")
    if isinstance(cause, httpx.TimeoutException):
        return RemoteAgentError(f"The remote agent at {host} did not answer in time.")
    if isinstance(cause, httpx.HTTPError):
        return RemoteAgentError(
            f"The remote agent at {host} is unreachable ({type(cause).__name__})."
        )
    if isinstance(error, A2AError):
        return RemoteAgentError(f"The remote agent at {host} answered with an error: {error}")
    return RemoteAgentError(
        f"The call to the remote agent at {host} failed ({type(error).__name__})."
    )


class RemoteConversation:
    """The client side of one call: the card, the SDK client, and the task being followed."""

    def __init__(
        self,
        request: RemoteRequest,
        *,
        credential: str = "",
        credential_origin: str = "",
        on_update: Callable[[RemoteUpdate], Awaitable[None]],
        remember: Callable[[str, str, str], Awaitable[None]],
        remembered: Remembered | None,
    ) -> None:
        self.request = request
        self.credential = credential
        self.credential_origin = credential_origin
        self.on_update = on_update
        self.remember = remember
        self.remembered = remembered
        self.host = remote_host(request.url)
        self.progress = _Progress(agent=self.host)
        self.card: RemoteCard | None = None
        self._remembered_id = remembered.task_id if remembered else ""

    async def run(self, cancel_remote: Callable[[], bool]) -> RemoteResult:
        if self.credential and remote_origin(self.request.url) != self.credential_origin:
            raise RemoteAgentError(
                f"The credential was saved for {self.credential_origin}, not for "
                f"{remote_origin(self.request.url)}; it is not sent elsewhere."
            )
        headers = {"Authorization": f"Bearer {self.credential}"} if self.credential else {}
        timeout = httpx.Timeout(30.0, read=None)
        async with httpx.AsyncClient(
            follow_redirects=False, timeout=timeout, headers=headers
        ) as http:
            try:
                self.card, card = await remote_card_fetch_async(self.request.url, http)
            except RemoteCardError as error:
                raise RemoteAgentError(str(error)) from None
            self.progress.agent = self.card.name
            client = await self._client(card, http)
            try:
                return await self._converse(client)
            except asyncio.CancelledError:
                if cancel_remote() and self.progress.task_id:
                    await self._cancel(client)
                raise
            except RemoteAgentError:
                raise
            except Exception as error:  # noqa: BLE001 - the SDK and httpx raise many kinds
                raise _failure(error, self.host) from None
            finally:
                await client.close()

    async def _client(self, card: AgentCard, http: httpx.AsyncClient) -> Client:
        assert self.card is not None
        endpoint = self.card.endpoint
        if not endpoint:
            raise RemoteAgentError(
                f"The agent card of {self.host} offers no JSON-RPC endpoint, the binding the "
                "studio speaks."
            )
        try:
            await asyncio.to_thread(remote_url_check, endpoint)
        except RemoteCardError as error:
            raise RemoteAgentError(f"{error} (the endpoint its card names)") from None
        if self.credential and remote_origin(endpoint) != self.credential_origin:
            raise RemoteAgentError(
                f"The card of {self.host} sends calls to {remote_origin(endpoint)}, but its "
                f"credential was saved for {self.credential_origin}; it is not sent elsewhere."
            )
        config = ClientConfig(streaming=self.card.streaming, httpx_client=http)
        return ClientFactory(config).create(card)

    async def _converse(self, client: Client) -> RemoteResult:
        progress = self.progress
        if self.remembered is not None:
            task = await client.get_task(GetTaskRequest(id=self.remembered.task_id))
            progress.take_task(task)
            unanswered = (
                self.request.asked_id
                and progress.state == "input-required"
                and progress.message_id == self.request.asked_id
            )
            ended_badly = progress.state in FINAL and progress.state != "completed"
            if ended_badly:
                # An earlier attempt's task failed: this attempt (the node's retry) is a new
                # task, under a message id of its own.
                self.request = replace(self.request, message_id=str(uuid.uuid4()))
                self.progress = progress = _Progress(agent=progress.agent)
                self._remembered_id = ""
            elif not unanswered:
                if not progress.settled:
                    await self._follow(client)
                return self._result(resumed=True)
        await self._consume(client.send_message(SendMessageRequest(message=_message(self.request))))
        if not progress.settled and progress.task_id:
            await self._follow(client)
        return self._result(resumed=False)

    async def _follow(self, client: Client) -> None:
        """Follows a running task: its stream when the card declares streaming, else GetTask."""
        assert self.card is not None
        progress = self.progress
        if self.card.streaming:
            stream = client.subscribe(SubscribeToTaskRequest(id=progress.task_id))
            await self._consume(stream)
            if progress.settled:
                return
        while not progress.settled:
            await asyncio.sleep(POLL_S)
            progress.take_task(await client.get_task(GetTaskRequest(id=progress.task_id)))

    async def _consume(self, stream: AsyncIterator[StreamResponse]) -> None:
        progress = self.progress
        async for event in stream:
            which = event.WhichOneof("payload")
            if which == "message":
                progress.direct = parts_text(event.message.parts)
                progress.message_id = event.message.message_id
                return
            if which == "task":
                progress.take_task(event.task)
            elif which == "status_update":
                update = event.status_update
                progress.task_id = progress.task_id or update.task_id
                progress.context_id = progress.context_id or update.context_id
                progress.state = state_name(update.status.state)
                if update.status.HasField("message"):
                    progress.message = parts_text(update.status.message.parts)
                    progress.message_id = update.status.message.message_id
                    if progress.message and not (
                        progress.state in FINAL or progress.state in INTERRUPTED
                    ):
                        await self.on_update(
                            RemoteUpdate(
                                "message",
                                progress.message,
                                agent=progress.agent,
                                task_id=progress.task_id,
                                state=progress.state,
                            )
                        )
                progress.take_usage(update.metadata)
            elif which == "artifact_update":
                update = event.artifact_update
                progress.task_id = progress.task_id or update.task_id
                text = progress.take_artifact(update.artifact, append=update.append)
                if text:
                    await self.on_update(
                        RemoteUpdate("chunk", text, agent=progress.agent, task_id=progress.task_id)
                    )
            if progress.task_id and progress.task_id != self._remembered_id:
                self._remembered_id = progress.task_id
                await self.remember(progress.task_id, progress.context_id, progress.state)
            if progress.settled:
                return

    async def _cancel(self, client: Client) -> None:
        try:
            await asyncio.wait_for(
                asyncio.shield(client.cancel_task(CancelTaskRequest(id=self.progress.task_id))),
                CANCEL_TIMEOUT_S,
            )
        except Exception as error:  # noqa: BLE001 - the run is cancelled whatever the remote says
            logger.warning(
                "Remote task %s at %s was not cancelled (%s).",
                self.progress.task_id,
                self.host,
                type(error).__name__,
            )

    def _result(self, *, resumed: bool) -> RemoteResult:
        progress = self.progress
        if progress.direct is not None:
            return RemoteResult(
                agent=progress.agent,
                host=self.host,
                task_id=progress.task_id,
                context_id=progress.context_id,
                state="message",
                text=progress.direct,
                resumed=resumed,
            )
        state = progress.state
        said = progress.message
        if state == "failed":
            raise RemoteAgentError(
                f"The remote agent's task {progress.task_id} failed"
                + (f": {said}" if said else ".")
            )
        if state == "rejected":
            raise RemoteAgentError(
                "The remote agent rejected the task" + (f": {said}" if said else ".")
            )
        if state == "canceled":
            raise RemoteAgentError(f"The remote agent cancelled task {progress.task_id}.")
        if state == "auth-required":
            raise RemoteAgentError(
                "The remote agent asks for further authentication, which the studio cannot give"
                + (f": {said}" if said else ".")
            )
        artifacts = list(progress.artifacts.values())
        text = "\n\n".join(a["text"] for a in artifacts if a["text"]) or (
            said if state == "completed" else ""
        )
        return RemoteResult(
            agent=progress.agent,
            host=self.host,
            task_id=progress.task_id,
            context_id=progress.context_id,
            state=state,
            text=text,
            question=said if state == "input-required" else "",
            question_id=progress.message_id if state == "input-required" else "",
            artifacts=artifacts,
            usage=progress.usage,
            resumed=resumed,
        )
