"""Launching runs from the pages and the JSON endpoint, and acting on them."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from tests.conftest import Personas
from tests.workflows.conftest import finished
from workflows.models import Run, RunStatus, Workflow

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_run_form_explains_a_missing_input(personas: Personas, pipeline, client_for) -> None:
    response = client_for(personas.editor).post(reverse("workflow_run", args=[pipeline.pk]), {})
    assert response.status_code == 400
    assert "This field is required" in response.content.decode()
    assert not Run.objects.exists()


def test_the_run_form_starts_a_run_and_shows_it(
    personas: Personas, pipeline, client_for, executor
) -> None:
    client = client_for(personas.editor)
    response = client.post(reverse("workflow_run", args=[pipeline.pk]), {"topic": "bees"})
    run = Run.objects.get()
    assert response["Location"] == reverse("run_detail", args=[run.pk])
    assert finished(run).status == RunStatus.SUCCEEDED
    page = client.get(response["Location"]).content.decode()
    assert "succeeded" in page and "Run again with the same inputs" in page
    # Once it stopped, the history finds it by what was said and by the models it called.
    done = Run.objects.get()
    assert done.launched_via == "web"
    message = done.events.filter(kind="message").last()
    assert message is not None and message.data["text"][:40] in done.search_text
    assert done.facets["models"] and done.facets["agents"]


def test_the_json_endpoint_starts_a_run(personas: Personas, pipeline, client_for, settings) -> None:
    settings.EXECUTION_MODE = "celery"  # queued only: nothing executes in this test
    client = client_for(personas.editor)
    url = reverse("workflow_run_api", args=[pipeline.pk])
    bad = client.post(url, json.dumps({"inputs": {}}), content_type="application/json")
    assert bad.status_code == 400 and "topic" in bad.json()["fields"]
    good = client.post(
        url, json.dumps({"inputs": {"topic": "moths"}}), content_type="application/json"
    )
    assert good.status_code == 201
    body = good.json()
    run = Run.objects.get(pk=body["run_id"])
    assert run.inputs == {"topic": "moths"} and body["version"] == 1
    assert run.launched_via == "api" and run.created_by == personas.editor
    assert "moths" in run.search_text  # found by its inputs in the history from its launch
    assert body["url"].endswith(reverse("run_detail", args=[run.pk]))


def test_run_again_and_retry(
    personas: Personas, pipeline, client_for, executor, llm_server
) -> None:
    client = client_for(personas.editor)
    llm_server.set_script({"rules": [{"fault": "500x3"}]})
    client.post(reverse("workflow_run", args=[pipeline.pk]), {"topic": "ferns"})
    failed = finished(Run.objects.get())
    assert failed.status == RunStatus.FAILED
    client.post(reverse("run_retry", args=[failed.pk]))
    retried = finished(Run.objects.get(pk=failed.pk))
    assert retried.status == RunStatus.SUCCEEDED, retried.reason
    client.post(reverse("run_rerun", args=[failed.pk]))
    again = finished(Run.objects.exclude(pk=failed.pk).get())
    assert again.status == RunStatus.SUCCEEDED
    assert again.inputs == failed.inputs and again.version_id == failed.version_id


def test_starting_from_a_template_needs_a_provider(personas: Personas, client_for) -> None:
    response = client_for(personas.editor).post(
        reverse("workflow_from_template"), {"template": "research_pipeline"}, follow=True
    )
    assert "Add a model provider first" in response.content.decode()
    assert not Workflow.objects.exists()
