"""The waterfall's rows as HTML, printed here rather than by the template engine.

A 200-step run has about 400 spans of a dozen values each; the template engine took some 250 ms
to print them (each variable resolved and escaped through its lookup machinery), this takes a
few. Every value is escaped (the standard library's `html.escape`, which escapes the same five
characters as Django's, without its lazy-string wrapper); nothing here is marked safe that came
from a run, a model or a person.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from html import escape as html_escape
from urllib.parse import quote

from django.utils.safestring import SafeString, mark_safe

from monitoring.trace.types import Row

escape = partial(html_escape, quote=True)


def waterfall_rows(
    rows: Iterable[Row], *, trace_url: str, fork_url: str, can_edit: bool, selected: str
) -> SafeString:
    out: list[str] = []
    fork = bool(fork_url and can_edit)
    for row in rows:
        span = row.span
        span_id = escape(span.id)
        href = escape(f"{trace_url}?span={quote(span.id, safe='')}")
        current = ' aria-current="true"' if span.id == selected else ""
        parent = (
            f'<span class="visually-hidden">, in {escape(row.parent_name)}</span>'
            if row.parent_name
            else ""
        )
        # The status is said in words beside the name (the bar's colour says it too); "done"
        # goes without saying.
        said = [span.detail] if span.detail else []
        if span.status != "ok":
            said.append(span.status_label)
        detail = f'<span class="span-detail">{escape(" · ".join(said))}</span>' if said else ""
        # The run's own reason is said in the summary above the waterfall.
        error = (
            f'<span class="span-error">{escape(_cut(span.error, 100))}</span>'
            if span.error and span.kind != "run"
            else ""
        )
        again = ""
        if fork and span.forkable:
            target = escape(f"{fork_url}?step={quote(span.step_key, safe='')}")
            again = (
                f'<a class="span-fork small" href="{target}">Run again from here'
                f'<span class="visually-hidden">: {escape(span.name)}</span></a>'
            )
        out.append(
            f'<tr class="span-row span-{span.kind} status-{span.status}" '
            f'data-span="{span_id}"{current}>'
            f'<th scope="row" class="span-name indent-{row.indent}">'
            f'<a class="span-link" href="{href}" hx-get="{href}" hx-target="#trace-inspector" '
            f'hx-swap="outerHTML" hx-push-url="true" data-span="{span_id}">'
            f'<span class="span-kind">{escape(span.kind_label)}</span> {escape(span.name)}'
            f"{parent}</a>{detail}{again}{error}</th>"
            f'<td class="span-bar-cell" aria-hidden="true"><svg class="span-bar" '
            f'viewBox="0 0 1000 12" preserveAspectRatio="none" focusable="false">'
            f'<rect class="bar bar-{span.kind} bar-{span.status}" x="{row.x}" y="1" '
            f'width="{row.width}" height="10" rx="2"/></svg></td>'
            f'<td class="num">{escape(row.offset)}</td>'
            f'<td class="num">{escape(row.duration)}</td>'
            f'<td class="num">{escape(span.tokens_text)}</td>'
            f'<td class="num">{escape(span.cost_text)}</td></tr>'
        )
    return mark_safe("".join(out))  # noqa: S308 - every value above is escaped


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[: limit - 1]}…"
