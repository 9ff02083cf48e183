"""Agent cards of remote A2A agents, fetched under the outbound URL policy.

The card lives at `<agent URL>/.well-known/agent-card.json`. Redirects are not followed (a
redirect could lead past the policy), the body is capped, and what a person needs to choose
a skill is kept: name, description, version, skills, input and output modes, streaming, and
whether the agent asks for credentials.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from a2a.client.card_resolver import parse_agent_card
from a2a.types.a2a_pb2 import AgentCard
from django.conf import settings
from google.protobuf.json_format import ParseError

from agents.urlpolicy import OutboundURLRefused, outbound_url_check

CARD_PATH = "/.well-known/agent-card.json"
CARD_MAX_BYTES = 512 * 1024
CARD_TIMEOUT_S = 10.0


class RemoteCardError(Exception):
    """The card could not be fetched or read; the message says why, for a person."""


def remote_host(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or url
    return f"{host}:{parts.port}" if parts.port else host


def remote_origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{(parts.netloc or '').lower()}"


def remote_url_check(url: str) -> str:
    """The URL as the policy normalizes it, or RemoteCardError saying why it is refused."""
    try:
        return outbound_url_check(url, allowed_hosts=settings.OUTBOUND_ALLOWED_HOSTS)
    except OutboundURLRefused as refused:
        raise RemoteCardError(f"Refused by the outbound URL policy: {refused}") from None


def remote_base_url(url: str) -> str:
    """The agent's base URL: a pasted card URL or a trailing slash is taken off (as the node's
    config does, `workflows.graph.remote_agent`)."""
    url = url.strip()
    if url.endswith(CARD_PATH):
        url = url[: -len(CARD_PATH)]
    return url.rstrip("/")


def card_url(base_url: str) -> str:
    base = base_url.strip()
    if base.endswith(CARD_PATH):
        return base
    return base.rstrip("/") + CARD_PATH


@dataclass(frozen=True)
class RemoteCard:
    url: str  # the agent's base URL, as entered
    name: str
    description: str
    version: str
    skills: list[dict[str, Any]] = field(default_factory=list)
    input_modes: list[str] = field(default_factory=list)
    output_modes: list[str] = field(default_factory=list)
    streaming: bool = False
    auth_schemes: list[str] = field(default_factory=list)
    endpoint: str = ""  # where JSON-RPC calls go ("" when the card offers no JSON-RPC binding)
    protocol_version: str = ""

    @property
    def host(self) -> str:
        return remote_host(self.url)

    @property
    def needs_auth(self) -> bool:
        return bool(self.auth_schemes)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "host": self.host, "needs_auth": self.needs_auth}

    def skill(self, skill_id: str | None) -> dict[str, Any] | None:
        return next((skill for skill in self.skills if skill["id"] == skill_id), None)


def jsonrpc_interface(card: AgentCard) -> tuple[str, str]:
    """(url, protocol version) of the card's JSON-RPC binding, 1.0 preferred."""
    found = [i for i in card.supported_interfaces if i.protocol_binding.upper() == "JSONRPC"]
    found.sort(key=lambda i: 0 if i.protocol_version.startswith("1.") else 1)
    return (found[0].url, found[0].protocol_version) if found else ("", "")


def card_summary(base_url: str, card: AgentCard) -> RemoteCard:
    endpoint, version = jsonrpc_interface(card)
    skills = [
        {
            "id": skill.id,
            "name": skill.name or skill.id,
            "description": skill.description,
            "tags": list(skill.tags),
        }
        for skill in card.skills
    ]
    return RemoteCard(
        url=base_url,
        name=card.name or remote_host(base_url),
        description=card.description,
        version=card.version,
        skills=skills,
        input_modes=list(card.default_input_modes),
        output_modes=list(card.default_output_modes),
        streaming=bool(card.capabilities.streaming),
        auth_schemes=sorted(card.security_schemes.keys()),
        endpoint=endpoint,
        protocol_version=version,
    )


def card_parse(base_url: str, response: httpx.Response, body: bytes) -> AgentCard:
    where = remote_host(base_url)
    if response.is_redirect:
        raise RemoteCardError(
            f"{where} answered the card request with a redirect (HTTP {response.status_code}); "
            "redirects are not followed. Enter the URL it points to."
        )
    if response.status_code in (401, 403):
        raise RemoteCardError(
            f"{where} refused to show its agent card (HTTP {response.status_code})."
        )
    if response.status_code != 200:
        raise RemoteCardError(
            f"No agent card at {card_url(base_url)} (HTTP {response.status_code})."
        )
    if len(body) > CARD_MAX_BYTES:
        raise RemoteCardError(f"The agent card of {where} is larger than {CARD_MAX_BYTES} bytes.")
    try:
        return parse_agent_card(json.loads(body))
    except (ValueError, ParseError, TypeError) as error:
        raise RemoteCardError(
            f"The agent card of {where} is not a valid A2A card: {error}"
        ) from None


def _read_error(base_url: str, error: httpx.HTTPError) -> RemoteCardError:
    where = remote_host(base_url)
    if isinstance(error, httpx.TimeoutException):
        return RemoteCardError(f"The remote agent at {where} did not answer in time.")
    return RemoteCardError(f"The remote agent at {where} is unreachable ({type(error).__name__}).")


def remote_card_fetch(base_url: str) -> RemoteCard:
    """The card of the agent at `base_url` (blocking; for views). Raises RemoteCardError."""
    url = remote_url_check(card_url(base_url))
    try:
        with (
            httpx.Client(follow_redirects=False, timeout=CARD_TIMEOUT_S) as client,
            client.stream("GET", url, headers={"Accept": "application/json"}) as response,
        ):
            body = b""
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > CARD_MAX_BYTES:
                    break
    except httpx.HTTPError as error:
        raise _read_error(base_url, error) from None
    return card_summary(base_url, card_parse(base_url, response, body))


async def remote_card_fetch_async(
    base_url: str, client: httpx.AsyncClient
) -> tuple[RemoteCard, AgentCard]:
    """The card's summary and the card itself, for a call. Raises RemoteCardError."""
    url = await asyncio.to_thread(remote_url_check, card_url(base_url))
    try:
        async with client.stream("GET", url, headers={"Accept": "application/json"}) as response:
            body = b""
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > CARD_MAX_BYTES:
                    break
    except httpx.HTTPError as error:
        raise _read_error(base_url, error) from None
    card = card_parse(base_url, response, body)
    return card_summary(base_url, card), card
