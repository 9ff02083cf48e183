"""The Content-Security-Policy: sent with every page, and no template needs an exception to it.

The browser suite (tests/browser/test_content_security_policy.py) walks the pages in Chromium and
collects what the policy refuses; these checks catch the usual causes before a browser runs.
"""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from django.http import HttpResponse
from django.test import RequestFactory
from django.urls import reverse

from a2a_site.csp import ContentSecurityPolicyMiddleware
from tests.support.processes import ROOT

# The 500 page styles itself inline: it must render when static files are what failed.
TEMPLATES = sorted(p for p in (ROOT / "templates").rglob("*.html") if p.name != "500.html")


@pytest.mark.django_db
def test_every_page_carries_the_policy(client) -> None:
    response = client.get(reverse("login"))
    policy = response["Content-Security-Policy"]
    for directive in ("script-src 'self'", "style-src 'self'", "object-src 'none'"):
        assert directive in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert 'allowEval":false' in response.content.decode()


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda path: str(path.relative_to(ROOT)))
def test_no_template_has_inline_script_style_or_handlers(template) -> None:
    source = template.read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", source), "inline <script>"
    assert not re.search(r"<style\b", source), "<style> element"
    assert not re.search(r"\sstyle=", source), "style attribute"
    assert not re.search(r"\son[a-z]+=", source), "event handler attribute"
    assert "hx-on" not in source, "hx-on needs eval"


def test_the_error_page_may_use_its_own_inline_style_and_no_other() -> None:
    source = (ROOT / "templates" / "500.html").read_text()
    style = re.search(r"<style>(.*?)</style>", source, re.S)
    assert style is not None
    digest = base64.b64encode(hashlib.sha256(style.group(1).encode()).digest()).decode()
    middleware = ContentSecurityPolicyMiddleware(lambda request: HttpResponse(status=500))
    policy = middleware(RequestFactory().get("/"))["Content-Security-Policy"]
    assert f"style-src 'self' 'sha256-{digest}';" in policy
    assert "unsafe-inline" not in policy

    middleware = ContentSecurityPolicyMiddleware(lambda request: HttpResponse(status=404))
    assert "sha256" not in middleware(RequestFactory().get("/"))["Content-Security-Policy"]
