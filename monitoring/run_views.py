"""The review pages of one run or two: its trace, and two runs compared."""

from __future__ import annotations

from uuid import UUID

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_GET

from a2a_site.accounts.models import Role
from a2a_site.http import AuthedRequest
from a2a_site.refusals import refusal
from monitoring.trace.compare import compare_candidates, runs_compare
from monitoring.trace.inspector import inspect_span
from monitoring.trace.spans import run_trace as trace_of
from monitoring.trace.waterfall import waterfall_rows
from workflows.selectors import get_run_for_user

_GOING = frozenset({"running", "waiting", "pending"})
# The longest span id a link makes (a step key is at most 300 characters).
_SPAN_ID_MAX = 400


def _fork_url(run_id: UUID) -> str:
    """Where "Run again from here" goes, once forking a run exists."""
    try:
        return reverse("run_fork", args=[run_id])
    except NoReverseMatch:
        return ""


@login_required
@require_GET
def run_trace(request: AuthedRequest, run_id: UUID) -> HttpResponse:
    run, membership = get_run_for_user(request.user, run_id)
    span_id = request.GET.get("span", "run")
    if len(span_id) > _SPAN_ID_MAX:
        return refusal(request, "That span id is too long to be one of this run's spans.")
    trace = trace_of(run)
    inspection = inspect_span(trace, span_id)
    trace_url = reverse("run_trace", args=[run.pk])
    can_edit = membership.allows(Role.EDITOR)
    context = {
        "run": run,
        "trace": trace,
        "selected": span_id,
        "inspection": inspection,
        "can_edit": can_edit,
        "trace_url": trace_url,
    }
    target = request.htmx.target if request.htmx else None
    if target == "trace-inspector":  # a span was selected: only the inspector changes
        return render(request, "monitoring/_trace_inspector.html", context)
    context["waterfall_rows"] = waterfall_rows(
        trace.rows,
        trace_url=trace_url,
        fork_url=_fork_url(run.pk),
        can_edit=can_edit,
        selected=span_id,
    )
    if target == "trace-live":  # the live refresh of a run still going
        # A selected span still going is refreshed with it (out of band); a finished one is
        # left alone, so whoever reads a long prompt keeps their place.
        span = inspection.span
        context["inspector_refresh"] = span is not None and span.status in _GOING
        return render(request, "monitoring/_trace_live.html", context)
    return render(request, "monitoring/run_trace.html", context)


@login_required
@require_GET
def run_compare(request: AuthedRequest) -> HttpResponse:
    """Two runs side by side: `?a=<id>&b=<id>`, or `?run=<id>&run=<id>` as a list whose rows
    carry checkboxes named "run" submits it (select two, then Compare)."""
    selected = request.GET.getlist("run")
    if selected and "a" not in request.GET:
        if len(selected) != 2:
            return refusal(request, f"Select two runs to compare ({len(selected)} selected).")
        # The list's form sends its other fields too (its CSRF token among them): the address
        # kept in the browser's history is the plain one.
        plain = QueryDict(mutable=True)
        plain.update({"a": selected[0], "b": selected[1]})
        return redirect(f"{reverse('run_compare')}?{plain.urlencode()}")
    else:
        query = {name: request.GET.get(name, "") for name in ("a", "b")}
    ids = {}
    for name in ("a", "b"):
        raw = query[name].strip()
        if not raw:
            continue
        try:
            ids[name] = UUID(raw)
        except ValueError:
            return refusal(
                request, f"“{name}” must be a run id, such as the one in a run's address."
            )
    if "a" not in ids:
        return refusal(request, "Say which runs to compare: runs/compare/?a=<run id>&b=<run id>.")
    run_a, _ = get_run_for_user(request.user, ids["a"])
    if "b" not in ids:
        return render(
            request,
            "monitoring/run_compare_pick.html",
            {"run": run_a, "candidates": compare_candidates(run_a)},
        )
    run_b, _ = get_run_for_user(request.user, ids["b"])
    return render(
        request, "monitoring/run_compare.html", {"comparison": runs_compare(run_a, run_b)}
    )
