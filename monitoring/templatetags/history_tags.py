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


def token_caption(name: str | None, prefix: str | None) -> str:
    """A token as people tell it apart: its name and its visible prefix."""
    return f"{name} ({prefix}…)" if prefix else (name or "")


def launched_caption(
    *, via: str, username: str | None, token_name: str | None, token_prefix: str | None
) -> str:
    """Who launched a run, in one line: "Launched over A2A by ci-bot (a2a_Xk3…) (olivia)".
    Over the API or A2A the token is the caller; its user is who the token acts as."""
    if via == LaunchedVia.WEB:
        return f"Started by {username}" if username else "Started from the page"
    phrases: dict[str, str] = {
        LaunchedVia.A2A.value: "over A2A",
        LaunchedVia.API.value: "over the API",
        LaunchedVia.SCHEDULE.value: "on a schedule",
        LaunchedVia.COMMAND_LINE.value: "from the command line",
        LaunchedVia.WORKFLOW.value: "by its parent workflow",
    }
    over = phrases.get(str(via), f"from {via}")
    if token_prefix:
        who = token_caption(token_name, token_prefix)
        return f"Launched {over} by {who}" + (f" ({username})" if username else "")
    if username:
        return f"Launched {over} by {username}"
    return f"Launched {over}"


@register.simple_tag
def run_launched_caption(run: Any) -> str:
    token = run.api_token if run.api_token_id else None
    return launched_caption(
        via=run.launched_via,
        username=run.created_by.username if run.created_by_id else None,
        token_name=token.name if token else None,
        token_prefix=token.prefix if token else None,
    )
