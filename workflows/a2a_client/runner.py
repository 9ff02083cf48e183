"""The engine's RemoteAgentRunner on the Django side."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from a2a_site.db import in_db_thread
from workflows.engine.contracts import (
    RemoteAgentError,
    RemoteRequest,
    RemoteResult,
    RemoteUpdate,
)
from workflows.models import RemoteTask

if TYPE_CHECKING:
    from workflows.a2a_client.conversation import Remembered


def remote_task_remembered(run_id: str, step_key: str) -> Remembered | None:
    from workflows.a2a_client.conversation import Remembered

    row = (
        RemoteTask.objects.filter(run_id=run_id, step_key=step_key)
        .values_list("task_id", "context_id")
        .first()
    )
    return Remembered(row[0], row[1]) if row else None


def remote_task_remember(
    run_id: str, step_key: str, host: str, task_id: str, context_id: str, state: str
) -> None:
    RemoteTask.objects.update_or_create(
        run_id=run_id,
        step_key=step_key,
        defaults={"host": host, "task_id": task_id, "context_id": context_id, "state": state},
    )


@dataclass
class DjangoRemoteAgentRunner:
    run_id: str
    workspace_id: str

    async def call(
        self,
        request: RemoteRequest,
        *,
        step_key: str,
        on_update: Callable[[RemoteUpdate], Awaitable[None]],
        cancel_remote: Callable[[], bool],
    ) -> RemoteResult:
        # The a2a SDK and httpx load with a run's first remote agent: a worker whose runs call
        # none does not carry them.
        from agents.remote.card import remote_host
        from agents.remote.services import remote_agent_credential
        from workflows.a2a_client.conversation import RemoteConversation

        credential = origin = ""
        if request.remote_agent_id:
            try:
                credential, origin, _ = await in_db_thread(
                    remote_agent_credential,
                    workspace_id=self.workspace_id,
                    remote_agent_id=request.remote_agent_id,
                )
            except ValueError as error:
                raise RemoteAgentError(str(error)) from None
        remembered = await in_db_thread(remote_task_remembered, self.run_id, step_key)
        host = remote_host(request.url)

        async def remember(task_id: str, context_id: str, state: str) -> None:
            await in_db_thread(
                remote_task_remember, self.run_id, step_key, host, task_id, context_id, state
            )

        conversation = RemoteConversation(
            request,
            credential=credential,
            credential_origin=origin,
            on_update=on_update,
            remember=remember,
            remembered=remembered,
        )
        result = await conversation.run(cancel_remote)
        if result.task_id:
            await in_db_thread(
                remote_task_remember,
                self.run_id,
                step_key,
                host,
                result.task_id,
                result.context_id,
                result.state,
            )
        return result
