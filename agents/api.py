"""The public API's providers and agents (`/api/v1/providers`, `/api/v1/agents`): a thin edge over
agents/services and the access seam. A provider's key is write-only: it may be set, replaced or
removed, never read back — an answer says only whether one is stored and its last characters."""

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status

from a2a_site.api.auth import caller_of
from a2a_site.api.idempotency import idempotent
from a2a_site.api.models import Scope
from a2a_site.api.pagination import cursor_decode, cursor_encode
from a2a_site.api.problems import ApiError, FieldError, field_errors_of
from a2a_site.api.routes import workspace_of_request, workspace_to_change
from agents.llm.kinds import KINDS
from agents.models import Agent, AgentVersion, Provider
from agents.selectors import get_agent_for_user, get_provider_for_user
from agents.services import agents as agent_services
from agents.services import providers as provider_services
from agents.tools_catalog import tool_choices

providers_router = Router(tags=["providers"])
agents_router = Router(tags=["agents"])


class ListQuery(Schema):
    workspace: UUID | None = Field(None, description="Default: the token's workspace")
    cursor: str | None = None
    limit: int = Field(50, ge=1, le=200)


def _page(rows: Any, query: ListQuery) -> tuple[list[Any], str | None]:
    """One page of `rows` by (name, id), after the cursor."""
    rows = rows.order_by("name", "id")
    if query.cursor:
        name, pk = cursor_decode(query.cursor, 2)
        rows = rows.filter(Q(name__gt=name) | Q(name=name, id__gt=pk))
    page = list(rows[: query.limit + 1])
    more = len(page) > query.limit
    page = page[: query.limit]
    return page, cursor_encode(page[-1].name, str(page[-1].pk)) if more else None


def _refused(error: ValidationError, *, config: bool = False) -> ApiError:
    """A service's refusal; for agents, a field of the configuration is named inside `config`."""
    errors = field_errors_of(error)
    if config:
        errors = [
            item
            if item.field in ("name", "description")
            else FieldError(f"config.{item.field}" if item.field else "config", item.message)
            for item in errors
        ]
    return ApiError("validation", errors[0].message, errors=errors)


# --- Providers -----------------------------------------------------------------------------------


class ProviderOut(Schema):
    id: UUID
    workspace_id: UUID
    kind: str
    name: str
    base_url: str
    api_version: str
    has_key: bool = Field(description="Whether a key is stored; the key itself is never returned")
    key_hint: str = Field(description="The key's last characters, masked: ••••abcd")
    input_price_per_1k: Decimal | None
    output_price_per_1k: Decimal | None
    rpm_limit: int | None
    tpm_limit: int | None
    timeout_s: int
    first_byte_timeout_s: int
    chunk_timeout_s: int
    routing_strategy: str
    model_routing: dict[str, str]
    models_available: list[str]
    last_checked_at: datetime | None
    last_check_ok: bool | None
    last_check_message: str
    created_at: datetime


class ProviderPage(Schema):
    items: list[ProviderOut]
    next_cursor: str | None


class ProviderIn(Schema):
    kind: str = Field(description="openai, anthropic, ollama, demo, … (GET /providers/kinds)")
    name: str = Field(max_length=80)
    base_url: str = Field("", max_length=500)
    api_version: str = Field("", max_length=40)
    api_key: str | None = Field(
        None,
        max_length=4000,
        description="Write-only. Omit to keep the stored key; a new base URL needs it again.",
        json_schema_extra={"writeOnly": True},
    )
    remove_key: bool = False
    input_price_per_1k: Decimal | None = Field(None, ge=0, max_digits=14, decimal_places=8)
    output_price_per_1k: Decimal | None = Field(None, ge=0, max_digits=14, decimal_places=8)
    rpm_limit: int | None = Field(None, ge=1)
    tpm_limit: int | None = Field(None, ge=1)
    timeout_s: int = Field(60, ge=1, le=3600)
    first_byte_timeout_s: int = Field(30, ge=1, le=3600)
    chunk_timeout_s: int = Field(30, ge=1, le=3600)
    routing_strategy: str = "least_busy"
    model_routing: dict[str, str] | None = None


class CheckOut(Schema):
    ok: bool
    message: str
    latency_ms: int | None
    models: list[str]


def provider_out(provider: Provider) -> ProviderOut:
    return ProviderOut(
        id=provider.pk,
        workspace_id=provider.workspace_id,
        kind=provider.kind,
        name=provider.name,
        base_url=provider.base_url,
        api_version=provider.api_version,
        has_key=provider.has_credential,
        key_hint=provider.credential_masked,
        input_price_per_1k=provider.input_price_per_1k,
        output_price_per_1k=provider.output_price_per_1k,
        rpm_limit=provider.rpm_limit,
        tpm_limit=provider.tpm_limit,
        timeout_s=provider.timeout_s,
        first_byte_timeout_s=provider.first_byte_timeout_s,
        chunk_timeout_s=provider.chunk_timeout_s,
        routing_strategy=provider.routing_strategy,
        model_routing=provider.model_routing or {},
        models_available=[str(name) for name in provider.models_available or []],
        last_checked_at=provider.last_checked_at,
        last_check_ok=provider.last_check_ok,
        last_check_message=provider.last_check_message,
        created_at=provider.created_at,
    )


def _provider_input(payload: ProviderIn) -> provider_services.ProviderInput:
    if payload.kind not in KINDS:
        raise ApiError(
            "validation",
            f"Unknown provider kind “{payload.kind}”.",
            errors=[FieldError("kind", f"One of: {', '.join(sorted(KINDS))}.")],
        )
    return provider_services.ProviderInput(**payload.model_dump())


@providers_router.get("", response=ProviderPage, url_name="provider_list", summary="Providers")
def provider_list(request: HttpRequest, query: Query[ListQuery]) -> ProviderPage:
    caller_of(request).require(Scope.READ)
    membership = workspace_of_request(request, query.workspace)
    page, cursor = _page(Provider.objects.filter(workspace_id=membership.workspace_id), query)
    return ProviderPage(items=[provider_out(p) for p in page], next_cursor=cursor)


@providers_router.post(
    "",
    response={201: ProviderOut},
    url_name="provider_create",
    summary="Add a provider",
)
@idempotent
def provider_create(
    request: HttpRequest, payload: ProviderIn, workspace: UUID | None = None
) -> Any:
    caller, membership = workspace_to_change(request, workspace, Scope.ADMIN)
    try:
        provider = provider_services.provider_create(
            workspace=membership.workspace, user=caller.user, data=_provider_input(payload)
        )
    except ValidationError as error:
        raise _refused(error) from None
    return Status(201, provider_out(provider))


@providers_router.get(
    "/{uuid:provider_id}", response=ProviderOut, url_name="provider_detail", summary="A provider"
)
def provider_detail(request: HttpRequest, provider_id: UUID) -> ProviderOut:
    provider, _ = caller_of(request).lookup(get_provider_for_user, provider_id)
    return provider_out(provider)


@providers_router.put(
    "/{uuid:provider_id}",
    response=ProviderOut,
    url_name="provider_update",
    summary="Change a provider (its key is kept unless sent or removed)",
)
def provider_update(request: HttpRequest, provider_id: UUID, payload: ProviderIn) -> ProviderOut:
    provider, _ = caller_of(request).lookup(get_provider_for_user, provider_id, Scope.ADMIN)
    try:
        provider_services.provider_update(provider=provider, data=_provider_input(payload))
    except ValidationError as error:
        raise _refused(error) from None
    return provider_out(provider)


@providers_router.delete(
    "/{uuid:provider_id}", response={204: None}, url_name="provider_delete", summary="Delete"
)
def provider_delete(request: HttpRequest, provider_id: UUID) -> Any:
    provider, _ = caller_of(request).lookup(get_provider_for_user, provider_id, Scope.ADMIN)
    try:
        provider_services.provider_delete(provider=provider)
    except ValidationError as error:
        raise ApiError("conflict", " ".join(error.messages)) from None
    return Status(204, None)


@providers_router.post(
    "/{uuid:provider_id}/test",
    response=CheckOut,
    url_name="provider_test",
    summary="Test the connection (and list the models it offers)",
)
def provider_test(request: HttpRequest, provider_id: UUID) -> CheckOut:
    provider, _ = caller_of(request).lookup(get_provider_for_user, provider_id, Scope.ADMIN)
    result = provider_services.provider_check(provider=provider)
    return CheckOut(
        ok=result.ok,
        message=result.message,
        latency_ms=result.latency_ms,
        models=list(result.models or []),
    )


# --- Agents --------------------------------------------------------------------------------------


class AgentOut(Schema):
    id: UUID
    workspace_id: UUID
    name: str
    description: str
    latest_version: int
    config: dict[str, Any] = Field(description="The latest version's configuration")
    created_at: datetime
    updated_at: datetime


class AgentPage(Schema):
    items: list[AgentOut]
    next_cursor: str | None


class AgentIn(Schema):
    name: str = Field(max_length=80)
    description: str = Field("", max_length=300)
    config: dict[str, Any] = Field(
        description="Role, goal, model ({provider_id, model}), tools, limits… as the agent form"
    )
    note: str = Field("", max_length=200, description="Why this version")


class AgentVersionOut(Schema):
    number: int
    note: str
    created_at: datetime
    created_by: str | None
    config: dict[str, Any]


class AgentVersionList(Schema):
    items: list[AgentVersionOut]


def agent_out(agent: Agent, version: AgentVersion | None) -> AgentOut:
    return AgentOut(
        id=agent.pk,
        workspace_id=agent.workspace_id,
        name=agent.name,
        description=agent.description,
        latest_version=agent.latest_version,
        config=version.config if version else {},
        created_at=agent.created_at,
        updated_at=agent.updated_at,
    )


def _version_out(version: AgentVersion) -> AgentVersionOut:
    return AgentVersionOut(
        number=version.number,
        note=version.note,
        created_at=version.created_at,
        created_by=version.created_by.get_username() if version.created_by else None,
        config=version.config,
    )


def _known_tools() -> list[str]:
    return [name for name, _ in tool_choices()]


def _latest(agent: Agent) -> AgentVersion | None:
    return agent.versions.filter(number=agent.latest_version).first()


@agents_router.get("", response=AgentPage, url_name="agent_list", summary="Agents")
def agent_list(request: HttpRequest, query: Query[ListQuery]) -> AgentPage:
    caller_of(request).require(Scope.READ)
    membership = workspace_of_request(request, query.workspace)
    page, cursor = _page(Agent.objects.filter(workspace_id=membership.workspace_id), query)
    latest = {
        (version.agent_id, version.number): version
        for version in AgentVersion.objects.filter(agent__in=page)
    }
    return AgentPage(
        items=[agent_out(agent, latest.get((agent.pk, agent.latest_version))) for agent in page],
        next_cursor=cursor,
    )


@agents_router.post("", response={201: AgentOut}, url_name="agent_create", summary="Add an agent")
@idempotent
def agent_create(request: HttpRequest, payload: AgentIn, workspace: UUID | None = None) -> Any:
    caller, membership = workspace_to_change(request, workspace, Scope.WRITE)
    try:
        agent = agent_services.agent_create(
            workspace=membership.workspace,
            user=caller.user,
            name=payload.name,
            description=payload.description,
            config=payload.config,
            known_tools=_known_tools(),
            note=payload.note,
        )
    except ValidationError as error:
        raise _refused(error, config=True) from None
    return Status(201, agent_out(agent, _latest(agent)))


@agents_router.get(
    "/{uuid:agent_id}", response=AgentOut, url_name="agent_detail", summary="An agent"
)
def agent_detail(request: HttpRequest, agent_id: UUID) -> AgentOut:
    agent, _ = caller_of(request).lookup(get_agent_for_user, agent_id)
    return agent_out(agent, _latest(agent))


@agents_router.put(
    "/{uuid:agent_id}",
    response=AgentOut,
    url_name="agent_update",
    summary="Change an agent (a new version)",
)
def agent_update(request: HttpRequest, agent_id: UUID, payload: AgentIn) -> AgentOut:
    caller = caller_of(request)
    agent, _ = caller.lookup(get_agent_for_user, agent_id, Scope.WRITE)
    try:
        version = agent_services.agent_update(
            agent=agent,
            user=caller.user,
            name=payload.name,
            description=payload.description,
            config=payload.config,
            known_tools=_known_tools(),
            note=payload.note,
        )
    except ValidationError as error:
        raise _refused(error, config=True) from None
    agent.refresh_from_db()
    return agent_out(agent, version)


@agents_router.delete(
    "/{uuid:agent_id}", response={204: None}, url_name="agent_delete", summary="Delete an agent"
)
def agent_delete(request: HttpRequest, agent_id: UUID) -> Any:
    agent, _ = caller_of(request).lookup(get_agent_for_user, agent_id, Scope.WRITE)
    try:
        agent_services.agent_delete(agent=agent)
    except ValidationError as error:
        raise ApiError("conflict", " ".join(error.messages)) from None
    return Status(204, None)


@agents_router.get(
    "/{uuid:agent_id}/versions",
    response=AgentVersionList,
    url_name="agent_versions",
    summary="An agent's versions, newest first",
)
def agent_versions(request: HttpRequest, agent_id: UUID) -> AgentVersionList:
    agent, _ = caller_of(request).lookup(get_agent_for_user, agent_id)
    versions = agent.versions.select_related("created_by").order_by("-number")
    return AgentVersionList(items=[_version_out(version) for version in versions])
