"""How the history shows a run's figures: short, and honest about what is not known."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django import template
from django.utils import timezone

from agents.templatetags.provider_tags import ago
from workflows.models import LaunchedVia

register = template.Library()

PREVIEW_CHARS = 90


@register.filter
def input_preview(inputs: Any) -> str:
    """The run's first input on one line, cut at PREVIEW_CHARS."""
    if not isinstance(inputs, dict) or not inputs:
        return ""
    values = [v if isinstance(v, str) else str(v) for v in inputs.values() if v not in (None, "")]
    text = " · ".join(values)
    text = " ".join(text.split())
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1].rstrip() + "…"


@register.filter
def when(moment: datetime | None) -> str:
    """“5 minutes ago” within the day, “3 Dec 14:05” this year, else “3 Dec 2025”."""
    if moment is None:
        return ""
    now = timezone.now()
    if now - moment < timedelta(hours=24):
        return str(ago(moment))
    local = timezone.localtime(moment)
    if local.year == timezone.localtime(now).year:
        return local.strftime("%-d %b %H:%M")
    return local.strftime("%-d %b %Y")


@register.filter
def run_duration(run: Any) -> str:
    if run.started_at is None:
        return "—"
    if run.finished_at is None:
        return "running" if run.status == "running" else "—"
    seconds = (run.finished_at - run.started_at).total_seconds()
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"


@register.filter
def usd(value: Decimal | None) -> str:
    if value is None:
        return "—"
    if value == 0:
        return "$0"
    if value < Decimal("0.01"):
        return f"${value:.4f}"
    return f"${value:,.2f}"


@register.filter
def launched_via_label(value: str) -> str:
    try:
        return str(LaunchedVia(value).label)
    except ValueError:
        return value
