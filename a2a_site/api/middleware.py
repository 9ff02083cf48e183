"""Answers under /api/v1/ that did not come from the API's own handlers — an unknown path (404),
a method the path does not take (405), a body over the size limit (413), a fault (500) — turned
into the API's problem shape, so a client parses one kind of error whatever refused it."""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponseBase
from django.utils.deprecation import MiddlewareMixin

from a2a_site.api.problems import CONTENT_TYPE, problem_response
from a2a_site.refusals import body_too_large_message

API_PREFIX = "/api/v1/"

_KINDS = {400: "malformed", 401: "unauthenticated", 403: "forbidden", 404: "not-found"}
_KINDS.update({405: "method", 409: "conflict", 413: "too-large", 422: "validation"})
_KINDS.update({429: "rate-limited"})
_DETAILS = {
    404: "No such API path; the reference is at /api/v1/docs/.",
    405: "This path does not take this method; the Allow header lists the ones it does.",
    500: "Something went wrong on our side; it was logged. Try again later.",
}


class ApiProblemMiddleware(MiddlewareMixin):
    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        status = response.status_code
        if status < 400 or not request.path_info.startswith(API_PREFIX):
            return response
        content_type = response.get("Content-Type", "")
        if content_type.startswith(CONTENT_TYPE) or request.path_info.startswith(
            f"{API_PREFIX}docs/"
        ):
            return response
        detail = body_too_large_message() if status == 413 else _DETAILS.get(status, "")
        if content_type.startswith("application/json"):
            try:
                said = json.loads(getattr(response, "content", b"") or b"{}").get("error")
            except (ValueError, AttributeError):
                said = None
            detail = said or detail
        kind = _KINDS.get(status, "server" if status >= 500 else "malformed")
        problem = problem_response(kind, detail or "The request was refused.", status=status)
        for header in ("Allow", "Retry-After", "WWW-Authenticate"):
            if header in response:
                problem[header] = response[header]
        return problem
