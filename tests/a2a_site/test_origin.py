"""The WebSocket same-origin rule: scheme, host and port of the page must be the socket's own."""

from __future__ import annotations

import pytest

from a2a_site.origin import origin_allowed


@pytest.mark.parametrize(
    ("origin", "host", "secure", "allowed"),
    [
        ("http://127.0.0.1:8000", "127.0.0.1:8000", False, True),
        ("http://localhost", "localhost", False, True),
        ("https://localhost", "localhost", True, True),
        ("https://localhost:443", "localhost", True, True),
        ("http://[::1]:8000", "[::1]:8000", False, True),
        # The port is part of the origin: another program on the same machine is another site.
        ("http://127.0.0.1:9999", "127.0.0.1:8000", False, False),
        ("http://127.0.0.1:9999", "127.0.0.1", False, False),
        ("http://127.0.0.1", "127.0.0.1:8000", False, False),
        # So is the scheme.
        ("https://localhost", "localhost", False, False),
        ("http://localhost", "localhost", True, False),
        # A host the site is not served under, even when origin and Host agree.
        ("http://evil.example", "evil.example", False, False),
        # Nothing, or nothing an origin looks like.
        (None, "localhost", False, False),
        ("null", "localhost", False, False),
        ("http://localhost/path", "localhost", False, False),
        ("file://localhost", "localhost", False, False),
        ("http://localhost:99999", "localhost", False, False),
        ("http://localhost", None, False, False),
    ],
)
def test_origin_rule(
    settings, origin: str | None, host: str | None, secure: bool, allowed: bool
) -> None:
    settings.ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]
    settings.WEBSOCKET_ALLOWED_ORIGINS = []
    settings.CSRF_TRUSTED_ORIGINS = []
    assert origin_allowed(origin=origin, host=host, secure=secure) is allowed


def test_listed_origins_are_let_in_exactly(settings) -> None:
    settings.ALLOWED_HOSTS = ["studio.internal"]
    settings.WEBSOCKET_ALLOWED_ORIGINS = ["https://studio.example.com:8443"]
    settings.CSRF_TRUSTED_ORIGINS = ["https://proxy.example.com"]
    for origin in ("https://studio.example.com:8443", "https://PROXY.example.com:443"):
        assert origin_allowed(origin=origin, host="studio.internal:8000", secure=False)
    for origin in ("https://studio.example.com", "http://proxy.example.com"):
        assert not origin_allowed(origin=origin, host="studio.internal:8000", secure=False)
