"""One error type for every provider failure, classified so the gateway knows what to do next.

Messages are meant for users: they name the deployment, the HTTP status and the provider's own
explanation, never the API key nor anything shaped like one (see `redaction`), nor the request
body.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from .redaction import redact_secrets

if TYPE_CHECKING:
    from .types import Attempt

KINDS: Final = (
    "auth",
    "rate_limit",
    "timeout",
    "context_length",
    "content_filter",
    "provider_error",
    "malformed_response",
    "unreachable",
    "bad_request",
    "cancelled",
    "no_deployment",
    "refused",
    "budget",
    "blocked",
)
TRANSIENT_KINDS: Final = frozenset(
    {"rate_limit", "timeout", "provider_error", "unreachable", "malformed_response"}
)
# Upstream explanations are cut to this length: enough to act on, too short to echo a prompt.
MAX_DETAIL: Final = 300

_CONTEXT_RE = re.compile(
    r"context.length|context window|maximum context|prompt is too long|too many tokens|"
    r"reduce the length|input is too long|exceeds the context",
    re.IGNORECASE,
)
_FILTER_RE = re.compile(r"content.(?:policy|filter|management)|safety system", re.IGNORECASE)


class RefusedByPolicy(Exception):
    """Raised while connecting when the application's outbound policy forbids the address.

    The gateway knows nothing of the policy itself; the application's resolver raises this
    (see `agents.urlpolicy.PolicyResolver`) and the gateway reports a permanent `refused` error.
    """


class LLMError(Exception):
    """A provider call that did not produce an answer.

    `kind` says what went wrong, `transient` whether trying again may help.
    """

    def __init__(
        self,
        kind: str,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        deployment_id: str | None = None,
        transient: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status
        self.retry_after = retry_after
        self.deployment_id = deployment_id
        if transient is None:
            transient = kind in TRANSIENT_KINDS
            if kind == "provider_error" and status is not None and status < 500:
                transient = False
        self.transient = transient
        self.attempts: list[Attempt] = []
        # For `timeout`: which limit passed ("first_byte", "between_chunks" or "total").
        self.limit: str | None = None

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return (
            f"LLMError(kind={self.kind!r}, status={self.status!r}, "
            f"deployment_id={self.deployment_id!r}, message={self.message!r})"
        )

    def scrubbed(self, secret: str | None) -> LLMError:
        """Makes sure no key, nor part of one, appears in the message (in place; returns self)."""
        message = redact_secrets(self.message, secret)
        if message != self.message:
            self.message = message
            self.args = (message,)
        return self


class BudgetExceeded(LLMError):
    """A budget refused the call before it was made (see `agents.budgets`).

    `final` is False when only other calls' reservations fill the budget (they may settle for
    less); `pause` says the budget wants a person asked rather than the run stopped; `key`
    names the budget's period, so a person's answer applies to that period only.
    """

    def __init__(self, message: str, *, key: str = "", pause: bool = False, final: bool = True):
        super().__init__("budget", message, transient=False)
        self.key = key
        self.pause = pause
        self.final = final


_LABELS: Final = {
    "auth": "The provider rejected the API key",
    "rate_limit": "The provider's rate limit was reached",
    "timeout": "The provider did not answer in time",
    "context_length": "The conversation is longer than the model's context window",
    "content_filter": "The provider's content filter refused the request",
    "provider_error": "The provider failed to answer",
    "malformed_response": "The provider's answer could not be read",
    "unreachable": "The provider could not be reached",
    "bad_request": "The provider refused the request as invalid",
    "cancelled": "The call was cancelled",
    "no_deployment": "No deployment is available",
    "refused": "The studio's outbound policy refused the connection",
    "budget": "A budget refused the call",
    "blocked": "The workspace's gateway middleware blocked the call",
}


def make_error(
    kind: str,
    detail: str = "",
    *,
    status: int | None = None,
    retry_after: float | None = None,
    deployment_id: str | None = None,
    secret: str | None = None,
    transient: bool | None = None,
) -> LLMError:
    parts = [_LABELS.get(kind, "The provider call failed")]
    if deployment_id:
        parts.append(f" (deployment {deployment_id})")
    if status is not None:
        parts.append(f": HTTP {status}")
    if detail:
        # Redacted before it is cut, so that a cut cannot leave a key too short to recognise.
        detail = " ".join(redact_secrets(detail, secret).split()).rstrip(".")
        if len(detail) > MAX_DETAIL:
            detail = detail[:MAX_DETAIL] + "…"
        parts.append(f": {detail}" if status is None else f" – {detail}")
    message = redact_secrets("".join(parts) + ".", secret)
    return LLMError(
        kind,
        message,
        status=status,
        retry_after=retry_after,
        deployment_id=deployment_id,
        transient=transient,
    )


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """`retry-after-ms` (milliseconds) or `retry-after` (seconds); HTTP dates are ignored."""
    if not headers:
        return None
    get = headers.get
    for name, scale in (("retry-after-ms", 0.001), ("Retry-After-Ms", 0.001)):
        value = get(name)
        if value is not None:
            try:
                return max(0.0, float(value) * scale)
            except ValueError:
                pass
    for name in ("retry-after", "Retry-After"):
        value = get(name)
        if value is not None:
            try:
                return max(0.0, float(value))
            except ValueError:
                return None
    return None


def _upstream_message(body: Any) -> tuple[str, str]:
    """(message, code/type) from the error body shapes OpenAI, Anthropic and Ollama use."""
    if isinstance(body, bytes | bytearray):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return body.strip(), ""
    if not isinstance(body, Mapping):
        return "", ""
    error = body.get("error", body)
    if isinstance(error, str):
        return error, ""
    if not isinstance(error, Mapping):
        return "", ""
    message = error.get("message")
    code = error.get("code") or error.get("type") or ""
    return (message if isinstance(message, str) else ""), str(code)


def classify_http_error(
    status: int,
    body: Any,
    headers: Mapping[str, str] | None = None,
    *,
    deployment_id: str | None = None,
    secret: str | None = None,
) -> LLMError:
    """An HTTP error answer of an OpenAI-protocol provider as an LLMError."""
    message, code = _upstream_message(body)
    haystack = f"{code} {message}"
    retry_after = None
    if status in (401, 403):
        kind = "auth"
    elif status == 429:
        kind = "rate_limit"
        retry_after = parse_retry_after(headers)
    elif status == 408:
        kind = "timeout"
    elif status == 413 or (status in (400, 422) and _CONTEXT_RE.search(haystack)):
        kind = "context_length"
    elif status in (400, 422) and _FILTER_RE.search(haystack):
        kind = "content_filter"
    elif status >= 500:
        kind = "provider_error"
        retry_after = parse_retry_after(headers)
    elif status == 404 or 300 <= status < 400:
        # A missing model or a redirect we do not follow: another provider may do better.
        kind = "provider_error"
        if 300 <= status < 400:
            message = "redirects are not followed; check the base URL"
    else:
        kind = "bad_request"
    return make_error(
        kind,
        message,
        status=status,
        retry_after=retry_after,
        deployment_id=deployment_id,
        secret=secret,
    )


# litellm's exception classes by name, most specific first (looked up along the MRO).
_LITELLM_KINDS: Final = {
    "ContextWindowExceededError": "context_length",
    "ContentPolicyViolationError": "content_filter",
    "AuthenticationError": "auth",
    "PermissionDeniedError": "auth",
    "RateLimitError": "rate_limit",
    "Timeout": "timeout",
    "APITimeoutError": "timeout",
    "TimeoutError": "timeout",
    "ReadTimeout": "timeout",
    "ConnectTimeout": "timeout",
    "ServerTimeoutError": "timeout",
    "UnsupportedParamsError": "bad_request",
    "UnprocessableEntityError": "bad_request",
    "BadRequestError": "bad_request",
    "NotFoundError": "provider_error",
    "ServiceUnavailableError": "provider_error",
    "InternalServerError": "provider_error",
    "BadGatewayError": "provider_error",
    "JSONDecodeError": "malformed_response",
    "APIResponseValidationError": "malformed_response",
    "MidStreamFallbackError": "malformed_response",
    "APIConnectionError": "unreachable",
    "ConnectError": "unreachable",
    "ClientConnectorError": "unreachable",
    "RemoteProtocolError": "malformed_response",
    "APIError": "provider_error",
}
_LITELLM_PREFIX_RE = re.compile(r"^litellm\.\w+:\s*(?:\w+Exception\s*-\s*)?")


def classify_litellm_exception(
    exc: BaseException, *, deployment_id: str | None = None, secret: str | None = None
) -> LLMError:
    """An exception raised by `litellm.acompletion` (or its HTTP stack) as an LLMError."""
    if isinstance(exc, LLMError):
        return exc.scrubbed(secret)
    kind = "provider_error"
    for cls in type(exc).__mro__:
        found = _LITELLM_KINDS.get(cls.__name__)
        if found is not None:
            kind = found
            break
    status = getattr(exc, "status_code", None)
    if not isinstance(status, int):
        status = None
    detail = str(getattr(exc, "message", None) or exc)
    detail = _LITELLM_PREFIX_RE.sub("", detail)
    start, end = detail.find("{"), detail.rfind("}")
    if 0 <= start < end:
        # litellm wraps the provider's JSON error body (often as a bytes repr) in its own text.
        try:
            upstream, _ = _upstream_message(json.loads(detail[start : end + 1]))
        except ValueError:
            upstream = ""
        if upstream:
            detail = upstream
    detail = detail.split(". Received Model Group=")[0].split("Handle with `litellm")[0]
    if kind in ("bad_request", "provider_error") and status in (400, 413, 422, None):
        if _CONTEXT_RE.search(detail):
            kind = "context_length"
        elif kind == "bad_request" and _FILTER_RE.search(detail):
            kind = "content_filter"
    if kind == "unreachable" and status is not None and status >= 500:
        kind = "provider_error"
    if kind == "bad_request" and status == 404:
        kind = "provider_error"
    retry_after = None
    if kind in ("rate_limit", "provider_error"):
        response = getattr(exc, "response", None)
        for headers in (
            getattr(exc, "litellm_response_headers", None),
            getattr(exc, "headers", None),
            getattr(response, "headers", None),
        ):
            try:
                retry_after = parse_retry_after(headers)
            except Exception:  # noqa: BLE001 - a header we cannot read is no retry hint
                retry_after = None
            if retry_after is not None:
                break
    return make_error(
        kind,
        detail,
        status=status,
        retry_after=retry_after,
        deployment_id=deployment_id,
        secret=secret,
    )
