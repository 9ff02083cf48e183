"""The WebSocket same-origin check.

Browsers send cookies with a WebSocket handshake whatever page opened it, and CSRF protection does
not apply to it, so the `Origin` header is what tells our pages from another site's. Channels'
`AllowedHostsOriginValidator` compares only the host name: a page served by any other program on
the same machine (`http://127.0.0.1:9999`) could open a socket with the user's session. Here the
origin must equal the socket's own origin — scheme, host and port, as the `Host` header and the
connection's scheme give them, the host being one of ALLOWED_HOSTS — or be listed exactly in
A2A_WEBSOCKET_ALLOWED_ORIGINS or CSRF_TRUSTED_ORIGINS (a site served through a proxy on another
origin).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

DEFAULT_PORTS = {"http": 80, "https": 443}
Origin = tuple[str, str, int]


def origin_parse(value: str) -> Origin | None:
    """(scheme, host, port) of an origin such as `https://studio.example.com`, or None."""
    try:
        parts = urlsplit(value.strip().lower())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        return None
    return parts.scheme, parts.hostname, port or DEFAULT_PORTS[parts.scheme]


def _allowed_hosts() -> list[str]:
    hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not hosts:
        hosts = [".localhost", "127.0.0.1", "[::1]"]  # what Django itself allows then
    return hosts


def _extra_origins() -> set[Origin]:
    configured = [*settings.WEBSOCKET_ALLOWED_ORIGINS, *settings.CSRF_TRUSTED_ORIGINS]
    return {origin for value in configured if (origin := origin_parse(value)) is not None}


def origin_allowed(*, origin: str | None, host: str | None, secure: bool) -> bool:
    """Whether a handshake with this `Origin` may reach a socket served at `Host`."""
    if not origin:
        return False
    parsed = origin_parse(origin)
    if parsed is None:
        return False
    if parsed in _extra_origins():
        return True
    if not host:
        return False
    domain, port = split_domain_port(host.lower())
    if not domain or not validate_host(domain, _allowed_hosts()):
        return False
    scheme = "https" if secure else "http"
    try:
        own = (scheme, domain.strip("[]"), int(port) if port else DEFAULT_PORTS[scheme])
    except ValueError:
        return False
    return parsed == own


def _secure(scope: dict[str, Any], headers: dict[bytes, bytes]) -> bool:
    if scope.get("scheme") == "wss":
        return True
    proxy_header = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy_header:
        name, value = proxy_header
        header = name.removeprefix("HTTP_").replace("_", "-").lower().encode("latin1")
        forwarded = headers.get(header, b"").decode("latin1").split(",")[0].strip()
        return forwarded == value
    return False


class SameOriginValidator:
    """ASGI middleware refusing WebSocket handshakes from any other origin (see the module)."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        headers = dict(scope.get("headers", []))
        origin = headers.get(b"origin", b"").decode("latin1")
        host = headers.get(b"host", b"").decode("latin1")
        if origin_allowed(origin=origin, host=host, secure=_secure(scope, headers)):
            return await self.application(scope, receive, send)
        return await WebsocketDenier()(scope, receive, send)
