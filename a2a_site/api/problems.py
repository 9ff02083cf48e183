"""Every error of the public API in one shape: RFC 9457 problem details.

    {"type": "urn:a2a-studio:problem:validation", "title": "…", "status": 422,
     "detail": "…", "errors": [{"field": "inputs.topic", "message": "…"}]}

served as `application/problem+json`, for each 4xx and 5xx the API gives — malformed JSON,
validation, authentication, scope, role, missing objects, wrong methods, rate limits and faults
of our own. `type` is a stable identifier a client may branch on; `title` names the kind;
`detail` says what happened to this request in a sentence a person can act on.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.http.request import RawPostDataException
from ninja.errors import AuthenticationError, HttpError, Throttled
from ninja.errors import ValidationError as NinjaValidationError

from a2a_site.json_input import JsonInputError

logger = logging.getLogger(__name__)

CONTENT_TYPE = "application/problem+json"

# Kind -> (status, title). A kind is the last part of `type`.
KINDS: dict[str, tuple[int, str]] = {
    "malformed": (400, "Malformed request"),
    "unauthenticated": (401, "Authentication needed"),
    "forbidden": (403, "Not allowed"),
    "scope": (403, "Token scope too low"),
    "not-found": (404, "Not found"),
    "method": (405, "Method not allowed"),
    "conflict": (409, "Conflict"),
    "refused": (409, "Refused"),
    "too-large": (413, "Request too large"),
    "validation": (422, "Invalid request"),
    "idempotency-mismatch": (422, "Idempotency key reused"),
    "rate-limited": (429, "Too many requests"),
    "server": (500, "Server error"),
}


def problem_type(kind: str) -> str:
    return f"urn:a2a-studio:problem:{kind}"


@dataclass
class FieldError:
    field: str
    message: str


@dataclass
class ApiError(Exception):
    """Raised by API code to answer with a problem; `kind` picks status and title."""

    kind: str
    detail: str
    errors: list[FieldError] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    status: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.detail


def problem_response(
    kind: str,
    detail: str,
    *,
    status: int | None = None,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> HttpResponse:
    default_status, title = KINDS[kind]
    status = status or default_status
    body: dict[str, Any] = {
        "type": problem_type(kind),
        "title": title,
        "status": status,
        "detail": detail,
        "errors": [{"field": error.field, "message": error.message} for error in errors or []],
        **(extra or {}),
    }
    response = HttpResponse(json.dumps(body), status=status, content_type=CONTENT_TYPE)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _field_name(loc: Any) -> str:
    # ninja locates an error as (source, field, …): the source (body, query, path) is noise.
    parts = [str(part) for part in loc or ()]
    if parts and parts[0] in ("body", "query", "path", "header", "form", "cookie"):
        parts = parts[1:]
    if len(parts) > 1 and parts[0] == "payload":  # the name of a body parameter
        parts = parts[1:]
    return ".".join(parts) or "body"


def field_errors_of(error: DjangoValidationError) -> list[FieldError]:
    if hasattr(error, "error_dict"):
        return [
            FieldError("" if name == "__all__" else name, message)
            for name, messages in error.message_dict.items()
            for message in messages
        ]
    return [FieldError("", message) for message in error.messages]


def handle_api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
    return problem_response(
        exc.kind,
        exc.detail,
        status=exc.status,
        errors=exc.errors,
        headers=exc.headers,
        extra=exc.extra,
    )


def handle_ninja_validation(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    errors = [
        FieldError(_field_name(item.get("loc")), str(item.get("msg", "Invalid value.")))
        for item in exc.errors
    ]
    names = ", ".join(sorted({error.field for error in errors})) or "the request"
    return problem_response("validation", f"Check {names}.", errors=errors)


def handle_django_validation(request: HttpRequest, exc: DjangoValidationError) -> HttpResponse:
    errors = field_errors_of(exc)
    detail = errors[0].message if len(errors) == 1 else "The request is not valid; see errors."
    return problem_response("validation", detail, errors=errors)


def handle_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    cause = exc.__cause__
    if isinstance(cause, JsonInputError):
        kind = "too-large" if cause.status == 413 else "malformed"
        return problem_response(kind, str(cause), status=cause.status)
    if isinstance(exc, Throttled):
        return problem_response("rate-limited", "Too many requests; wait and retry.")
    if isinstance(exc, AuthenticationError):
        return problem_response(
            "unauthenticated",
            "Send a token (Authorization: Bearer <token>) or sign in.",
            headers={"WWW-Authenticate": 'Bearer realm="a2a-studio"'},
        )
    if exc.status_code == 403:  # the session's CSRF check
        return problem_response(
            "forbidden",
            "The CSRF check failed: a signed-in browser sends the X-CSRFToken header; "
            "scripts use a token instead.",
        )
    kind = {400: "malformed", 404: "not-found", 405: "method", 409: "conflict"}.get(
        exc.status_code, "malformed"
    )
    return problem_response(kind, str(exc), status=exc.status_code)


def handle_not_found(request: HttpRequest, exc: Exception) -> HttpResponse:
    return problem_response("not-found", "No such object, or it is not yours to see.")


def handle_permission_denied(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
    return problem_response("forbidden", str(exc) or "Your role does not allow this.")


def handle_json_input(request: HttpRequest, exc: JsonInputError) -> HttpResponse:
    kind = "too-large" if exc.status == 413 else "malformed"
    return problem_response(kind, str(exc), status=exc.status)


def handle_form_body(request: HttpRequest, exc: RawPostDataException) -> HttpResponse:
    # A multipart body is parsed as a form before anything can read it as JSON.
    return problem_response("malformed", "Send JSON (Content-Type: application/json), not a form.")


def handle_unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    # The trace goes to the log (redacted there), never to the client.
    logger.exception("API request %s %s failed", request.method, request.path)
    return problem_response(
        "server", "Something went wrong on our side; it was logged. Try again later."
    )


EXCEPTION_HANDLERS: list[tuple[type[Exception], Any]] = [
    (Exception, handle_unexpected),
    (ApiError, handle_api_error),
    (NinjaValidationError, handle_ninja_validation),
    (DjangoValidationError, handle_django_validation),
    (HttpError, handle_http_error),
    (Http404, handle_not_found),
    (PermissionDenied, handle_permission_denied),
    (JsonInputError, handle_json_input),
    (RawPostDataException, handle_form_body),
]
