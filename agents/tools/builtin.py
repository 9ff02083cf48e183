"""The tools every agent may be given without further setup."""

from __future__ import annotations

import ast
import asyncio
import json
import math
import operator
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import aiohttp

from agents.urlpolicy import (
    TOOL_ALLOW_LIST_HINT,
    OutboundURLRefused,
    PolicyResolver,
    ToolHosts,
    outbound_redirect_check,
    outbound_url_check,
)

from .base import Tool, ToolContext, ToolResult, ToolSpec

# --- current_time -------------------------------------------------------------------------------


class CurrentTimeTool:
    spec = ToolSpec(
        name="current_time",
        description="The current date, time and weekday, in ISO 8601, in a given time zone.",
        parameters={
            "type": "object",
            "properties": {
                "timezone": {
                    "type": "string",
                    "description": "An IANA time zone name such as Europe/Paris; default UTC.",
                    "maxLength": 64,
                }
            },
            "additionalProperties": False,
        },
        timeout_s=5.0,
    )

    def __init__(self, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._clock = clock

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        name = arguments.get("timezone") or "UTC"
        try:
            zone = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            # ValueError: names like "../etc/passwd" that are not zone keys at all.
            return ToolResult.error(
                f"Unknown time zone {name!r}; use an IANA name such as UTC or America/New_York."
            )
        now = self._clock().astimezone(zone)
        data = {
            "time": now.isoformat(timespec="seconds"),
            "weekday": now.strftime("%A"),
            "timezone": name,
        }
        return ToolResult(content=json.dumps(data), data=data)


# --- calculator ---------------------------------------------------------------------------------

MAX_EXPRESSION: Final = 200
# Results are capped so that no step of an expression can take long or eat memory: 4096 bits is
# about 1,200 decimal digits, far beyond any sensible arithmetic and instant to compute.
MAX_INT_BITS: Final = 4096

_BINARY: Final[dict[type[ast.operator], Callable[[Any, Any], Any]]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_UNARY: Final[dict[type[ast.unaryop], Callable[[Any], Any]]] = {
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}


def _round(value: int | float, digits: int = 0) -> int | float:
    # round(1, -10**100) would compute 10**10**100 first.
    if not isinstance(digits, int) or abs(digits) > 100:
        raise CalculationRefused("round() takes a whole number of digits between -100 and 100.")
    return round(value, digits) if digits else round(value)


_FUNCTIONS: Final[dict[str, Callable[..., Any]]] = {
    "sqrt": math.sqrt,
    "abs": abs,
    "round": _round,
    "min": min,
    "max": max,
    "log": math.log,
    "sin": math.sin,
    "cos": math.cos,
}
_CONSTANTS: Final[dict[str, float]] = {"pi": math.pi, "e": math.e}


class CalculationRefused(ValueError):
    pass


def _checked(value: Any) -> int | float:
    if isinstance(value, complex):
        raise CalculationRefused("The result is not a real number.")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CalculationRefused("Only numbers are allowed.")
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise CalculationRefused("The result is too large.")
    if isinstance(value, float) and not math.isfinite(value):
        raise CalculationRefused("The result is not a finite number.")
    return value


def _power(base: int | float, exponent: int | float) -> int | float:
    # Estimate the size before computing: 9**9**9 would otherwise run for minutes.
    if (
        isinstance(base, int)
        and isinstance(exponent, int)
        and abs(base) > 1
        and exponent * math.log2(abs(base)) > MAX_INT_BITS
    ):
        raise CalculationRefused("The result is too large.")
    return operator.pow(base, exponent)


def _evaluate(node: ast.AST) -> int | float:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant):
        return _checked(node.value)
    if isinstance(node, ast.BinOp):
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow):
            return _checked(_power(left, right))
        binary = _BINARY.get(type(node.op))
        if binary is None:
            raise CalculationRefused(f"The operator {type(node.op).__name__} is not allowed.")
        return _checked(binary(left, right))
    if isinstance(node, ast.UnaryOp):
        unary = _UNARY.get(type(node.op))
        if unary is None:
            raise CalculationRefused(f"The operator {type(node.op).__name__} is not allowed.")
        return _checked(unary(_evaluate(node.operand)))
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return _CONSTANTS[node.id]
    if isinstance(node, ast.Call):
        function = _FUNCTIONS.get(node.func.id) if isinstance(node.func, ast.Name) else None
        if function is None or node.keywords:
            raise CalculationRefused(f"Only these functions are allowed: {', '.join(_FUNCTIONS)}.")
        arguments = [_evaluate(argument) for argument in node.args]
        return _checked(function(*arguments))
    if isinstance(node, ast.Name):
        raise CalculationRefused(
            f"Unknown name {node.id!r}; only {', '.join(_CONSTANTS)} and numbers are allowed."
        )
    raise CalculationRefused(f"{type(node).__name__} is not allowed; use numbers and arithmetic.")


def calculate(expression: str) -> int | float:
    """Evaluate plain arithmetic without `eval`; raises CalculationRefused, ArithmeticError..."""
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except (SyntaxError, ValueError):
        raise CalculationRefused("This is not a valid arithmetic expression.") from None
    return _evaluate(tree)


class CalculatorTool:
    spec = ToolSpec(
        name="calculator",
        description=(
            "Evaluate an arithmetic expression exactly: numbers, + - * / // % **, parentheses, "
            f"the functions {', '.join(_FUNCTIONS)} and the constants pi and e."
        ),
        parameters={
            "type": "object",
            "properties": {
                "expression": {
                    "type": "string",
                    "description": "For example (2 + 3) * sqrt(16) / 7",
                    "maxLength": MAX_EXPRESSION,
                }
            },
            "required": ["expression"],
            "additionalProperties": False,
        },
        timeout_s=5.0,
    )

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        expression: str = arguments["expression"]
        try:
            value = calculate(expression)
        except CalculationRefused as error:
            return ToolResult.error(str(error))
        except ZeroDivisionError:
            return ToolResult.error("Division by zero.")
        except (ArithmeticError, ValueError, TypeError) as error:
            # Overflow, math domain errors, min() of nothing: the message is safe and useful.
            return ToolResult.error(f"The expression cannot be evaluated: {error}.")
        except RecursionError:
            return ToolResult.error("The expression is nested too deeply.")
        return ToolResult(content=repr(value), data=value)


# --- http_get -----------------------------------------------------------------------------------

HTTP_DEFAULT_BYTES: Final = 100_000
HTTP_MAX_BYTES: Final = 1_000_000
HTTP_MAX_REDIRECTS: Final = 3
HTTP_TIMEOUT_S: Final = 15.0
_REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})
_TEXT_TYPES: Final = frozenset(
    {
        "application/json",
        "application/xml",
        "application/javascript",
        "application/ecmascript",
        "application/x-www-form-urlencoded",
        "application/x-ndjson",
        "application/yaml",
        "application/x-yaml",
        "application/toml",
        "image/svg+xml",
    }
)


def _is_text(content_type: str, body: bytes) -> bool:
    if not content_type:
        return b"\x00" not in body
    return (
        content_type.startswith("text/")
        or content_type in _TEXT_TYPES
        or content_type.endswith(("+json", "+xml"))
    )


def _decode(body: bytes, charset: str | None) -> str:
    try:
        return body.decode(charset or "utf-8", errors="replace")
    except LookupError:
        return body.decode("utf-8", errors="replace")


class HttpGetTool:
    spec = ToolSpec(
        name="http_get",
        description=(
            "Fetch a public web page or API with HTTP GET and return the status, content type "
            "and the text of the body (binary bodies are described, not shown)."
        ),
        parameters={
            "type": "object",
            "properties": {
                "url": {
                    "type": "string",
                    "description": "An http or https URL.",
                    "maxLength": 2048,
                },
                "max_bytes": {
                    "type": "integer",
                    "description": f"Read at most this many bytes (default {HTTP_DEFAULT_BYTES}).",
                    "minimum": 1,
                    "maximum": HTTP_MAX_BYTES,
                },
            },
            "required": ["url"],
            "additionalProperties": False,
        },
        timeout_s=HTTP_TIMEOUT_S + 5,
    )

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        max_bytes = min(int(arguments.get("max_bytes", HTTP_DEFAULT_BYTES)), HTTP_MAX_BYTES)
        # Tools never use the providers' allow-list (settings.OUTBOUND_ALLOWED_HOSTS): only the
        # hosts the context names, which the workspace's policy already narrowed.
        hosts = ToolHosts(private=context.allowed_hosts, only=context.only_hosts)
        refusal = hosts.refusal(arguments["url"])
        if refusal is not None:
            return ToolResult.error(f"Refused: {refusal}")
        try:
            url = await asyncio.to_thread(
                outbound_url_check,
                arguments["url"],
                allowed_hosts=hosts.private,
                hint=TOOL_ALLOW_LIST_HINT,
            )
        except OutboundURLRefused as error:
            return ToolResult.error(f"Refused: {error}")
        timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S)
        resolver = PolicyResolver(hosts.private, hint=TOOL_ALLOW_LIST_HINT)
        try:
            async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(resolver=resolver),
                timeout=timeout,
                headers={"User-Agent": "A2A-Studio http_get"},
            ) as session:
                return await self._fetch(session, url, max_bytes, hosts)
        except OutboundURLRefused as error:
            return ToolResult.error(f"Refused: {error}")
        except TimeoutError:
            return ToolResult.error(f"The request timed out after {HTTP_TIMEOUT_S:g} s.")
        except aiohttp.ClientError as error:
            return ToolResult.error(f"The request failed: {type(error).__name__}: {error}")
        finally:
            await resolver.close()

    async def _fetch(
        self,
        session: aiohttp.ClientSession,
        url: str,
        max_bytes: int,
        hosts: ToolHosts,
    ) -> ToolResult:
        redirects = 0
        while True:
            # Redirects are followed by hand so that each hop passes the outbound URL policy.
            async with session.get(url, allow_redirects=False) as response:
                location = response.headers.get("Location")
                if response.status in _REDIRECT_STATUSES and location:
                    if redirects >= HTTP_MAX_REDIRECTS:
                        return ToolResult.error(
                            f"Too many redirects (more than {HTTP_MAX_REDIRECTS}); last one to "
                            f"{location}."
                        )
                    redirects += 1
                    try:
                        url = await asyncio.to_thread(
                            outbound_redirect_check,
                            location,
                            base_url=url,
                            allowed_hosts=hosts.private,
                            hint=TOOL_ALLOW_LIST_HINT,
                        )
                    except OutboundURLRefused as error:
                        return ToolResult.error(f"Refused redirect to {location}: {error}")
                    refusal = hosts.refusal(url)
                    if refusal is not None:
                        return ToolResult.error(f"Refused redirect to {location}: {refusal}")
                    continue
                body, truncated = await _read_bounded(response.content, max_bytes)
                return _describe(response, url, body, truncated, max_bytes)


async def _read_bounded(stream: aiohttp.StreamReader, max_bytes: int) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    # One byte beyond the limit tells a body of exactly max_bytes from a longer one.
    while size <= max_bytes:
        chunk = await stream.read(max_bytes + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    body = b"".join(chunks)
    return body[:max_bytes], size > max_bytes


def _describe(
    response: aiohttp.ClientResponse, url: str, body: bytes, truncated: bool, max_bytes: int
) -> ToolResult:
    content_type = response.content_type if "Content-Type" in response.headers else ""
    data: dict[str, Any] = {
        "url": url,
        "status": response.status,
        "content_type": content_type,
        "bytes": len(body),
        "truncated": truncated,
    }
    header = f"HTTP {response.status} {response.reason or ''}".rstrip()
    lines = [header, f"URL: {url}", f"Content-Type: {content_type or 'not given'}"]
    if not _is_text(content_type, body):
        size = f"more than {max_bytes}" if truncated else str(len(body))
        lines.append(
            f"\n[Binary content ({content_type or 'unknown type'}), {size} bytes; not shown.]"
        )
        return ToolResult(content="\n".join(lines), data=data)
    if truncated:
        lines.append(f"[Truncated: only the first {max_bytes} bytes are shown.]")
    text = _decode(body, response.charset)
    return ToolResult(content="\n".join(lines) + "\n\n" + text, data=data)


# --- get_variable -------------------------------------------------------------------------------


class GetVariableTool:
    spec = ToolSpec(
        name="get_variable",
        description="Read a variable of the running workflow; the value comes back as JSON.",
        parameters={
            "type": "object",
            "properties": {"name": {"type": "string", "maxLength": 200}},
            "required": ["name"],
            "additionalProperties": False,
        },
        timeout_s=5.0,
    )

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        name: str = arguments["name"]
        if name not in context.variables:
            available = ", ".join(sorted(context.variables)) or "none"
            return ToolResult.error(f"There is no variable named {name!r}. Available: {available}.")
        value = context.variables[name]
        return ToolResult(content=json.dumps(value, ensure_ascii=False, default=str), data=value)


BUILTIN_TOOLS: Final[tuple[Callable[[], Tool], ...]] = (
    CurrentTimeTool,
    CalculatorTool,
    HttpGetTool,
    GetVariableTool,
)
