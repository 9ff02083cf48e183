"""The run history pages: workspace-wide at `runs/`, per workflow as a tab of its page, the
export of what they show, bulk cancel and delete, pins, and the retention setting."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.handlers.asgi import ASGIRequest
from django.http import (
    HttpResponse,
    HttpResponseBase,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from a2a_site.accounts.access import get_membership_for_user
from a2a_site.accounts.decorators import workspace_required
from a2a_site.accounts.models import Membership, Role
from a2a_site.http import AuthedRequest
from monitoring.history.export import export_async, export_sync
from monitoring.history.forms import RetentionForm
from monitoring.history.query import (
    SORTS,
    HistoryQuery,
    HistoryQueryForm,
    history_query_from,
    query_string,
)
from monitoring.history.rows import history_rows
from monitoring.history.selectors import history_choices, history_page
from workflows.models import Workflow
from workflows.selectors import get_run_for_user, get_workflow_for_user
from workflows.services import history as history_services


def _problems(form: HistoryQueryForm) -> list[tuple[str, str, str]]:
    """Each invalid parameter as (its name in the URL, its label, what is wrong)."""
    problems = []
    for name, errors in form.errors.items():
        message = " ".join(str(error) for error in errors)
        if name == "__all__":
            problems.append(("", "", message))
            continue
        field = form.fields.get(name)
        label = str(field.label) if field and field.label else name.replace("_", " ").capitalize()
        problems.append((name.rstrip("_"), label, message))
    return problems


def _history(
    request: AuthedRequest, membership: Membership, workflow: Workflow | None = None
) -> HttpResponse:
    form = HistoryQueryForm(request.GET)
    page = None
    status = 200
    query = HistoryQuery()
    if form.is_valid():
        query = history_query_from(form, workflow_id=workflow.pk if workflow else None)
        try:
            page = history_page(membership.workspace_id, query)
        except ValueError:  # a cursor that decodes but names no key of this sort
            form.add_error("cursor", "This page link is damaged; start from the first page.")
    if page is None:
        status = 400
    base = reverse("workflow_runs", args=[workflow.pk]) if workflow else reverse("run_list")
    can_edit = membership.allows(Role.EDITOR)
    context: dict[str, Any] = {
        "form": form,
        "problems": _problems(form),
        "page": page,
        "query": query,
        "workflow": workflow,
        "base_url": base,
        # The filter menus are only in the full page, not in the results htmx refreshes.
        "choices": None if request.htmx else history_choices(membership.workspace_id),
        "sorts": [(name, label) for name, (label, _desc) in SORTS.items()],
        "can_edit": can_edit,
        "statuses": HistoryQueryForm.base_fields["status"].choices,  # type: ignore[attr-defined]
        "selected_statuses": request.GET.getlist("status"),
        "first_page_url": f"{base}?{query_string(request.GET)}",
        "next_page_url": (
            f"{base}?{query_string(request.GET, cursor=page.next_cursor)}"
            if page is not None and page.next_cursor
            else None
        ),
        "export_query": query_string(request.GET, workflow=str(workflow.pk) if workflow else None),
        "live": page is not None and any(not run.is_terminal for run in page.runs),
        "rows": (
            history_rows(page.runs, show_workflow=workflow is None, can_edit=can_edit)
            if page is not None
            else ""
        ),
    }
    template = (
        "monitoring/history/_results.html" if request.htmx else "monitoring/history/list.html"
    )
    return render(request, template, context, status=status)


@workspace_required()
@require_GET
def run_list(request: AuthedRequest) -> HttpResponse:
    assert request.membership is not None
    return _history(request, request.membership)


@login_required
@require_GET
def workflow_runs(request: AuthedRequest, workflow_id: UUID) -> HttpResponse:
    workflow, membership = get_workflow_for_user(request.user, workflow_id)
    return _history(request, membership, workflow)


@login_required
@require_GET
def run_export(request: AuthedRequest, fmt: str) -> HttpResponseBase:
    """The filtered list as CSV or JSON, streamed in keyset chunks: never the whole result in
    memory, whatever its size. The server runs under ASGI, where only an async iterator
    streams; the WSGI path (tests, management tools) gets a sync one."""
    if request.membership is None:
        return redirect("home")
    form = HistoryQueryForm(request.GET)
    if not form.is_valid():
        problems = "; ".join(
            f"{name.rstrip('_')}: {' '.join(str(e) for e in errors)}"
            for name, errors in form.errors.items()
        )
        return HttpResponse(
            f"The export's filters are not valid ({problems}).",
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    query = history_query_from(form)
    workspace_id = request.membership.workspace_id
    content_type = "text/csv; charset=utf-8" if fmt == "csv" else "application/json"
    stream = (
        export_async(workspace_id, query, fmt)
        if isinstance(request, ASGIRequest)
        else export_sync(workspace_id, query, fmt)
    )
    response = StreamingHttpResponse(stream, content_type=content_type)
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="runs-{stamp}.{fmt}"'
    response["Cache-Control"] = "no-store"
    return response


def _back(request: AuthedRequest, fallback: str) -> str:
    target = request.POST.get("next") or ""
    # A path on this site only: redirect() would take a bare word for a view's name.
    if target.startswith("/") and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return fallback


@workspace_required(Role.EDITOR)
@require_POST
def run_bulk(request: AuthedRequest) -> HttpResponse:
    """Bulk cancel or delete: a first POST asks for confirmation, the second one acts."""
    assert request.membership is not None
    action = request.POST.get("action")
    run_ids = []
    for value in request.POST.getlist("run"):
        try:
            run_ids.append(UUID(value))
        except ValueError:
            continue
    back = _back(request, reverse("run_list"))
    if action not in ("cancel", "delete"):
        messages.error(request, "Choose whether to cancel or to delete the selected runs.")
        return HttpResponseRedirect(back)
    if not run_ids:
        messages.info(request, "Select at least one run first: tick the boxes in the list.")
        return HttpResponseRedirect(back)
    if request.POST.get("confirmed") != "yes":
        return render(
            request,
            "monitoring/history/bulk_confirm.html",
            {
                "action": action,
                "run_ids": run_ids[: history_services.BULK_MAX_RUNS],
                "too_many": len(run_ids) > history_services.BULK_MAX_RUNS,
                "next": back,
            },
        )
    workspace = request.membership.workspace
    if action == "cancel":
        outcome = history_services.runs_cancel_many(
            workspace=workspace, run_ids=run_ids, user=request.user
        )
        verb = "Cancelled"
    else:
        outcome = history_services.runs_delete_many(workspace=workspace, run_ids=run_ids)
        verb = "Deleted"
    return render(
        request,
        "monitoring/history/bulk_done.html",
        {"action": action, "verb": verb, "outcome": outcome, "next": back},
    )


@login_required
@require_POST
def run_pin(request: AuthedRequest, run_id: UUID) -> HttpResponse:
    run, _ = get_run_for_user(request.user, run_id, role=Role.EDITOR)
    pinned = request.POST.get("pinned") == "yes"
    history_services.run_pin(run=run, pinned=pinned)
    if request.htmx:
        return render(request, "monitoring/history/_pin.html", {"run": run, "can_edit": True})
    messages.success(
        request,
        "Pinned: this run is kept whatever the retention policy says."
        if pinned
        else "Unpinned: the retention policy applies to this run again.",
    )
    return HttpResponseRedirect(_back(request, reverse("run_detail", args=[run.pk])))


@login_required
@require_POST
def workspace_retention(request: AuthedRequest, workspace_id: UUID) -> HttpResponse:
    membership = get_membership_for_user(request.user, workspace_id, role=Role.OWNER)
    form = RetentionForm(request.POST)
    if form.is_valid():
        history_services.retention_policy_set(
            workspace=membership.workspace, keep_days=form.keep_days(), user=request.user
        )
        days = form.keep_days()
        messages.success(
            request,
            f"Runs older than {days} days will be deleted, pinned runs excepted."
            if days
            else "Every run is kept.",
        )
    else:
        messages.error(request, " ".join(str(e) for errors in form.errors.values() for e in errors))
    return redirect("workspace_settings", workspace_id=membership.workspace_id)
