"""The A2A edge: the SDK's Starlette routes for every exposed workflow, under /a2a/<id>/.

    GET  /a2a/<workflow id>/.well-known/agent-card.json   the card (public; ETag, max-age)
    POST /a2a/<workflow id>/                             JSON-RPC 2.0 binding
         /a2a/<workflow id>/rest/...                     HTTP+JSON binding (same handler)

Django's middleware does not run here (the app sits beside Django in the ASGI router), so
`AgentGate`, an ASGI middleware, does what it would: it finds the agent (a published workflow
whose A2A switch is on: else 404), refuses a body that is not JSON (415, JSON-RPC -32005),
authenticates the bearer token with the API's own `token_authenticate` and rate limit (none or
a bad one: 401), and checks it through the API's access seam — the token's scope must be `run`
or more (403), its user a member of the workflow's workspace who may run it, and a token limited
to another workspace sees nothing (404, as for a workflow of another workspace). The caller
travels to the handler in the ASGI scope, read by `CallerContextBuilder`.

The `A2A-Version` header is the SDK's: 1.0 is served; a request without the header is a 0.3
request (as the specification says) and answered with VersionNotSupported (-32009).
"""

from __future__ import annotations

import contextvars
import json
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from a2a.server.context import ServerCallContext
from a2a.server.routes import (
    DefaultServerCallContextBuilder,
    create_agent_card_routes,
    create_jsonrpc_routes,
    create_rest_routes,
)
from a2a.types.a2a_pb2 import AgentCard
from channels.db import database_sync_to_async
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils.http import http_date
from starlette.applications import Starlette
from starlette.requests import Request

from workflows.a2a.card import agent_card, derived_skill
from workflows.a2a.handler import AgentCaller
from workflows.a2a.routing import AgentRouter

logger = logging.getLogger(__name__)

PREFIX = "/a2a/"
CARD_PATH = ".well-known/agent-card.json"
CONFORMANCE_AGENT = "conformance"
JSON_TYPES = ("application/json", "application/a2a+json")

# The conformance agent's card changes only with the code: as old as this process.
STARTED_AT = datetime.now(UTC)
_served_card: contextvars.ContextVar[AgentCard] = contextvars.ContextVar("a2a_served_card")


class CallerContextBuilder(DefaultServerCallContextBuilder):
    def build(self, request: Request) -> ServerCallContext:
        context = super().build(request)
        context.state["a2a_caller"] = request.scope.get("a2a.caller")
        context.state["a2a_agent"] = request.scope.get("a2a.agent")
        return context


async def _card_of_request(_: AgentCard) -> AgentCard:
    return _served_card.get()


def _routes() -> list[Any]:
    handler = AgentRouter()
    builder = CallerContextBuilder()
    return [
        *create_agent_card_routes(
            # Each request serves its own agent's card (`_card_of_request`); this one never is.
            agent_card(
                url=PREFIX,
                name="A2A Studio agent",
                description="",
                version=0,
                skills=[derived_skill(name="A2A Studio agent", description="", fields=[])],
                organization="A2A Studio",
                provider_url="/",
            ),
            card_modifier=_card_of_request,
            card_url=f"{PREFIX}{{agent}}/{CARD_PATH}",
            cache_control=f"public, max-age={settings.A2A_CARD_MAX_AGE_SECONDS}",
        ),
        *create_jsonrpc_routes(handler, f"{PREFIX}{{agent}}/", context_builder=builder),
        *create_rest_routes(
            handler, context_builder=builder, path_prefix=f"{PREFIX}{{agent}}/rest"
        ),
    ]


# --- finding the agent and the caller (on the database thread) --------------------------------


def _exposed_workflow(agent: str) -> Any:
    from workflows.models import Workflow

    try:
        pk = uuid.UUID(agent)
    except ValueError:
        return None
    return (
        Workflow.objects.select_related("workspace", "a2a")
        .filter(pk=pk, a2a__enabled=True, latest_version__gt=0)
        .first()
    )


def _card_for(workflow: Any, base_url: str) -> tuple[AgentCard, datetime]:
    """The card, and when what it says last changed (its Last-Modified)."""
    from workflows.graph import GraphError, graph_load

    skills = list(workflow.a2a.skills or [])
    if not skills:
        version = workflow.versions.order_by("-number").first()
        try:
            fields = graph_load(version.graph).inputs.fields if version else []
        except GraphError:
            fields = []
        skills = [
            derived_skill(name=workflow.name, description=workflow.description, fields=fields)
        ]
    card = agent_card(
        url=f"{base_url}{PREFIX}{workflow.pk}/",
        name=workflow.name,
        description=workflow.description,
        version=workflow.latest_version,
        skills=skills,
        organization=workflow.workspace.name,
        provider_url=base_url + "/",
    )
    return card, max(workflow.updated_at, workflow.a2a.updated_at, workflow.workspace.created_at)


class Refusal(Exception):
    def __init__(self, status: int, code: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def _caller_for(workflow: Any, authorization: str | None) -> AgentCaller:
    from a2a_site.api.auth import ApiCaller
    from a2a_site.api.models import Scope
    from a2a_site.api.problems import ApiError
    from a2a_site.api.ratelimit import rate_limit_wait
    from a2a_site.api.tokens import TokenRefused, token_authenticate
    from workflows.selectors import get_workflow_for_user

    challenge = {"WWW-Authenticate": 'Bearer realm="a2a-studio"'}
    if not authorization:
        raise Refusal(401, -32600, "Send an API token: Authorization: Bearer <token>.", challenge)
    scheme, _, secret = authorization.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Refusal(401, -32600, "Send the token as Authorization: Bearer <token>.", challenge)
    try:
        token = token_authenticate(secret.strip())
    except TokenRefused as refused:
        raise Refusal(
            401, -32600, str(refused), {"WWW-Authenticate": challenge["WWW-Authenticate"]}
        ) from None
    wait = rate_limit_wait(f"token:{token.pk}")
    if wait:
        raise Refusal(
            429,
            -32600,
            f"Too many requests with this token; retry in {wait} s.",
            {"Retry-After": str(wait)},
        )
    caller = ApiCaller(user=token.user, token=token)
    try:
        found, _ = caller.lookup(get_workflow_for_user, workflow.pk, Scope.RUN)
    except Http404:
        raise Refusal(404, -32001, "No such agent.") from None
    except (ApiError, PermissionDenied) as error:
        raise Refusal(403, -32600, str(error)) from None
    return AgentCaller(user=token.user, token=token, workflow=found)


def _admit_agent(agent: str, authorization: str | None, base_url: str, is_card: bool) -> Any:
    """The card, or the caller, of an exposed workflow: one trip to the database thread."""
    workflow = _exposed_workflow(agent)
    if workflow is None:
        raise Refusal(404, -32001, "No A2A agent here (is the workflow's switch on?).")
    if is_card:
        return _card_for(workflow, base_url)
    return _caller_for(workflow, authorization)


admit_agent = database_sync_to_async(_admit_agent)


# --- the gate ------------------------------------------------------------------------------------


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def _base_url(scope: dict[str, Any]) -> str:
    if settings.SITE_URL:
        return str(settings.SITE_URL).rstrip("/")
    scheme = scope.get("scheme", "http")
    host = _header(scope, b"host")
    if not host:
        server = scope.get("server") or ("localhost", 80)
        host = f"{server[0]}:{server[1]}"
    return f"{scheme}://{host}"


async def _refuse(send: Any, refusal: Refusal) -> None:
    body = json.dumps(
        {"jsonrpc": "2.0", "id": None, "error": {"code": refusal.code, "message": refusal.message}}
    ).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in refusal.headers.items()]
    await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class AgentGate:
    """ASGI middleware in front of the SDK's routes: the agent, the body's type, the caller."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rest = scope["path"][len(PREFIX) :]
        agent, _, tail = rest.partition("/")
        is_card = tail == CARD_PATH
        try:
            await self._admit(scope, agent, is_card)
        except Refusal as refusal:
            await _refuse(send, refusal)
            return
        modified = scope.get("a2a.last_modified")
        if is_card and modified is not None:
            header = (b"last-modified", http_date(modified.timestamp()).encode())

            async def send_dated(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    message = {**message, "headers": [*message.get("headers", []), header]}
                await send(message)

            await self.app(scope, receive, send_dated)
            return
        await self.app(scope, receive, send)

    async def _admit(self, scope: dict[str, Any], agent: str, is_card: bool) -> None:
        conformance = agent == CONFORMANCE_AGENT and settings.A2A_CONFORMANCE_AGENT
        if is_card:
            if conformance:
                from workflows.a2a.conformance import conformance_card

                _served_card.set(conformance_card(f"{_base_url(scope)}{PREFIX}{agent}/"))
                scope["a2a.last_modified"] = STARTED_AT
            else:
                card, modified = await admit_agent(agent, None, _base_url(scope), True)
                _served_card.set(card)
                scope["a2a.last_modified"] = modified
            return
        if scope["method"] == "POST":
            content_type = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
            if content_type not in JSON_TYPES:
                raise Refusal(
                    415,
                    -32005,
                    f"Send JSON (Content-Type: application/json), not {content_type or 'nothing'}.",
                )
        if conformance:
            scope["a2a.agent"] = CONFORMANCE_AGENT
            return
        authorization = _header(scope, b"authorization")
        scope["a2a.caller"] = await admit_agent(agent, authorization, "", False)
        scope["a2a.agent"] = "workflow"


def a2a_application() -> Any:
    return AgentGate(Starlette(routes=_routes()))


def is_a2a_path(path: str) -> bool:
    return path.startswith(PREFIX)
