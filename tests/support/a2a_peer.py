"""A small A2A 1.0 agent built with the a2a-sdk's own server classes, run as a separate process.

The tests call it through our "Remote agent (A2A)" node. What it does depends on the text it
receives:

* "ask ..."    asks for input (input-required), then greets the answer and completes;
* "fail ..."   fails the task; "reject ..." rejects it;
* "hold ..."   reports working, then waits until released (GET /release) or cancelled;
* anything else streams "Echo: <text>" as artifact chunks, then completes ("slow ..." with half
  a second between them).

GET /calls answers how many messages it received and the Authorization headers it saw, so a
test can prove that a resumed run did not call again and which credential travelled. With
PEER_TOKEN set, every JSON-RPC call needs `Authorization: Bearer <PEER_TOKEN>` (else 401).

Run: python -m tests.support.a2a_peer <port> [streaming: 1|0]
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import uvicorn
from a2a.helpers.proto_helpers import new_text_artifact_update_event, new_text_message
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandlerV2
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types.a2a_pb2 import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentSkill,
    Role,
    Task,
    TaskState,
    TaskStatus,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

CALLS: dict[str, Any] = {"messages": 0, "texts": [], "authorization": [], "cancels": 0}
RELEASE = asyncio.Event()


class PeerExecutor(AgentExecutor):
    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        text = context.get_user_input()
        CALLS["messages"] += 1
        CALLS["texts"].append(text)
        task_id = context.task_id or ""
        context_id = context.context_id or ""
        updater = TaskUpdater(event_queue, task_id, context_id)
        current = context.current_task
        if current is None:
            await event_queue.enqueue_event(
                Task(
                    id=task_id,
                    context_id=context_id,
                    status=TaskStatus(state=TaskState.TASK_STATE_SUBMITTED),
                    history=[context.message] if context.message else [],
                )
            )
        asked = current is not None and current.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
        if asked:
            await updater.complete(self._say(updater, f"Hello, {text}! Your booking is done."))
            return
        if text.startswith("ask"):
            await updater.start_work(self._say(updater, "Looking at your request."))
            await updater.requires_input(self._say(updater, "What is your name?"))
            return
        if text.startswith("fail"):
            await updater.failed(self._say(updater, "The flight database is down."))
            return
        if text.startswith("reject"):
            await updater.reject(self._say(updater, "I do not handle such requests."))
            return
        if text.startswith("hold"):
            await updater.start_work(self._say(updater, "Working on it."))
            await RELEASE.wait()
            await event_queue.enqueue_event(
                new_text_artifact_update_event(
                    task_id,
                    context_id,
                    "answer",
                    "Released: " + text,
                    last_chunk=True,
                    artifact_id="answer",
                )
            )
            await updater.complete()
            return
        await updater.start_work()
        words = ["Echo:", *text.split()]
        for index, word in enumerate(words):
            await event_queue.enqueue_event(
                new_text_artifact_update_event(
                    task_id,
                    context_id,
                    "answer",
                    word if index == 0 else " " + word,
                    append=index > 0,
                    last_chunk=index == len(words) - 1,
                    artifact_id="answer",
                )
            )
            # "slow ..." leaves time to watch the answer arrive piece by piece.
            await asyncio.sleep(0.5 if text.startswith("slow") else 0.01)
        await updater.complete()

    def _say(self, updater: TaskUpdater, text: str) -> Any:
        return new_text_message(
            text, context_id=updater.context_id, task_id=updater.task_id, role=Role.ROLE_AGENT
        )

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        CALLS["cancels"] += 1
        updater = TaskUpdater(event_queue, context.task_id or "", context.context_id or "")
        await updater.cancel()


def build(port: int, streaming: bool) -> Starlette:
    base = f"http://127.0.0.1:{port}"
    card = AgentCard(
        name="Travel desk",
        description="Books trips; asks for what it needs.",
        version="1.2.0",
        supported_interfaces=[
            AgentInterface(url=f"{base}/rpc/", protocol_binding="JSONRPC", protocol_version="1.0")
        ],
        capabilities=AgentCapabilities(streaming=streaming),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain", "application/json"],
        skills=[
            AgentSkill(
                id="book", name="Book a trip", description="Books flights.", tags=["travel"]
            ),
            AgentSkill(id="echo", name="Echo", description="Says it back.", tags=["test"]),
        ],
    )
    handler = DefaultRequestHandlerV2(
        agent_executor=PeerExecutor(), task_store=InMemoryTaskStore(), agent_card=card
    )

    async def calls(request: Request) -> Response:
        return JSONResponse(CALLS)

    async def release(request: Request) -> Response:
        RELEASE.set()
        return JSONResponse({"released": True})

    routes = [
        *create_agent_card_routes(card),
        *create_jsonrpc_routes(handler, "/rpc/"),
        Route("/calls", calls),
        Route("/release", release),
    ]
    app = Starlette(routes=routes)
    token = os.environ.get("PEER_TOKEN", "")

    async def guarded(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/rpc"):
            headers = dict(scope.get("headers") or [])
            seen = headers.get(b"authorization", b"").decode()
            CALLS["authorization"].append(seen)
            if token and seen != f"Bearer {token}":
                await JSONResponse({"error": "unauthorized"}, status_code=401)(scope, receive, send)
                return
        await app(scope, receive, send)

    return guarded  # type: ignore[return-value]


if __name__ == "__main__":
    port = int(sys.argv[1])
    streaming = len(sys.argv) < 3 or sys.argv[2] != "0"
    uvicorn.run(build(port, streaming), host="127.0.0.1", port=port, log_level="warning")
