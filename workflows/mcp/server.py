"""The studio's MCP endpoint (`/mcp/`): published workflows offered as tools, over streamable HTTP.

Mounted in the ASGI application beside Django (a2a_site/asgi.py), so Django's middleware does not
run here: `McpEndpoint` authenticates the bearer API token itself and hands the token to the
SDK's handlers on the request's scope. The SDK runs stateless (each POST stands alone, no
session held in this process), so any web process can answer any request.

- `tools/list` (token scope `read`): the offered workflows of the token's workspaces, with their
  input schemas.
- `tools/call` (scope `run`, editor role): starts a run (`LaunchedVia.MCP`), follows its stored
  events until it ends, and answers with its output. Progress notifications carry each step as
  it finishes when the client sent a progress token. A run that waits for a person ends the call
  with the run's address, where someone can answer; a client that gives up on the call (closes
  the request) cancels the run.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Final

from django.conf import settings
from django.core.exceptions import ValidationError
from django.urls import reverse
from mcp.server import Server
from mcp.server.context import ServerRequestContext
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.exceptions import MCPError
from mcp_types import (
    INVALID_PARAMS,
    CallToolRequestParams,
    CallToolResult,
    ListToolsResult,
    PaginatedRequestParams,
    TextContent,
    Tool,
)

from a2a_site.api.models import ApiToken, Scope
from a2a_site.api.ratelimit import rate_limit_wait
from a2a_site.api.tokens import TokenRefused, token_authenticate
from a2a_site.db import in_db_thread
from workflows.mcp.catalog import (
    McpRefused,
    mcp_run_cancel,
    mcp_run_start,
    mcp_run_state,
    offered_workflow,
    offered_workflows,
)
from workflows.models import TERMINAL_STATUSES, RunEvent, RunStatus

logger = logging.getLogger(__name__)

TOKEN_KEY: Final = "a2a_studio.token"
POLL_S: Final = 0.25


def _token(ctx: ServerRequestContext[Any, Any]) -> ApiToken:
    request = ctx.request
    token = request.scope.get(TOKEN_KEY) if request is not None else None
    if not isinstance(token, ApiToken):  # the endpoint authenticates every request first
        raise MCPError(-32001, "Not authenticated.")
    return token


def _run_url(ctx: ServerRequestContext[Any, Any], run_id: Any) -> str:
    path = reverse("run_detail", args=[run_id])
    if settings.SITE_URL:
        return f"{settings.SITE_URL.rstrip('/')}{path}"
    request = ctx.request
    return f"{str(request.base_url).rstrip('/')}{path}" if request is not None else path


async def _list_tools(
    ctx: ServerRequestContext[Any, Any], params: PaginatedRequestParams | None
) -> ListToolsResult:
    token = _token(ctx)
    offered = await in_db_thread(offered_workflows, token)
    return ListToolsResult(
        tools=[
            Tool(name=item.tool_name, description=item.description, input_schema=item.input_schema)
            for item in offered
        ]
    )


def _text(text: str, *, error: bool = False, structured: Any = None) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=text)],
        is_error=error,
        structured_content=structured,
    )


def _output_result(output: Any) -> CallToolResult:
    if isinstance(output, str):
        return _text(output)
    text = json.dumps(output, ensure_ascii=False, indent=2, default=str)
    return _text(text, structured=output if isinstance(output, dict) else None)


def _events_after(run_id: Any, seq: int) -> list[tuple[int, str, dict[str, Any]]]:
    return [
        (event.seq, event.kind, event.data or {})
        for event in RunEvent.objects.filter(run_id=run_id, seq__gt=seq).order_by("seq")[:200]
    ]


def _progress_message(kind: str, data: dict[str, Any], step_key: str = "") -> str | None:
    if kind == "node_finished":
        return f"Finished {data.get('node') or data.get('node_id') or 'a step'}."
    if kind == "message":
        text = str(data.get("text") or "")
        return f"{data.get('agent') or 'Agent'}: {text[:200]}" if text else None
    return None


async def _stop_for_client(token: Any, run_id: Any) -> None:
    """Cancels the run of a client that gave up on its call. Should the database fail to take
    the cancel, the run goes on (its page shows it) and the give-up still ends the call."""
    try:
        await in_db_thread(mcp_run_cancel, token, run_id)
    except Exception:  # noqa: BLE001 - logged; the client is gone either way
        logger.warning("MCP: the run %s of a client that gave up could not be cancelled.", run_id)


async def _cancel_once_started(starting: asyncio.Future[Any], token: Any) -> None:
    try:
        run = await starting
    except Exception:  # noqa: BLE001 - refused or invalid: no run to stop
        return
    await _stop_for_client(token, run.pk)


async def _call_tool(
    ctx: ServerRequestContext[Any, Any], params: CallToolRequestParams
) -> CallToolResult:
    token = _token(ctx)
    offered = await in_db_thread(offered_workflow, token, params.name)
    if offered is None:
        raise MCPError(INVALID_PARAMS, f"There is no tool named {params.name!r}.")
    starting = asyncio.ensure_future(
        in_db_thread(mcp_run_start, token, offered, dict(params.arguments or {}))
    )
    try:
        # Shielded: a client that gives up while its run is being started (the start runs on
        # a database thread to its end anyway) still has that run stopped, once it exists.
        run = await asyncio.shield(starting)
    except asyncio.CancelledError:
        await asyncio.shield(_cancel_once_started(starting, token))
        raise
    except McpRefused as refused:
        return _text(str(refused), error=True)
    except ValidationError as error:
        details = (
            "; ".join(
                f"{name}: {' '.join(messages)}" if name != "__all__" else " ".join(messages)
                for name, messages in error.message_dict.items()
            )
            if hasattr(error, "error_dict")
            else " ".join(error.messages)
        )
        return _text(f"The arguments do not fit the workflow's inputs: {details}", error=True)
    run_id = run.pk
    progress_token = (ctx.meta or {}).get("progress_token")
    seq, finished_steps = 0, 0
    try:
        while True:
            state = await in_db_thread(mcp_run_state, run_id)
            if progress_token is not None and state.last_seq > seq:
                events = await in_db_thread(_events_after, run_id, seq)
                for event_seq, kind, data in events:
                    seq = event_seq
                    message = _progress_message(kind, data)
                    if message is None:
                        continue
                    finished_steps += 1
                    await ctx.session.send_progress_notification(
                        progress_token,
                        float(finished_steps),
                        message=message,
                        related_request_id=str(ctx.request_id),
                    )
            if state.status in TERMINAL_STATUSES:
                break
            if state.status == RunStatus.WAITING:
                question = (state.waiting_request or {}).get("prompt") or "a person's answer"
                return _text(
                    f"The run is waiting for a person ({question}). Answer it at "
                    f"{_run_url(ctx, run_id)}; the run then goes on, and its output shows there.",
                    error=True,
                    structured={"run_id": str(run_id), "status": "waiting"},
                )
            await asyncio.sleep(POLL_S)
    except asyncio.CancelledError:
        # The client gave up on the call (it closed the request): the run stops with it.
        await asyncio.shield(_stop_for_client(token, run_id))
        raise
    if state.status == RunStatus.SUCCEEDED:
        return _output_result(state.output)
    what = "was cancelled" if state.status == RunStatus.CANCELLED else "failed"
    return _text(
        f"The run {what}: {state.reason or 'no reason given'} ({_run_url(ctx, run_id)})",
        error=True,
    )


mcp_server: Server[Any] = Server(
    "a2a-studio",
    version="1",
    instructions="Each tool runs a published A2A Studio workflow and answers with its output.",
    on_list_tools=_list_tools,
    on_call_tool=_call_tool,
)


class McpEndpoint:
    """ASGI app for `/mcp/`: bearer token first, then the SDK's streamable HTTP handling."""

    def __init__(self) -> None:
        self.manager: StreamableHTTPSessionManager | None = None
        self.started: asyncio.Event | None = None

    async def _running(self) -> StreamableHTTPSessionManager:
        # Daphne sends no lifespan events: the manager starts with the first request and runs
        # for the life of the process.
        if self.started is None:
            self.started = asyncio.Event()
            self.manager = StreamableHTTPSessionManager(
                app=mcp_server, stateless=True, json_response=False
            )
            asyncio.get_running_loop().create_task(self._hold(self.manager))
        await self.started.wait()
        assert self.manager is not None
        return self.manager

    async def _hold(self, manager: StreamableHTTPSessionManager) -> None:
        async with manager.run():
            assert self.started is not None
            self.started.set()
            await asyncio.Event().wait()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        headers = dict(scope.get("headers") or [])
        header = headers.get(b"authorization", b"").decode("latin-1")
        scheme, _, secret = header.partition(" ")
        if not header or scheme.lower() != "bearer" or not secret.strip():
            await _refuse(
                send, 401, "Send an A2A Studio API token as `Authorization: Bearer <token>`."
            )
            return
        try:
            token = await in_db_thread(token_authenticate, secret.strip())
        except TokenRefused as refused:
            await _refuse(send, 401, str(refused))
            return
        if not token.scope_enum.allows(Scope.READ):
            await _refuse(send, 403, "This token may not read.")
            return
        wait = await in_db_thread(rate_limit_wait, f"token:{token.pk}")
        if wait:
            await _refuse(
                send, 429, f"This token made too many requests; retry in {wait} s.", retry=wait
            )
            return
        scope[TOKEN_KEY] = token
        manager = await self._running()
        await manager.handle_request(scope, receive, send)


async def _refuse(send: Any, status: int, message: str, *, retry: int = 0) -> None:
    body = json.dumps(
        {"jsonrpc": "2.0", "id": None, "error": {"code": -32001, "message": message}}
    ).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="a2a-studio"'))
    if retry:
        headers.append((b"retry-after", str(retry).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


mcp_endpoint = McpEndpoint()
