"""Refusing a malformed request in the format its endpoint speaks.

A JSON endpoint answers `{"error": "..."}`; an htmx request gets a small fragment it can swap in
where its answer goes; a page gets a page. `refusal()` picks the one that fits; views mark their
JSON endpoints with `@json_endpoint` so that the choice holds also before the view runs.

`RequestLimitsMiddleware` answers bodies over Django's limits (`DATA_UPLOAD_MAX_MEMORY_SIZE`,
`DATA_UPLOAD_MAX_NUMBER_FIELDS`) with such a refusal — 413 or 400 with a sentence that says what
the limit is — instead of Django's bare 400 page (or, with DEBUG on, its technical page) — and
refuses NUL characters in form fields and query parameters, which no database column stores.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.http.multipartparser import MultiPartParserError
from django.template.loader import render_to_string
from django.urls import Resolver404, resolve

ViewFunc = TypeVar("ViewFunc", bound=Callable[..., Any])

_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def json_endpoint(view: ViewFunc) -> ViewFunc:
    """Marks a view that answers JSON, errors included."""
    view.answers_json = True  # type: ignore[attr-defined]
    return view


def wants_json(request: HttpRequest) -> bool:
    try:
        match = resolve(request.path_info)
    except Resolver404:
        match = None
    if match is not None and getattr(match.func, "answers_json", False):
        return True
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


def refusal(request: HttpRequest, message: str, *, status: int = 400) -> HttpResponse:
    """`message` as the endpoint's format says: JSON, an htmx fragment, or a page."""
    if wants_json(request):
        return JsonResponse({"error": message}, status=status)
    if request.headers.get("HX-Request") == "true":
        html = render_to_string("includes/refusal.html", {"message": message})
        return HttpResponse(html, status=status)
    html = render_to_string("refused.html", {"message": message, "status": status}, request=request)
    return HttpResponse(html, status=status)


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f}".removesuffix(".0") + " MB"


def body_too_large_message() -> str:
    return (
        f"The request is larger than {_megabytes(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)}, the "
        "most this server accepts; send less at once."
    )


class RequestLimitsMiddleware:
    """Refuses a body over the limits before anything reads it (see the module's docstring)."""

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> Any:
        refused = self._check(request)
        return refused if refused is not None else self.get_response(request)

    def _check(self, request: HttpRequest) -> HttpResponse | None:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        content_type = request.content_type or ""
        # Uploaded files do not count towards the limit (views bound their own); the rest does.
        if content_type != "multipart/form-data" and limit is not None:
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                return refusal(request, "The Content-Length header is not a number.")
            if length > limit:
                return refusal(request, body_too_large_message(), status=413)
        if request.method == "POST" and content_type in _FORM_TYPES:
            # Parsed here rather than by the CSRF check, so that a refusal can say why.
            try:
                request.POST  # noqa: B018
            except RequestDataTooBig:
                return refusal(request, body_too_large_message(), status=413)
            except (TooManyFieldsSent, TooManyFilesSent):
                return refusal(
                    request,
                    "The form has more fields than this server accepts "
                    f"({settings.DATA_UPLOAD_MAX_NUMBER_FIELDS}).",
                )
            except MultiPartParserError as error:
                return refusal(request, f"The form data cannot be read: {error}")
        # No text column stores NUL (PostgreSQL refuses it); nobody types it into a form.
        if _has_nul(request.GET) or (request.method == "POST" and _has_nul(request.POST)):
            return refusal(request, "Text cannot contain NUL (\\0) characters.")
        return None


def _has_nul(data: QueryDict) -> bool:
    return any(
        "\x00" in key or any("\x00" in value for value in values) for key, values in data.lists()
    )
