"""Sparklines: a series of figures as a small inline SVG line, with its range in words.

Server-drawn (no script, nothing for the Content-Security-Policy to refuse); a missing point
(a figure not measured) breaks the line rather than drawing a zero.
"""

from __future__ import annotations

from collections.abc import Sequence

from django import template
from django.utils.html import format_html, format_html_join

register = template.Library()

WIDTH = 96
HEIGHT = 24


def _segments(values: Sequence[float | None], low: float, high: float) -> list[str]:
    span = (high - low) or 1.0
    step = WIDTH / max(len(values) - 1, 1)
    segments: list[list[str]] = [[]]
    for index, value in enumerate(values):
        if value is None:
            if segments[-1]:
                segments.append([])
            continue
        x = index * step
        y = HEIGHT - 2 - (value - low) / span * (HEIGHT - 4)
        segments[-1].append(f"{x:.1f},{y:.1f}")
    return [" ".join(points) for points in segments if points]


@register.simple_tag
def sparkline(values: Sequence[float | None], label: str, unit: str = "") -> str:
    """An SVG line of `values` (oldest first) named `label` for screen readers and tooltips."""
    # A process younger than the span: its line starts where its history does, not as a dash
    # squeezed against the right edge.
    values = list(values)
    while values and values[0] is None:
        values.pop(0)
    known = [value for value in values if value is not None]
    if len(known) < 2:
        # One point is no line yet: say so rather than draw a stray dot.
        text = "no history yet" if not known else "1 point so far"
        return format_html('<span class="sparkline-wait muted small">{}</span>', text)
    # From zero: a line then reads as a level, where a narrow band would magnify noise.
    low, high = min(0.0, *known), max(known)
    described = (
        f"{label}: from {min(known):g}{unit} to {max(known):g}{unit}, now {known[-1]:g}{unit}"
    )
    lines = format_html_join(
        "",
        '<polyline points="{}" fill="none" stroke="currentColor" stroke-width="1.5"/>',
        ((points,) for points in _segments(values, low, high)),
    )
    return format_html(
        '<svg class="sparkline" viewBox="0 0 {} {}" width="{}" height="{}" role="img" '
        'aria-label="{}"><title>{}</title>{}</svg>',
        WIDTH,
        HEIGHT,
        WIDTH,
        HEIGHT,
        described,
        described,
        lines,
    )
