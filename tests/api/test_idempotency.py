"""`Idempotency-Key`: each case of a2a_site/api/idempotency.py's list, with its test."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from a2a_site.api.idempotency import idempotency_records_purge
from a2a_site.api.models import IdempotencyRecord
from tests.a2a_site.test_url_permissions import _published
from tests.api.conftest import make_token
from tests.conftest import Personas
from workflows.models import Run


def _launch(api: Any, workflow: Any, key: str, inputs: dict[str, Any] | None = None) -> Any:
    return api.call(
        "post",
        f"/api/v1/workflows/{workflow.pk}/runs",
        {"inputs": inputs or {}},
        headers={"Idempotency-Key": key},
    )


def test_a_retry_gets_the_first_answer_and_starts_nothing(personas: Personas, api_as: Any) -> None:
    workflow = _published(personas)
    api = api_as(make_token(personas.editor, "run"))
    first = _launch(api, workflow, "launch-1")
    again = _launch(api, workflow, "launch-1")
    assert first.status == again.status == 201
    assert again.body == first.body
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert Run.objects.count() == 1


def test_the_same_key_with_another_body_is_refused(personas: Personas, api_as: Any) -> None:
    workflow = _published(personas)
    api = api_as(make_token(personas.editor, "run"))
    _launch(api, workflow, "k")
    other = _launch(api, workflow, "k", {"topic": "else"})
    assert other.status == 422
    assert other.problem["type"] == "urn:a2a-studio:problem:idempotency-mismatch"
    # …and on another path (another workflow), too.
    elsewhere = _launch(api, _published_named(personas, "Other"), "k")
    assert elsewhere.status == 422
    assert Run.objects.count() == 1


def _published_named(personas: Personas, name: str) -> Any:
    from workflows.services.workflows import EMPTY_GRAPH, workflow_create, workflow_publish

    workflow = workflow_create(
        workspace=personas.workspace, user=personas.owner, name=name, graph=EMPTY_GRAPH
    )
    workflow_publish(workflow=workflow, user=personas.owner)
    return workflow


def test_a_refusal_is_not_remembered(personas: Personas, api_as: Any) -> None:
    from workflows.services.workflows import workflow_create

    draft_only = workflow_create(workspace=personas.workspace, user=personas.owner, name="Draft")
    api = api_as(make_token(personas.editor, "run"))
    refused = _launch(api, draft_only, "k")
    assert refused.status == 422  # nothing published yet
    assert "Publish the workflow" in refused.problem["detail"]
    assert not IdempotencyRecord.objects.exists()
    from workflows.services.workflows import workflow_publish

    workflow_publish(workflow=draft_only, user=personas.owner)
    assert _launch(api, draft_only, "k").status == 201


def test_keys_belong_to_their_caller(personas: Personas, api_as: Any) -> None:
    workflow = _published(personas)
    one, two = (api_as(make_token(personas.editor, "run")) for _ in range(2))
    assert (
        _launch(one, workflow, "shared").body["id"] != _launch(two, workflow, "shared").body["id"]
    )
    assert Run.objects.count() == 2


def test_a_key_is_forgotten_after_a_day(personas: Personas, api_as: Any) -> None:
    workflow = _published(personas)
    api = api_as(make_token(personas.editor, "run"))
    first = _launch(api, workflow, "daily")
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=25))
    later = _launch(api, workflow, "daily")
    assert later.status == 201 and later.body["id"] != first.body["id"]
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=25))
    assert idempotency_records_purge() == 1


def test_expired_keys_are_swept_by_later_requests(
    personas: Personas, api_as: Any, monkeypatch: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from a2a_site.api import idempotency

    workflow = _published(personas)
    api = api_as(make_token(personas.editor, "run"))
    for number in range(3):
        _launch(api, workflow, f"old-{number}")
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=25))
    monkeypatch.setattr(idempotency, "PURGE_CHANCE", 1.0)
    monkeypatch.setattr(idempotency, "PURGE_BATCH", 2)
    with django_capture_on_commit_callbacks() as callbacks:
        _launch(api, workflow, "new")
    # The launch's dispatch is left out: no executor runs here.
    (sweep,) = [callback for callback in callbacks if "idempotent" in callback.__qualname__]
    sweep()
    assert IdempotencyRecord.objects.count() == 2  # two of three swept, the new one kept
    assert IdempotencyRecord.objects.filter(key="new").exists()


def test_a_key_must_be_printable_and_short(personas: Personas, api_as: Any) -> None:
    workflow = _published(personas)
    api = api_as(make_token(personas.editor, "run"))
    answer = _launch(api, workflow, "x" * 256)
    assert answer.status == 400
    assert answer.problem["errors"][0]["field"] == "Idempotency-Key"


def test_cancel_and_publish_take_a_key_too(personas: Personas, api_as: Any) -> None:
    workflow = _published(personas)
    api = api_as(make_token(personas.owner, "write"))
    publish = ("post", f"/api/v1/workflows/{workflow.pk}/publish", {"note": "v2"})
    first = api.call(*publish, headers={"Idempotency-Key": "p"})
    again = api.call(*publish, headers={"Idempotency-Key": "p"})
    assert first.status == again.status == 201
    assert first.body["number"] == again.body["number"] == 2
    assert workflow.versions.count() == 2


@pytest.mark.services
def test_twenty_simultaneous_launches_with_one_key_start_one_run(
    transactional_db: None, personas: Personas
) -> None:
    """Real concurrency on PostgreSQL: twenty threads, each its own connection, released at once."""
    assert connection.vendor == "postgresql"
    workflow = _published(personas)
    secret = make_token(personas.editor, "run")
    start = threading.Barrier(20)
    answers: list[Any] = []
    lock = threading.Lock()

    def launch() -> None:
        from django.db import connection as own

        try:
            client = Client(headers={"Authorization": f"Bearer {secret}"})
            start.wait(timeout=30)
            response = client.post(
                f"/api/v1/workflows/{workflow.pk}/runs",
                {"inputs": {}},
                content_type="application/json",
                headers={"Idempotency-Key": "one-key"},
            )
            with lock:
                answers.append((response.status_code, response.json()))
        finally:
            own.close()

    threads = [threading.Thread(target=launch) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(answers) == 20
    assert {status for status, _ in answers} == {201}
    assert len({body["id"] for _, body in answers}) == 1
    assert Run.objects.filter(workflow=workflow).count() == 1
    assert IdempotencyRecord.objects.count() == 1
