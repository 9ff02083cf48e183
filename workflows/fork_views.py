"""Forking a run from a finished step: the form (the step, inputs, variables there, version) and
its submission. The rules of what can be forked live in `workflows/services/fork.py`."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from a2a_site.accounts.models import Role
from a2a_site.forms import form_add_errors
from a2a_site.http import AuthedRequest
from a2a_site.refusals import refusal
from workflows.forms import (
    ForkVersionForm,
    fork_variables_edited,
    fork_variables_form_class,
    run_form_class,
    run_inputs,
)
from workflows.graph import GraphError, graph_load
from workflows.models import WorkflowVersion
from workflows.selectors import get_run_for_user
from workflows.services.fork import ForkPoint, fork_point, fork_version_check, run_fork
from workflows.services.runs import workflow_latest_version

NO_STEP = (
    "Say which step to run again from: open the run and choose “Run again from here” on one of "
    "its finished steps."
)


def _version_choices(
    point: ForkPoint, latest: WorkflowVersion | None
) -> tuple[list[tuple[str, str]], str]:
    """The versions a fork may run on, and why the latest one may not (when it may not)."""
    own = point.run.version
    choices = [("same", f"Version {own.number}, the one this run used")]
    if latest is None or latest.pk == own.pk:
        return [("same", f"Version {own.number}, the one this run used and the latest")], ""
    try:
        fork_version_check(point, latest)
    except ValidationError as error:
        return choices, " ".join(error.messages)
    choices.append(("latest", f"Version {latest.number}, the latest published"))
    return choices, ""


class ForkForms:
    """The three parts of the fork form: version, inputs, and the variables at the step."""

    def __init__(self, point: ForkPoint, latest: WorkflowVersion | None, data: Any = None):
        self.point = point
        self.latest = latest
        choices, self.latest_refused = _version_choices(point, latest)
        self.version = ForkVersionForm(data, choices=choices, prefix="fork")
        graph = graph_load(point.run.version.graph)
        self.inputs = run_form_class(graph.inputs)(data, prefix="input", initial=point.run.inputs)
        shown = {name: value for name, value in point.variables.items() if value is not None}
        variables_form = fork_variables_form_class(graph.variables, point.variables)
        self.variables = variables_form(data, prefix="var", initial=shown, label_suffix="")

    def is_valid(self) -> bool:
        return all([self.version.is_valid(), self.inputs.is_valid(), self.variables.is_valid()])

    def chosen_version(self) -> WorkflowVersion:
        if self.version.cleaned_data["version"] == "latest" and self.latest is not None:
            return self.latest
        return self.point.run.version

    def edited(self) -> dict[str, Any]:
        return fork_variables_edited(self.variables, self.point.variables)


def _page(request: AuthedRequest, forms: ForkForms, *, status: int = 200) -> HttpResponse:
    point = forms.point
    return render(
        request,
        "workflows/run_fork.html",
        {
            "run": point.run,
            "point": point,
            "forms": forms,
            "reused": point.reused,
        },
        status=status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def run_fork_view(request: AuthedRequest, run_id: UUID) -> HttpResponse:
    run, _ = get_run_for_user(request.user, run_id, role=Role.EDITOR)
    step_key = request.GET.get("step", "").strip()
    if not step_key:
        return refusal(request, NO_STEP)
    try:
        point = fork_point(run=run, step_key=step_key)
    except ValidationError as error:
        return refusal(request, " ".join(error.messages))
    except GraphError as error:
        return refusal(request, f"This run's graph cannot be read: {error}")
    latest = workflow_latest_version(run.workflow)
    if request.method == "GET":
        return _page(request, ForkForms(point, latest))
    forms = ForkForms(point, latest, request.POST)
    if forms.is_valid():
        try:
            fork = run_fork(
                run=run,
                step_key=point.step.key,
                user=request.user,
                version=forms.chosen_version(),
                inputs=run_inputs(forms.inputs),
                variables=forms.edited(),
            )
        except ValidationError as error:
            target = forms.inputs if hasattr(error, "error_dict") else forms.version
            form_add_errors(target, error)
        else:
            reused = len(point.reused)
            messages.success(
                request,
                f"Forked from step “{point.step.key}”: {reused} earlier "
                f"step{'s' if reused != 1 else ''} reused, the rest runs now.",
            )
            return redirect("run_detail", run_id=fork.pk)
    return _page(request, forms, status=400)
