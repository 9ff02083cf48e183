"""The Content-Security-Policy header on every response.

Pages load scripts and styles only from our own origin: no inline script, no style attribute, no
`eval` (htmx is told `allowEval: false` and not to inject its indicator styles, in base.html's
`htmx-config`). So markup that slips through — an LLM's answer rendered wrongly, a name not
escaped — cannot run script. The WebSocket of a run page is our own origin too (`connect-src
'self'` covers ws: and wss: of it). A view that needs another policy sets the header itself.

One exception: the 500 page carries its style inline, since it must look right when static files
are what failed; its responses allow that one style by its hash.
"""

from __future__ import annotations

import base64
import hashlib
import re
from functools import cache

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase
from django.utils.deprecation import MiddlewareMixin


@cache
def error_page_style_source() -> str:
    """`'sha256-…'` of the inline style of templates/500.html, or "" without one."""
    from django.template.loader import get_template

    template = get_template("500.html")
    match = re.search(r"<style>(.*?)</style>", template.template.source, re.S)  # type: ignore[attr-defined]
    if match is None:
        return ""
    digest = hashlib.sha256(match.group(1).encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


class ContentSecurityPolicyMiddleware(MiddlewareMixin):
    # MiddlewareMixin serves sync and async views alike, so streams stay on the event loop.
    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        policy = settings.CONTENT_SECURITY_POLICY
        if policy and "Content-Security-Policy" not in response:
            if response.status_code == 500 and (style := error_page_style_source()):
                policy = policy.replace("style-src 'self'", f"style-src 'self' {style}")
            response["Content-Security-Policy"] = policy
        return response
