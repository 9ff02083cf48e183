"""Template helpers for the builder's canvas island."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.html import format_html, json_script
from django.utils.safestring import mark_safe

register = template.Library()


@register.simple_tag
def builder_data(name: str, value: Any) -> str:
    """`<script type="application/json" data-builder="name">` holding `value`, escaped as
    `json_script` escapes (so model output in a graph cannot close the tag)."""
    # json_script without an element id renders just the tag and its escaped body.
    rendered = json_script(value)
    body = rendered[rendered.index(">") + 1 : rendered.rindex("</script>")]
    return format_html(
        '<script type="application/json" data-builder="{}">{}</script>', name, mark_safe(body)
    )


@register.filter
def get_item(mapping: Any, key: Any) -> Any:
    return mapping.get(key) if isinstance(mapping, dict) else None
