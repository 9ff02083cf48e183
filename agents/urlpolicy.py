"""The outbound URL policy: which URLs the studio may call (provider base URLs, tools, A2A peers).

Two allow-lists name the hosts that may be at private addresses: A2A_OUTBOUND_ALLOWED_HOSTS for
providers and Ollama nodes, A2A_TOOL_ALLOWED_HOSTS for agents' tools, which each workspace can
narrow further (`ToolHosts`). Without the policy, anyone who can save a provider could make the
server call its own loopback services, the private network or the cloud metadata endpoint
(server-side request forgery). Every resolved
address is checked, since one hostile DNS record among public ones is enough.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit, urlunsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from django.conf import settings

from agents.llm.errors import RefusedByPolicy

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ALLOWED_SCHEMES = ("http", "https")
METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)
METADATA_KIND = "the cloud metadata address"
ALLOW_LIST_HINT = "An administrator can allow-list the host with A2A_OUTBOUND_ALLOWED_HOSTS."
LOOPBACK_KIND = "a loopback address"
TOOL_ALLOW_LIST_HINT = (
    "Tools reach such a host only if an administrator allow-lists it for tools "
    "(A2A_TOOL_ALLOWED_HOSTS) and the workspace lists it on its tool hosts page."
)


class OutboundURLRefused(ValueError):
    """The studio will not call this URL; the message says why and what to do."""


class OutboundConnectionRefused(OutboundURLRefused, RefusedByPolicy):
    """Refused while connecting (see `PolicyResolver`); the gateway reports it as `refused`."""


class OutboundHostUnresolved(OutboundURLRefused):
    """The host does not resolve now. Saving such a URL may be fine (DNS can be down or not yet
    set up); calling it is not, and every call checks again."""


def outbound_resolve(host: str) -> list[str]:
    addresses: list[str] = []
    for *_, sockaddr in socket.getaddrinfo(host, None):
        address = str(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def outbound_address_kind(address: IPAddress) -> str | None:
    """Why the address is off limits, or None for a public address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return outbound_address_kind(address.ipv4_mapped)
    # Order matters: loopback and link-local addresses also count as private.
    if address in METADATA_ADDRESSES:
        return METADATA_KIND
    if address.is_loopback:
        return LOOPBACK_KIND
    if address.is_link_local:
        return "a link-local address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_reserved:
        return "a reserved address"
    if address.is_private:
        return "a private address"
    if not address.is_global:
        return "a non-public address"
    return None


def outbound_host_allowed(*, host: str, allowed_hosts: Iterable[str]) -> bool:
    host = host.lower().rstrip(".")
    for entry in allowed_hosts:
        entry = entry.strip().lower().rstrip(".")
        if entry.startswith("*."):
            if host.endswith(entry[1:]):
                return True
        elif entry and host == entry:
            return True
    return False


def outbound_parse_address(address: str) -> IPAddress:
    # getaddrinfo reports IPv6 link-local addresses with a zone, e.g. fe80::1%eth0.
    return ipaddress.ip_address(address.split("%", 1)[0])


def outbound_is_literal(host: str) -> bool:
    try:
        outbound_parse_address(host)
    except ValueError:
        return False
    return True


def outbound_url_check(
    url: str,
    *,
    allowed_hosts: Iterable[str] | None = None,
    resolve: Callable[[str], list[str]] | None = None,
    allow_loopback: bool = False,
    hint: str = ALLOW_LIST_HINT,
) -> str:
    """Return `url` normalized, or raise OutboundURLRefused explaining why it may not be called.

    `allow_loopback` is for model endpoints only (see `model_url_check`), never for tools.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise OutboundURLRefused(f"{url!r} is not a valid URL.") from None
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise OutboundURLRefused(
            f"Only http and https URLs are allowed, not {scheme or 'a URL without a scheme'}."
        )
    if parts.username is not None or parts.password is not None:
        raise OutboundURLRefused(
            "The URL must not contain a user name or password (user:pass@host); "
            "put API keys in the credential field, where they are stored encrypted."
        )
    host = parts.hostname
    if not host:
        raise OutboundURLRefused("The URL has no host.")
    allowed = settings.OUTBOUND_ALLOWED_HOSTS if allowed_hosts is None else allowed_hosts
    literal = outbound_is_literal(host)
    for address, kind in outbound_host_addresses(host=host, resolve=resolve or outbound_resolve):
        if kind is None or (kind == LOOPBACK_KIND and allow_loopback):
            continue
        subject = host if literal else f"{host} resolves to {address}, which"
        if kind == METADATA_KIND:
            raise OutboundURLRefused(
                f"{subject} is {kind}, which the studio never calls, even for allow-listed hosts."
            )
        if not outbound_host_allowed(host=host, allowed_hosts=allowed):
            raise OutboundURLRefused(f"{subject} is {kind}. {hint}")
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc = f"{netloc}:{port}"
    return urlunsplit((scheme, netloc, parts.path, parts.query, parts.fragment))


def outbound_host_addresses(
    *, host: str, resolve: Callable[[str], list[str]]
) -> list[tuple[IPAddress, str | None]]:
    try:
        addresses = [outbound_parse_address(host)]
    except ValueError:
        try:
            addresses = [outbound_parse_address(address) for address in resolve(host)]
        except (OSError, UnicodeError, ValueError):
            addresses = []
        if not addresses:
            raise OutboundHostUnresolved(
                f"The studio cannot resolve the host {host}; check the spelling."
            ) from None
    return [(address, outbound_address_kind(address)) for address in addresses]


def outbound_redirect_check(
    location: str,
    *,
    base_url: str,
    allowed_hosts: Iterable[str] | None = None,
    resolve: Callable[[str], list[str]] | None = None,
    allow_loopback: bool = False,
    hint: str = ALLOW_LIST_HINT,
) -> str:
    """Check a redirect's Location (relative ones resolved against `base_url`) like any URL."""
    return outbound_url_check(
        urljoin(base_url, location),
        allowed_hosts=allowed_hosts,
        resolve=resolve,
        allow_loopback=allow_loopback,
        hint=hint,
    )


def model_url_check(url: str) -> str:
    """`outbound_url_check` for provider base URLs and Ollama nodes, which may be on this machine
    in the embedded mode (`OUTBOUND_ALLOW_LOOPBACK`)."""
    return outbound_url_check(url, allow_loopback=settings.OUTBOUND_ALLOW_LOOPBACK)


class PolicyResolver(AbstractResolver):
    """Applies the outbound URL policy to the addresses aiohttp actually connects to.

    The URL check resolves the host once and aiohttp resolves it again: a hostile DNS server can
    answer with a public address the first time and a loopback one the second (DNS rebinding).
    """

    def __init__(
        self,
        allowed_hosts: tuple[str, ...] | None,
        inner: AbstractResolver | None = None,
        *,
        allow_loopback: bool = False,
        hint: str = ALLOW_LIST_HINT,
    ) -> None:
        self._allowed_hosts = allowed_hosts
        self._allow_loopback = allow_loopback
        self._inner = inner or aiohttp.ThreadedResolver()
        self._hint = hint

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        addresses = [result["host"] for result in results]
        try:
            outbound_url_check(
                f"http://{host}/",
                allowed_hosts=self._allowed_hosts,
                resolve=lambda _: addresses,
                allow_loopback=self._allow_loopback,
                hint=self._hint,
            )
        except OutboundURLRefused as refused:
            raise OutboundConnectionRefused(str(refused)) from None
        return results

    async def close(self) -> None:
        await self._inner.close()


def policy_resolver() -> AbstractResolver:
    """An aiohttp resolver that refuses addresses the policy refuses, checked at connect time.

    The demo model's host is the administrator's own setting, so it counts as allow-listed.
    """
    allowed = list(settings.OUTBOUND_ALLOWED_HOSTS)
    demo_host = urlsplit(str(settings.DEMO_MODEL_URL)).hostname
    if demo_host:
        allowed.append(demo_host)
    return PolicyResolver(tuple(allowed), allow_loopback=settings.OUTBOUND_ALLOW_LOOPBACK)


def host_patterns_intersect(first: Iterable[str], second: Iterable[str]) -> tuple[str, ...]:
    """The host patterns that match exactly the hosts both lists match.

    `gpu1.lab` and `*.lab` give `gpu1.lab`; `*.a.lab` and `*.lab` give `*.a.lab`.
    """
    found: list[str] = []
    for a in (entry.strip().lower().rstrip(".") for entry in first):
        for b in (entry.strip().lower().rstrip(".") for entry in second):
            kept = _narrower(a, b) if a and b else None
            if kept is not None and kept not in found:
                found.append(kept)
    return tuple(found)


def _narrower(a: str, b: str) -> str | None:
    """Of two patterns, the one whose hosts all match the other; None if neither is."""
    for narrow, wide in ((a, b), (b, a)):
        if narrow == wide:
            return narrow
        if narrow.startswith("*."):
            if wide.startswith("*.") and narrow.endswith(wide[1:]):
                return narrow
        elif outbound_host_allowed(host=narrow, allowed_hosts=[wide]):
            return narrow
    return None


@dataclass(frozen=True)
class ToolHosts:
    """Where one workspace's tools may connect.

    `private`: the hosts they may reach at private or loopback addresses (the administrator's
    tool allow-list narrowed by the workspace's own list). `only`: when not None, the only hosts
    they may reach at all, public ones included.
    """

    private: tuple[str, ...] = ()
    only: tuple[str, ...] | None = None

    def refusal(self, url: str) -> str | None:
        """Why the workspace's own list refuses `url`, or None when it does not."""
        if self.only is None:
            return None
        host = urlsplit(url).hostname or ""
        if outbound_host_allowed(host=host, allowed_hosts=self.only):
            return None
        listed = ", ".join(self.only) if self.only else "no host at all"
        return (
            f"This workspace lets its tools reach only {listed}; {host or 'this URL'} is not "
            "listed (an owner or editor can change that on the tool hosts page)."
        )


def tool_hosts(*, workspace_hosts: Iterable[str], public_hosts: bool) -> ToolHosts:
    """A workspace's tool hosts under the administrator's A2A_TOOL_ALLOWED_HOSTS."""
    listed = tuple(workspace_hosts)
    return ToolHosts(
        private=host_patterns_intersect(settings.TOOL_ALLOWED_HOSTS, listed),
        only=None if public_hosts else listed,
    )
