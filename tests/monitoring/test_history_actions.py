"""What editors do from the history: export, bulk cancel and delete, pins, and retention."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from agents.models import LedgerEntry
from monitoring.history import export as export_module
from tests.conftest import Personas
from tests.monitoring.factories import make_run, make_workflow
from workflows.models import RetentionPolicy, Run, RunEvent, RunStatus, Step
from workflows.services.history import runs_retention_enforce

SECRET = "sk-live-4f9c2b7e1d8a6035"


@pytest.fixture
def flow(personas: Personas):
    return make_workflow(personas.workspace, "Support")


def _body(response) -> str:
    assert response.streaming, "an export is streamed, not built whole"
    return b"".join(response.streaming_content).decode()


def test_csv_export_streams_the_filtered_runs_without_secrets(
    personas: Personas, client_for, flow, monkeypatch
) -> None:
    monkeypatch.setattr(export_module, "EXPORT_CHUNK", 2)  # several chunks, one cursor each
    failed = [make_run(flow, text=f"=HYPERLINK(x) {SECRET} {i}", status="failed") for i in range(5)]
    make_run(flow, text="fine")
    response = client_for(personas.viewer).get(reverse("run_export_csv") + "?status=failed")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(_body(response))))
    assert sorted(row["id"] for row in rows) == sorted(str(run.pk) for run in failed)
    assert all(row["status"] == "failed" for row in rows)
    text = json.dumps(rows)
    assert SECRET not in text
    # A cell a spreadsheet would run as a formula is quoted.
    assert all(json.loads(row["inputs"])["topic"].startswith("=HYPERLINK") for row in rows)
    assert all(row["inputs"].startswith("{") for row in rows)


def test_json_export_says_price_unknown_instead_of_zero(
    personas: Personas, client_for, flow
) -> None:
    unknown = make_run(flow, text="priced by nobody", price_source="unknown", cost="0")
    priced = make_run(flow, text="priced", cost="0.25")
    body = _body(client_for(personas.viewer).get(reverse("run_export_json")))
    records = {record["id"]: record for record in json.loads(body)}
    assert records[str(unknown.pk)]["cost_usd"] is None
    assert records[str(unknown.pk)]["price_unknown"] is True
    assert records[str(priced.pk)]["cost_usd"] == "0.25000000"


def test_an_export_with_a_bad_filter_says_so(personas: Personas, client_for) -> None:
    response = client_for(personas.viewer).get(reverse("run_export_csv") + "?min_cost=lots")
    assert response.status_code == 400
    assert "min_cost" in response.content.decode()


def test_bulk_cancel_asks_first_then_reports_each_run(personas: Personas, client_for, flow) -> None:
    waiting = make_run(flow, text="waiting", status="waiting")
    done = make_run(flow, text="done")
    client = client_for(personas.editor)
    data = {"action": "cancel", "run": [str(waiting.pk), str(done.pk)], "next": "/runs/"}
    asked = client.post(reverse("run_bulk"), data)
    assert asked.status_code == 200 and b'data-testid="bulk-confirm"' in asked.content
    assert Run.objects.get(pk=waiting.pk).status == RunStatus.WAITING  # nothing yet

    result = client.post(reverse("run_bulk"), {**data, "confirmed": "yes"})
    page = result.content.decode()
    assert Run.objects.get(pk=waiting.pk).status == RunStatus.CANCELLED
    assert Run.objects.get(pk=done.pk).status == RunStatus.SUCCEEDED
    assert f"{str(done.pk)[:8]}</code> — already succeeded" in page


def test_bulk_delete_keeps_live_and_pinned_runs_and_the_ledger(
    personas: Personas, client_for, flow
) -> None:
    old = make_run(flow, text="old")
    pinned = make_run(flow, text="keep me", pinned=True)
    live = make_run(flow, text="live", status="waiting")
    client = client_for(personas.editor)
    ids = [str(old.pk), str(pinned.pk), str(live.pk), "not-a-uuid"]
    page = client.post(
        reverse("run_bulk"), {"action": "delete", "run": ids, "confirmed": "yes"}
    ).content.decode()
    assert not Run.objects.filter(pk=old.pk).exists()
    assert not Step.objects.filter(run_id=old.pk).exists()
    assert not RunEvent.objects.filter(run_id=old.pk).exists()
    assert LedgerEntry.objects.filter(run_id=old.pk).exists()  # what it spent stays counted
    assert set(Run.objects.values_list("pk", flat=True)) == {pinned.pk, live.pk}
    assert "pinned: unpin it first" in page and "still in progress: cancel it first" in page


def test_viewers_and_outsiders_cannot_bulk_delete(personas: Personas, client_for, flow) -> None:
    run = make_run(flow)
    data = {"action": "delete", "run": [str(run.pk)], "confirmed": "yes"}
    assert client_for(personas.viewer).post(reverse("run_bulk"), data).status_code == 403
    client_for(personas.outsider).post(reverse("run_bulk"), data)  # their own workspace
    assert Run.objects.filter(pk=run.pk).exists()


def test_pin_and_unpin_from_the_run_page(personas: Personas, client_for, flow) -> None:
    run = make_run(flow)
    client = client_for(personas.editor)
    page = client.get(reverse("run_detail", args=[run.pk])).content.decode()
    assert 'data-testid="run-pin"' in page
    client.post(reverse("run_pin", args=[run.pk]), {"pinned": "yes"})
    assert Run.objects.get(pk=run.pk).pinned
    swapped = client.post(
        reverse("run_pin", args=[run.pk]), {"pinned": "no"}, headers={"HX-Request": "true"}
    )
    assert b'data-testid="run-pin"' in swapped.content
    assert not Run.objects.get(pk=run.pk).pinned
    viewer_page = client_for(personas.viewer).get(reverse("run_detail", args=[run.pk]))
    assert b'data-testid="run-pin"' not in viewer_page.content


def test_owners_set_retention_on_the_workspace_page(personas: Personas, client_for) -> None:
    client = client_for(personas.owner)
    url = reverse("workspace_retention", args=[personas.workspace.pk])
    client.post(url, {"mode": "days", "days": "30"})
    assert RetentionPolicy.objects.get(workspace=personas.workspace).keep_days == 30
    settings_page = client.get(reverse("workspace_settings", args=[personas.workspace.pk]))
    assert b"<strong>30 days</strong>" in settings_page.content

    client.post(url, {"mode": "days", "days": "0"})
    assert RetentionPolicy.objects.get(workspace=personas.workspace).keep_days == 30
    client.post(url, {"mode": "forever"})
    assert RetentionPolicy.objects.get(workspace=personas.workspace).keep_days is None
    response = client_for(personas.editor).post(url, {"mode": "days", "days": "1"})
    assert response.status_code == 403


def test_retention_deletes_old_unpinned_finished_runs_in_batches(personas: Personas, flow) -> None:
    RetentionPolicy.objects.create(workspace=personas.workspace, keep_days=30)
    old = [make_run(flow, text=f"old {i}", ago=timedelta(days=40 + i)) for i in range(5)]
    child = make_run(flow, text="old child", ago=timedelta(days=45), parent=old[0])
    pinned = make_run(flow, text="pinned", ago=timedelta(days=90), pinned=True)
    waiting = make_run(flow, text="still waiting", ago=timedelta(days=60), status="waiting")
    recent = make_run(flow, text="recent", ago=timedelta(days=2))
    # Another workspace keeps everything: its old run stays.
    theirs = make_run(make_workflow(personas.other_workspace, "Theirs"), ago=timedelta(days=400))

    # Two batches of two in this round: the periodic task comes back for the rest.
    assert runs_retention_enforce(batch_size=2, max_batches=2) == 4
    assert runs_retention_enforce(batch_size=2, max_batches=2) == 1
    assert runs_retention_enforce(batch_size=2, max_batches=2) == 0
    kept = {pinned.pk, waiting.pk, recent.pk, theirs.pk}
    assert set(Run.objects.values_list("pk", flat=True)) == kept
    assert not Run.objects.filter(pk=child.pk).exists()
    assert LedgerEntry.objects.filter(run_id=old[0].pk).exists()


def test_retention_is_scheduled_in_both_modes() -> None:
    schedule = settings.CELERY_BEAT_SCHEDULE["run-retention"]
    assert schedule["task"] == "workflows.tasks.runs_retention_enforce"
    from workflows.housekeeping import housekeeping_duties

    (duty,) = [duty for duty in housekeeping_duties() if duty.name == "run-retention"]
    assert duty.run is runs_retention_enforce
    assert duty.every_seconds() == settings.RUN_RETENTION_SECONDS


def test_a_workspace_without_a_policy_keeps_everything(personas: Personas, flow) -> None:
    ancient = make_run(flow, ago=timedelta(days=3000))
    assert runs_retention_enforce(now=timezone.now()) == 0
    assert Run.objects.filter(pk=ancient.pk).exists()
