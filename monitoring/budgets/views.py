"""Budget pages: look up, authorize, call a service, render."""

from __future__ import annotations

from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from a2a_site.accounts.decorators import workspace_required
from a2a_site.accounts.models import Role
from a2a_site.forms import form_add_errors
from a2a_site.http import AuthedRequest
from agents.budgets import services
from agents.budgets.enforcement import money
from agents.budgets.selectors import budgets_of, get_budget_for_user
from monitoring.budgets.forms import TARGET_FIELDS, BudgetForm
from monitoring.budgets.selectors import budget_history, budget_rows


@workspace_required()
@require_GET
def budget_list(request: AuthedRequest) -> HttpResponse:
    assert request.membership is not None
    rows = budget_rows(list(budgets_of(request.membership.workspace_id)))
    context = {"rows": rows, "can_edit": request.membership.allows(Role.EDITOR)}
    template = "monitoring/_budget_rows.html" if request.htmx else "monitoring/budget_list.html"
    return render(request, template, context)


def _form_page(request: AuthedRequest, form: BudgetForm, budget: object = None) -> HttpResponse:
    return render(
        request,
        "monitoring/budget_form.html",
        {"form": form, "budget": budget, "target_fields": TARGET_FIELDS},
    )


@workspace_required(Role.EDITOR)
@require_http_methods(["GET", "POST"])
def budget_create(request: AuthedRequest) -> HttpResponse:
    assert request.membership is not None
    workspace = request.membership.workspace
    form = BudgetForm(request.POST or None, workspace_id=workspace.pk)
    if request.method == "POST" and form.is_valid():
        try:
            budget = services.budget_create(
                workspace=workspace, user=request.user, data=form.to_input()
            )
        except ValidationError as error:
            form_add_errors(form, error)
        else:
            messages.success(request, f"Budget “{budget.name}” created.")
            return redirect("budget_detail", budget_id=budget.pk)
    return _form_page(request, form)


@login_required
@require_GET
def budget_detail(request: AuthedRequest, budget_id: UUID) -> HttpResponse:
    budget, membership = get_budget_for_user(request.user, budget_id)
    (row,) = budget_rows([budget])
    return render(
        request,
        "monitoring/budget_detail.html",
        {
            "row": row,
            "budget": budget,
            "history": budget_history(budget),
            "can_edit": membership.allows(Role.EDITOR),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def budget_edit(request: AuthedRequest, budget_id: UUID) -> HttpResponse:
    budget, _ = get_budget_for_user(request.user, budget_id, role=Role.EDITOR)
    form = BudgetForm(
        request.POST or None,
        workspace_id=budget.workspace_id,
        initial=BudgetForm.initial_for(budget),
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.budget_update(budget=budget, data=form.to_input())
        except ValidationError as error:
            budget.refresh_from_db()
            form_add_errors(form, error)
        else:
            limit = money(budget.hard_limit) if budget.hard_limit is not None else "none"
            messages.success(request, f"Budget “{budget.name}” saved (hard limit {limit}).")
            return redirect("budget_detail", budget_id=budget.pk)
    return _form_page(request, form, budget)


@login_required
@require_POST
def budget_delete(request: AuthedRequest, budget_id: UUID) -> HttpResponse:
    budget, _ = get_budget_for_user(request.user, budget_id, role=Role.EDITOR)
    name = budget.name
    services.budget_delete(budget=budget)
    messages.success(request, f"Budget “{name}” deleted.")
    return redirect("budget_list")
