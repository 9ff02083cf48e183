"""The public API's one NinjaAPI: authentication, the JSON parser, and problem answers.

The apps add their routers in `a2a_site/api/v1.py`; this module knows none of them.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import NinjaAPI
from ninja.parser import Parser

from a2a_site.api.auth import API_AUTH
from a2a_site.api.idempotency import IDEMPOTENT_OPERATIONS as IDEMPOTENT
from a2a_site.api.problems import EXCEPTION_HANDLERS
from a2a_site.json_input import body_bytes, json_parse

DESCRIPTION = """\
Drive A2A Studio from code: read workspaces and workflows, launch runs and follow them.

**Authentication.** Create a token under *Settings → API tokens* and send it as
`Authorization: Bearer <token>`. A token acts as the person who created it, with at most their
role in the workspace and at most its own scope (`read` < `run` < `write` < `admin`). A signed-in
browser may call the API with its session; writes then need the `X-CSRFToken` header.

**Errors** are RFC 9457 problem details (`application/problem+json`) with `type`, `title`,
`status`, `detail` and `errors` (one entry per field). Another workspace's objects answer 404;
a scope too low answers 403; too many requests answer 429 with `Retry-After`.

**Retries.** POSTs accept an `Idempotency-Key` header: a retry with the same key and body gets
the first answer (marked `Idempotent-Replayed: true`) and does nothing twice; the same key with
another body is refused with 422. Keys are kept 24 hours.

**Lists** are paginated by cursor: pass `next_cursor` of a page as `cursor` for the next.
"""


class StrictJsonParser(Parser):
    """Bodies through the site's one JSON reader: depth, NaN, NUL and size refused with a
    reason (a2a_site/json_input.py), not a 500 or a bare 400."""

    def parse_body(self, request: HttpRequest) -> Any:
        return json_parse(body_bytes(request), what="The body")


PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details: every 4xx and 5xx of this API.",
    "required": ["type", "title", "status", "detail", "errors"],
    "properties": {
        "type": {"type": "string", "description": "urn:a2a-studio:problem:<kind>"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}


IDEMPOTENCY_PARAMETER: dict[str, Any] = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
    "description": "Retry safely: the same key and body get the first answer (24 h).",
}


class StudioApi(NinjaAPI):
    def get_openapi_schema(self, *args: Any, **kwargs: Any) -> Any:
        """Ninja's schema, plus the one error shape every operation may answer with."""
        schema = super().get_openapi_schema(*args, **kwargs)
        schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        problem = {
            "description": "A problem (see Problem)",
            "content": {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
            },
        }
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                if isinstance(operation, dict) and "responses" in operation:
                    operation["responses"].setdefault("4XX", problem)
                    operation["responses"].setdefault("5XX", problem)
                if isinstance(operation, dict) and operation.get("operationId") in IDEMPOTENT:
                    operation.setdefault("parameters", []).append(IDEMPOTENCY_PARAMETER)
        return schema


def build_api() -> NinjaAPI:
    api = StudioApi(
        title="A2A Studio API",
        version="1",
        description=DESCRIPTION,
        urls_namespace="api",
        auth=API_AUTH,
        parser=StrictJsonParser(),
        docs_url=None,  # the reference page is ours: vendored assets, our CSP (views.py)
    )
    for exception, handler in EXCEPTION_HANDLERS:
        api.add_exception_handler(exception, handler)
    return api
