from __future__ import annotations

from decimal import Decimal

from django import template
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from monitoring.alerts.kinds import KINDS, threshold_text

register = template.Library()


@register.filter
def rule_threshold(rule: object) -> str:
    """The rule's condition in words: "> 10 %", "> 30 s", "at 80 %"."""
    kind = getattr(rule, "kind", "")
    threshold = getattr(rule, "threshold", Decimal(0))
    text = threshold_text(kind, threshold)
    if kind == "budget":
        return f"at {text}"
    if kind == "run_waiting":
        return f"waiting > {text}"
    return f"> {text}"


@register.filter
def rule_window(rule: object) -> str:
    kind = getattr(rule, "kind", "")
    if kind not in KINDS or not KINDS[kind].uses_window:
        return "—"
    minutes = int(getattr(rule, "window_minutes", 0))
    return f"{minutes // 60} h" if minutes >= 60 and minutes % 60 == 0 else f"{minutes} min"


@register.filter
def measured(value: Decimal | None, kind: str) -> str:
    if value is None:
        return "—"
    if kind == "run_waiting":  # the threshold is minutes; the measure, runs waiting longer
        return f"{value.normalize():f} run(s)"
    return threshold_text(kind, value)


@register.filter
def attempt_time(text: str) -> str:
    """An attempt's ISO time from the delivery log, as people read it (in the site's zone)."""
    moment = parse_datetime(str(text or ""))
    if moment is None:
        return "?"
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S")
