"""The built-in tools: happy paths and the refusals that keep them safe."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from agents.tools import ToolContext, ToolResult, builtin, builtin_registry
from agents.tools.builtin import HTTP_DEFAULT_BYTES, CurrentTimeTool, PolicyResolver
from agents.urlpolicy import OutboundURLRefused

LOCAL = ToolContext(allowed_hosts=("127.0.0.1",))


async def call(name: str, arguments: dict[str, object], context: ToolContext = LOCAL) -> ToolResult:
    return await builtin_registry().call(name, json.dumps(arguments), context)


# --- current_time -------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_current_time_in_a_zone() -> None:
    tool = CurrentTimeTool(clock=lambda: datetime(2025, 1, 1, 23, 30, tzinfo=UTC))

    result = await tool.run({"timezone": "Asia/Tokyo"}, LOCAL)

    assert not result.is_error
    assert result.data == {
        "time": "2025-01-02T08:30:00+09:00",
        "weekday": "Thursday",
        "timezone": "Asia/Tokyo",
    }


@pytest.mark.asyncio
async def test_current_time_defaults_to_utc() -> None:
    result = await call("current_time", {})

    assert not result.is_error
    assert result.data["time"].endswith("+00:00")
    assert datetime.fromisoformat(result.data["time"]).year >= 2025


@pytest.mark.asyncio
@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "../../etc/passwd", ""])
async def test_current_time_refuses_unknown_zones(zone: str) -> None:
    result = await call("current_time", {"timezone": zone})

    if zone:
        assert result.is_error
        assert "Unknown time zone" in result.content
    else:
        assert not result.is_error


# --- calculator ---------------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("(2 + 3) * 4", 20),
        ("-7 // 2", -4),
        ("7 % 3", 1),
        ("2 ** 10", 1024),
        ("1 / 4", 0.25),
        ("sqrt(16) + abs(-2)", 6.0),
        ("round(pi, 2)", 3.14),
        ("max(1, 5, 3) - min(4, 2)", 3),
        ("log(e)", 1.0),
        ("cos(0) + sin(0)", 1.0),
        ("2 ** -1", 0.5),
    ],
)
async def test_calculator_does_arithmetic(expression: str, value: float) -> None:
    result = await call("calculator", {"expression": expression})

    assert not result.is_error, result.content
    assert result.data == pytest.approx(value)
    assert result.content == repr(result.data)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("__import__('os')", "Only these functions"),
        ("().__class__", "Attribute is not allowed"),
        ("open('/etc/passwd')", "Only these functions"),
        ("x + 1", "Unknown name 'x'"),
        ("'a' * 3", "Only numbers"),
        ("[1, 2]", "List is not allowed"),
        ("lambda: 1", "Lambda is not allowed"),
        ("1 << 1000", "LShift is not allowed"),
        ("round(1, ndigits=2)", "Only these functions"),
        ("9**9**9", "too large"),
        ("10**10**10", "too large"),
        ("2**5000", "too large"),
        ("1e308 * 10", "not a finite number"),
        ("(-8) ** 0.5", "not a real number"),
        ("1 / 0", "Division by zero"),
        ("5 % 0", "Division by zero"),
        ("sqrt(-1)", "cannot be evaluated"),
        ("1 +", "not a valid arithmetic expression"),
        ("1; import os", "not a valid arithmetic expression"),
    ],
)
async def test_calculator_refuses_everything_else(expression: str, words: str) -> None:
    started = time.monotonic()

    result = await call("calculator", {"expression": expression})

    assert result.is_error
    assert words in result.content
    assert time.monotonic() - started < 1


@pytest.mark.asyncio
async def test_calculator_limits_the_expression_length() -> None:
    result = await call("calculator", {"expression": "1+" * 100 + "1"})

    assert result.is_error
    assert "expression must be at most 200 characters" in result.content


# --- get_variable -------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_get_variable_returns_json() -> None:
    context = ToolContext(variables={"order": {"id": 7, "items": ["tea"]}, "city": "Zürich"})

    order = await call("get_variable", {"name": "order"}, context)
    city = await call("get_variable", {"name": "city"}, context)

    assert json.loads(order.content) == {"id": 7, "items": ["tea"]}
    assert city.content == '"Zürich"'


@pytest.mark.asyncio
async def test_get_variable_lists_the_names_it_has() -> None:
    context = ToolContext(variables={"b": 1, "a": 2})

    missing = await call("get_variable", {"name": "c"}, context)
    nothing = await call("get_variable", {"name": "c"})

    assert missing.is_error
    assert "Available: a, b." in missing.content
    assert "Available: none." in nothing.content


# --- http_get -----------------------------------------------------------------------------------


@pytest_asyncio.fixture
async def site() -> AsyncIterator[str]:
    async def text(request: web.Request) -> web.Response:
        return web.Response(text="Grüße aus dem Test", content_type="text/plain", charset="latin-1")

    async def big(request: web.Request) -> web.Response:
        return web.Response(text="x" * (HTTP_DEFAULT_BYTES * 2), content_type="text/plain")

    async def binary(request: web.Request) -> web.Response:
        return web.Response(body=b"\x89PNG\r\n\x1a\n" + bytes(100), content_type="image/png")

    async def missing(request: web.Request) -> web.Response:
        return web.json_response({"error": "not here"}, status=404)

    def redirect(location: str) -> web.Response:
        return web.Response(status=302, headers={"Location": location})

    async def to_text(request: web.Request) -> web.Response:
        return redirect("/text")

    async def to_metadata(request: web.Request) -> web.Response:
        return redirect("http://169.254.169.254/latest/meta-data/")

    async def to_localhost(request: web.Request) -> web.Response:
        return redirect(f"http://localhost:{request.url.port}/text")

    async def loop(request: web.Request) -> web.Response:
        return redirect("/loop")

    app = web.Application()
    app.router.add_get("/text", text)
    app.router.add_get("/big", big)
    app.router.add_get("/binary", binary)
    app.router.add_get("/missing", missing)
    app.router.add_get("/to-text", to_text)
    app.router.add_get("/to-metadata", to_metadata)
    app.router.add_get("/to-localhost", to_localhost)
    app.router.add_get("/loop", loop)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.mark.asyncio
async def test_http_get_returns_status_type_and_decoded_text(site: str) -> None:
    result = await call("http_get", {"url": site + "/text"})

    assert not result.is_error, result.content
    assert result.content.startswith("HTTP 200 OK\n")
    assert "Content-Type: text/plain" in result.content
    assert result.content.endswith("\n\nGrüße aus dem Test")
    assert result.data["truncated"] is False


@pytest.mark.asyncio
async def test_http_get_shows_error_statuses(site: str) -> None:
    result = await call("http_get", {"url": site + "/missing"})

    assert result.content.startswith("HTTP 404 Not Found\n")
    assert '{"error": "not here"}' in result.content


@pytest.mark.asyncio
async def test_http_get_truncates_and_says_so(site: str) -> None:
    default = await call("http_get", {"url": site + "/big"})
    small = await call("http_get", {"url": site + "/big", "max_bytes": 10})

    assert default.data == {
        "url": site + "/big",
        "status": 200,
        "content_type": "text/plain",
        "bytes": HTTP_DEFAULT_BYTES,
        "truncated": True,
    }
    assert "[Truncated: only the first 10 bytes are shown.]" in small.content
    assert small.content.endswith("\n\n" + "x" * 10)


@pytest.mark.asyncio
async def test_http_get_describes_binary_content(site: str) -> None:
    result = await call("http_get", {"url": site + "/binary"})

    assert "[Binary content (image/png), 108 bytes; not shown.]" in result.content
    assert "PNG" not in result.content


@pytest.mark.asyncio
async def test_http_get_follows_allowed_redirects(site: str) -> None:
    result = await call("http_get", {"url": site + "/to-text"})

    assert result.data["url"] == site + "/text"
    assert result.content.endswith("Grüße aus dem Test")


@pytest.mark.asyncio
async def test_http_get_refuses_a_redirect_to_the_metadata_address(site: str) -> None:
    result = await call("http_get", {"url": site + "/to-metadata"})

    assert result.is_error
    assert "Refused redirect to http://169.254.169.254/latest/meta-data/: " in result.content
    assert "metadata" in result.content


@pytest.mark.asyncio
async def test_http_get_refuses_a_redirect_to_a_loopback_host_not_allow_listed(site: str) -> None:
    result = await call("http_get", {"url": site + "/to-localhost"})

    assert result.is_error
    assert "Refused redirect to http://localhost:" in result.content
    assert "localhost resolves to" in result.content
    assert "A2A_TOOL_ALLOWED_HOSTS" in result.content
    assert "A2A_OUTBOUND_ALLOWED_HOSTS" not in result.content


@pytest.mark.asyncio
async def test_http_get_stops_after_three_redirects(site: str) -> None:
    result = await call("http_get", {"url": site + "/loop"})

    assert result.is_error
    assert "Too many redirects" in result.content


@pytest.mark.asyncio
async def test_http_get_refuses_loopback_without_an_allow_list(site: str) -> None:
    result = await call("http_get", {"url": site + "/text"}, ToolContext())

    assert result.is_error
    assert result.content.startswith("Refused: 127.0.0.1 is a loopback address.")


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("file:///etc/passwd", "Only http and https"),
        ("http://169.254.169.254/latest/meta-data/", "never calls"),
        ("http://user:pw@127.0.0.1/", "user name or password"),
        ("http://10.0.0.1/", "private address"),
    ],
)
async def test_http_get_refuses_urls_outright(url: str, words: str) -> None:
    result = await call("http_get", {"url": url})

    assert result.is_error
    assert result.content.startswith("Refused: ")
    assert words in result.content


@pytest.mark.asyncio
async def test_http_get_reports_connection_failures() -> None:
    # Port 1 (tcpmux) is privileged and unused on any machine that runs the suite.
    result = await call("http_get", {"url": "http://127.0.0.1:1/"})

    assert result.is_error
    assert "The request failed: ClientConnectorError" in result.content


@pytest.mark.asyncio
async def test_http_get_validates_max_bytes() -> None:
    result = await call("http_get", {"url": "http://example.com", "max_bytes": 2_000_000})

    assert result.is_error
    assert "max_bytes must be at most 1000000" in result.content


class RebindingResolver(AbstractResolver):
    """Answers with a loopback address, as a DNS rebinding attacker's server would on reuse."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            {
                "hostname": host,
                "host": "127.0.0.1",
                "port": port,
                "family": socket.AF_INET,
                "proto": 0,
                "flags": 0,
            }
        ]

    async def close(self) -> None:
        pass


@pytest.mark.asyncio
async def test_the_connection_addresses_are_checked_again() -> None:
    refusing = PolicyResolver(None, inner=RebindingResolver())
    allowing = PolicyResolver(("rebind.example",), inner=RebindingResolver())

    with pytest.raises(OutboundURLRefused, match="rebind.example resolves to 127.0.0.1"):
        await refusing.resolve("rebind.example", 80)
    assert (await allowing.resolve("rebind.example", 80))[0]["host"] == "127.0.0.1"


@pytest.mark.asyncio
async def test_http_get_connects_to_allow_listed_names(site: str) -> None:
    url = site.replace("127.0.0.1", "localhost") + "/text"

    result = await call("http_get", {"url": url}, ToolContext(allowed_hosts=("localhost",)))

    assert not result.is_error, result.content
    assert result.content.endswith("Grüße aus dem Test")


@pytest.mark.asyncio
async def test_http_get_refuses_a_host_that_rebinds_to_loopback(
    site: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_check = builtin.outbound_url_check

    def first_answer_public(url: str, **options: Any) -> str:
        # The first lookup (the URL check) sees a public address, the connection a loopback one.
        options.setdefault("resolve", lambda host: ["93.184.216.34"])
        return real_check(url, **options)

    monkeypatch.setattr(builtin, "outbound_url_check", first_answer_public)
    monkeypatch.setattr(builtin.aiohttp, "ThreadedResolver", RebindingResolver)
    port = site.rsplit(":", 1)[1]

    result = await call("http_get", {"url": f"http://rebind.example:{port}/text"}, ToolContext())

    assert result.is_error
    assert "rebind.example resolves to 127.0.0.1, which is a loopback address" in result.content
