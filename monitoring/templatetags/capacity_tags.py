"""Figures of the capacity planner, in the units people buy hardware in."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def gb(value: int | None) -> str:
    """Bytes as decimal gigabytes, "unknown" when not known (never a zero)."""
    if value is None:
        return "unknown"
    return f"{value / 1e9:.1f} GB"


@register.filter
def billions(value: int | None) -> str:
    if value is None:
        return "?"
    return f"{value / 1e9:.1f} B" if value >= 1e9 else f"{value / 1e6:.0f} M"
