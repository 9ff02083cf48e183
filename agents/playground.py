"""The playground: chat with one agent, its reply streamed to the browser as server-sent events.

An async view, so a slow model holds no thread: the reply streams while the gateway works, and a
browser that goes away cancels the model call.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

from asgiref.sync import sync_to_async
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.http import require_POST
from pydantic import ValidationError

from a2a_site.accounts.models import Role
from a2a_site.json_input import JsonInputError, body_bytes, json_parse
from a2a_site.refusals import json_endpoint
from agents.config import AgentConfig, agent_config_load, config_errors
from agents.ledger import DatabaseLedger
from agents.llm import LLMError, gateway_for_loop
from agents.mcp.tools import mcp_registry, mcp_server_tools_of
from agents.models import Agent, AgentVersion, Provider
from agents.selectors import agent_latest_version, get_agent_for_user, tool_hosts_for
from agents.services.cli_turn import cli_turn
from agents.services.routing import (
    RoutingError,
    deployment_labels,
    providers_by_id,
    route_plan_for,
)
from agents.services.turn import TurnEvent, agent_turn
from agents.tools.base import ToolContext
from agents.tools.registry import builtin_registry

logger = logging.getLogger(__name__)

MAX_MESSAGES = 40
MAX_MESSAGE_CHARS = 20_000


class BadChat(ValueError):
    pass


def _payload(request: HttpRequest) -> dict[str, Any]:
    try:
        payload = json_parse(body_bytes(request) or b"{}", what="The request", expect=dict)
    except JsonInputError as error:
        raise BadChat(str(error)) from None
    return payload


def _history(payload: dict[str, Any]) -> list[dict[str, str]]:
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadChat("Send at least one message.")
    if len(messages) > MAX_MESSAGES:
        raise BadChat(f"At most {MAX_MESSAGES} messages; start a new conversation.")
    history = []
    for message in messages:
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise BadChat("Each message needs the role user or assistant.")
        content = message.get("content")
        if not isinstance(content, str) or not content.strip():
            raise BadChat("A message cannot be empty.")
        if len(content) > MAX_MESSAGE_CHARS:
            raise BadChat(f"A message can have at most {MAX_MESSAGE_CHARS} characters.")
        history.append({"role": message["role"], "content": content})
    if history[-1]["role"] != "user":
        raise BadChat("The last message must be yours.")
    return history


def _number(value: Any, name: str, kind: type[int] | type[float]) -> int | float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BadChat(f"The {name} must be a number.")
    try:
        return kind(value)
    except ValueError:
        raise BadChat(f"The {name} must be a number.") from None


def _for_this_try(config: AgentConfig, payload: dict[str, Any], workspace_id: UUID) -> AgentConfig:
    """The agent's configuration with the playground's model and parameters for this try.

    Nothing is saved: the agent keeps its versions; the try is recorded in the ledger like any call.
    """
    chosen = payload.get("settings")
    if not chosen:
        return config
    if not isinstance(chosen, dict):
        raise BadChat("The settings must be an object.")
    data = config.model_dump()
    model = chosen.get("model")
    if model:
        if not isinstance(model, dict) or not isinstance(model.get("model"), str):
            raise BadChat("Choose a model.")
        provider_id = str(model.get("provider_id", ""))
        if provider_id not in providers_by_id(workspace_id, [provider_id]):
            raise BadChat("Choose one of this workspace's providers.")
        data["model"] = {"provider_id": provider_id, "model": model["model"].strip()}
    for name, label, kind in (
        ("temperature", "temperature", float),
        ("max_tokens", "maximum number of tokens", int),
    ):
        if name in chosen:
            data[name] = _number(chosen[name], label, kind)
    try:
        return AgentConfig.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(
            f"{field}: {', '.join(messages)}" for field, messages in config_errors(error).items()
        )
        raise BadChat(f"These settings cannot be used: {problems}.") from None


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def _cli_provider(agent: Agent, config: AgentConfig) -> Provider | None:
    """The agent's provider when it is a command-line agent, which answers without the gateway."""
    return Provider.objects.filter(
        workspace_id=agent.workspace_id, pk=config.model.provider_id, kind="cli"
    ).first()


def _prepare(user: Any, agent_id: UUID) -> tuple[Agent, AgentVersion, AgentConfig]:
    agent, _ = get_agent_for_user(user, agent_id, role=Role.EDITOR)
    version = agent_latest_version(agent)
    if version is None:
        raise Http404("This agent has no saved version.")
    return agent, version, agent_config_load(version.config)


@json_endpoint
@require_POST
async def playground_stream(
    request: HttpRequest, agent_id: UUID
) -> HttpResponse | StreamingHttpResponse:
    user = await request.auser()
    if not user.is_authenticated:
        raise PermissionDenied("Log in to use the playground.")
    # Authorize first: a stranger learns nothing from how we judge their request.
    agent, version, config = await sync_to_async(_prepare)(user, agent_id)
    try:
        payload = _payload(request)
        history = _history(payload)
        config = await sync_to_async(_for_this_try)(config, payload, agent.workspace_id)
        cli_provider = await sync_to_async(_cli_provider)(agent, config)
        if cli_provider is None:
            plan = await sync_to_async(route_plan_for)(config, workspace_id=agent.workspace_id)
            labels = await sync_to_async(deployment_labels)(plan)
        else:
            labels = {f"{cli_provider.pk}:cli": cli_provider.name}
    except (BadChat, RoutingError) as error:
        return JsonResponse({"error": str(error)}, status=400)

    tool_hosts = await sync_to_async(tool_hosts_for)(agent.workspace_id)
    # The workspace's MCP tools, when the agent uses any (the playground records no calls).
    mcp_servers = (
        await sync_to_async(mcp_server_tools_of)(agent.workspace_id)
        if any(name.startswith("mcp_") for name in config.tools)
        else []
    )
    metadata = {
        "workspace_id": agent.workspace_id,
        "agent_id": agent.pk,
        "agent_version": version.number,
        "source": "playground",
        "user_id": user.pk,
    }

    async def events() -> AsyncIterator[bytes]:
        queue: asyncio.Queue[TurnEvent] = asyncio.Queue()
        if cli_provider is not None:
            work = cli_turn(
                provider=cli_provider,
                name=agent.name,
                config=config,
                history=history,
                ledger=DatabaseLedger(),
                metadata=metadata,
                on_event=queue.put_nowait,
            )
        else:
            work = agent_turn(
                gateway=gateway_for_loop(),
                name=agent.name,
                config=config,
                history=history,
                plan=plan,
                registry=mcp_registry(mcp_servers) if mcp_servers else builtin_registry(),
                tool_context=ToolContext(
                    workspace_id=str(agent.workspace_id),
                    allowed_hosts=tool_hosts.private,
                    only_hosts=tool_hosts.only,
                ),
                metadata=metadata,
                on_event=queue.put_nowait,
                limit_key=str(agent.pk),
            )
        turn = asyncio.create_task(work)
        try:
            while not turn.done() or not queue.empty():
                getter = asyncio.ensure_future(queue.get())
                await asyncio.wait({getter, turn}, return_when=asyncio.FIRST_COMPLETED)
                if getter.done():
                    event = getter.result()
                    data = dict(event.data)
                    if "deployment" in data:
                        data["deployment"] = labels.get(data["deployment"], data["deployment"])
                    yield _sse(event.kind, data)
                else:
                    getter.cancel()
            result = turn.result()
            yield _sse(
                "done",
                {
                    "text": result.text,
                    "prompt_tokens": result.prompt_tokens,
                    "completion_tokens": result.completion_tokens,
                    "cost": str(result.cost),
                    "cost_estimated": result.cost_estimated,
                    "unpriced_calls": sum(c.price_source == "unknown" for c in result.calls),
                    "model_calls": len(result.calls),
                    "stopped_reason": result.stopped_reason,
                },
            )
        except LLMError as error:
            yield _sse("error", {"message": str(error), "kind": error.kind})
        except Exception:
            logger.exception("Playground turn of agent %s failed", agent.pk)
            yield _sse("error", {"message": "The turn failed unexpectedly; it was logged."})
        finally:
            # The browser left, or the turn ended: never leave a model call running.
            turn.cancel()

    response = StreamingHttpResponse(events(), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response
