"""The fork page: who may open it, what it shows, and what a submission creates."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.urls import reverse

from tests.conftest import Personas
from tests.workflows.test_fork import DONE, FAILED, run_with_steps
from workflows.models import Run, Step, Workflow

pytestmark = pytest.mark.django_db


def _forkable(pipeline: Workflow) -> Run:
    run = run_with_steps(
        pipeline, [("research", DONE, 0, 1), ("analysis", DONE, 2, 3), ("writing", FAILED, 4, 5)]
    )
    Step.objects.filter(run=run, key="research").update(
        variables={"findings": "Kelp grows fast.\nVery fast."}
    )
    return run


def _url(run: Run, step: str = "analysis") -> str:
    return f"{reverse('run_fork', args=[run.pk])}?step={step}"


def test_each_persona_gets_what_its_role_allows(personas: Personas, pipeline, client_for) -> None:
    run = _forkable(pipeline)
    url = _url(run)
    assert client_for(None).get(url).status_code == 302
    assert client_for(personas.outsider).get(url).status_code == 404
    assert client_for(personas.viewer).get(url).status_code == 403
    assert client_for(personas.viewer).post(url, {}).status_code == 403
    assert client_for(personas.owner).get(url).status_code == 200
    page = client_for(personas.editor).get(url)
    assert page.status_code == 200
    assert not Run.objects.filter(forked_from=run).exists()


def test_the_form_shows_the_step_the_reused_steps_and_the_values_there(
    personas: Personas, pipeline, client_for
) -> None:
    page = client_for(personas.editor).get(_url(_forkable(pipeline))).content.decode()
    assert "Run again from “Analysis”" in page
    assert "<code>research</code>" in page, "the reused step is listed"
    assert "Kelp grows fast.\nVery fast." in page, "findings as they were at the step"
    assert 'name="input-topic"' in page and "kelp" in page


def test_a_submission_creates_the_fork_with_only_what_was_edited(
    personas: Personas, pipeline, client_for, settings
) -> None:
    settings.EXECUTION_MODE = "celery"  # queued only: the engine tests execute forks
    run = _forkable(pipeline)
    response = client_for(personas.editor).post(
        _url(run),
        {
            "fork-version": "same",
            "input-topic": "kelp",
            # Unchanged, as a browser sends a text area back (CRLF line ends).
            "var-findings": "Kelp grows fast.\r\nVery fast.",
            "var-analysis": "Slow down.\r\nReally.",
        },
    )
    fork = Run.objects.get(forked_from=run)
    assert response.status_code == 302
    assert response["Location"] == reverse("run_detail", args=[fork.pk])
    assert fork.fork_step_key == "analysis" and fork.created_by == personas.editor
    assert fork.fork_edits == [
        {
            "step": "analysis",
            "variables": {"analysis": "Slow down.\nReally."},
            "before": ["research"],
        }
    ]
    assert list(Step.objects.filter(run=fork).values_list("key", "reused")) == [("research", True)]
    assert fork.variables["findings"] == "Kelp grows fast.\nVery fast."

    client = client_for(personas.editor)
    child_page = client.get(reverse("run_detail", args=[fork.pk])).content.decode()
    assert "Forked from" in child_page and str(run.pk)[:8] in child_page
    compare = f"{reverse('run_compare')}?a={run.pk}&amp;b={fork.pk}"
    assert compare in child_page, "the fork offers to compare itself with its parent"
    parent_page = client.get(reverse("run_detail", args=[run.pk])).content.decode()
    assert "Forks:" in parent_page and str(fork.pk)[:8] in parent_page
    assert parent_page.count('data-testid="fork-link"') == 3
    # Retention may delete the parent: the fork stands on its own and says so.
    run.delete()
    orphan = client.get(reverse("run_detail", args=[fork.pk])).content.decode()
    assert "Forked from a run since deleted, at step" in orphan
    assert Step.objects.filter(run=fork, key="research").exists()


def test_bad_submissions_are_explained_and_create_nothing(
    personas: Personas, pipeline, client_for
) -> None:
    run = _forkable(pipeline)
    client = client_for(personas.editor)
    missing = client.post(_url(run), {"fork-version": "same", "input-topic": ""})
    assert missing.status_code == 400 and "This field is required" in missing.content.decode()
    wrong = client.post(_url(run), {"fork-version": "someday", "input-topic": "kelp"})
    assert wrong.status_code == 400 and "Select a valid choice" in wrong.content.decode()
    no_step = client.get(reverse("run_fork", args=[run.pk]))
    assert no_step.status_code == 400 and "Say which step" in no_step.content.decode()
    unknown = client.get(_url(run, "nowhere"))
    assert unknown.status_code == 400 and "no step" in unknown.content.decode()
    assert not Run.objects.filter(forked_from=run).exists()


def test_viewers_see_no_fork_links(personas: Personas, pipeline, client_for) -> None:
    run = _forkable(pipeline)
    page = client_for(personas.viewer).get(reverse("run_detail", args=[run.pk])).content.decode()
    assert "Run again from here" not in page
    assert 'data-step-key="analysis"' in page


def _republish(workflow: Workflow, user: Any, node_id: str, template: str) -> Any:
    from workflows.services.workflows import workflow_publish

    draft = json.loads(json.dumps(workflow.versions.order_by("-number").first().graph))
    next(node for node in draft["nodes"] if node["id"] == node_id)["config"]["input_template"] = (
        template
    )
    workflow.draft = draft
    workflow.save(update_fields=["draft"])
    return workflow_publish(workflow=workflow, user=user)


def test_the_latest_version_is_offered_only_where_the_run_can_continue_on_it(
    personas: Personas, pipeline, client_for, settings
) -> None:
    settings.EXECUTION_MODE = "celery"
    run = _forkable(pipeline)
    latest = _republish(pipeline, personas.owner, "writing", "Write it short: {{ analysis }}")
    client = client_for(personas.editor)
    page = client.get(_url(run)).content.decode()
    assert f"Version {latest.number}, the latest published" in page
    response = client.post(
        _url(run), {"fork-version": "latest", "input-topic": "kelp", "var-topic": "kelp"}
    )
    assert response.status_code == 302
    assert Run.objects.get(forked_from=run).version == latest

    changed = _republish(pipeline, personas.owner, "research", "Research: {{ topic }}")
    page = client.get(_url(run)).content.decode()
    assert f"Version {changed.number}, the latest published" not in page
    assert "changed node “research”" in page, "the page says why it is not offered"
    refused = client.post(_url(run), {"fork-version": "latest", "input-topic": "kelp"})
    assert refused.status_code == 400
    assert Run.objects.filter(forked_from=run).count() == 1


def test_a_spent_budget_refuses_a_fork_with_its_reason(
    personas: Personas, pipeline, client_for
) -> None:
    from decimal import Decimal

    from django.utils import timezone

    from agents.budgets.models import Budget, BudgetPeriod
    from agents.budgets.periods import period_bounds

    run = _forkable(pipeline)
    budget = Budget.objects.create(
        workspace=personas.workspace, name="Spent", period="day", hard_limit=Decimal("2")
    )
    start, end = period_bounds("day", "UTC", timezone.now())
    BudgetPeriod.objects.create(budget=budget, starts_at=start, ends_at=end, spent=Decimal("2.5"))
    response = client_for(personas.editor).post(
        _url(run), {"fork-version": "same", "input-topic": "kelp"}
    )
    assert response.status_code == 400
    assert "Budget “Spent” reached its hard limit" in response.content.decode()
    assert not Run.objects.filter(forked_from=run).exists()


def test_only_what_was_changed_counts_as_an_edit_whatever_the_type() -> None:
    from workflows.forms import fork_variables_edited, fork_variables_form_class
    from workflows.graph.schema import Variable

    variables = [
        Variable(name="notes", type="array", reducer="append"),
        Variable(name="count", type="integer"),
        Variable(name="text", type="string"),
        Variable(name="unset", type="object"),
    ]
    values = {"notes": ["a", "b"], "count": 3, "text": "one\ntwo", "unset": None}
    form_class = fork_variables_form_class(variables, values)
    same = form_class(
        {"var-notes": '["a", "b"]', "var-count": "3", "var-text": "one\r\ntwo", "var-unset": ""},
        prefix="var",
    )
    assert same.is_valid(), same.errors
    assert fork_variables_edited(same, values) == {}
    changed = form_class(
        {"var-notes": '["a"]', "var-count": "4", "var-text": "one", "var-unset": '{"k": 1}'},
        prefix="var",
    )
    assert changed.is_valid(), changed.errors
    assert fork_variables_edited(changed, values) == {
        "notes": ["a"],
        "count": 4,
        "text": "one",
        "unset": {"k": 1},
    }
    broken = form_class({"var-notes": "[not json", "var-count": "2.5"}, prefix="var")
    assert not broken.is_valid() and "notes" in broken.errors
    assert broken.errors["count"] == ["This variable holds a whole number."]
