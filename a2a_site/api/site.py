"""The public API's one NinjaAPI: authentication, the JSON parser, and problem answers.

The apps add their routers in `a2a_site/api/v1.py`; this module knows none of them.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import NinjaAPI
from ninja.parser import Parser

from a2a_site.api.auth import API_AUTH
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


def build_api() -> NinjaAPI:
    api = NinjaAPI(
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
