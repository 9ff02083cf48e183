"""Figures as the dashboards show them: unknown stays "unknown", never a zero."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import template

register = template.Library()


@register.filter
def dictget(mapping: Mapping[str, Any] | None, key: str) -> Any:
    return (mapping or {}).get(key, ())


@register.filter
def usd(value: Any) -> str:
    if value is None:
        return "unknown"
    amount = float(value)
    return f"${amount:,.2f}" if amount >= 100 else f"${amount:,.4f}"


@register.filter
def ms(value: Any) -> str:
    if value is None:
        return "unknown"
    value = float(value)
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.0f} ms"


@register.filter
def percent(value: Any) -> str:
    return "unknown" if value is None else f"{float(value) * 100:.1f} %"


@register.filter
def count(value: Any) -> str:
    return "0" if not value else f"{int(value):,}"
