"""Deleting runs from the history, by hand or by retention, deletes what their calls sent and
received (the trace's payloads), sub-runs' included; their ledger rows stay."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.utils import timezone

from agents.models import CallPayload
from tests.conftest import Personas
from tests.monitoring.factories import make_run, make_workflow
from workflows.models import RetentionPolicy, Run
from workflows.services.history import runs_delete_many, runs_retention_enforce


def _payload(run: Run) -> None:
    CallPayload.objects.create(
        call_id=uuid.uuid4(),
        workspace=run.workspace,
        run_id=run.pk,
        request={"messages": [{"role": "user", "content": "a secret prompt"}]},
        created_at=timezone.now(),
    )


def test_deleted_runs_take_their_payloads_and_their_sub_runs_payloads(
    personas: Personas,
) -> None:
    flow = make_workflow(personas.workspace, "Support")
    doomed, kept = make_run(flow), make_run(flow)
    child = Run.objects.create(
        workspace=personas.workspace,
        workflow=flow,
        version=flow.versions.get(),
        status="succeeded",
        parent=doomed,
        parent_step_key="call",
        depth=1,
    )
    for run in (doomed, kept, child):
        _payload(run)
    outcome = runs_delete_many(workspace=personas.workspace, run_ids=[doomed.pk])
    assert outcome.done == [str(doomed.pk)[:8]]
    assert list(CallPayload.objects.values_list("run_id", flat=True)) == [kept.pk]


def test_retention_takes_the_payloads_of_the_runs_it_deletes(personas: Personas) -> None:
    flow = make_workflow(personas.workspace, "Support")
    old, recent = make_run(flow, ago=timedelta(days=40)), make_run(flow)
    _payload(old)
    _payload(recent)
    RetentionPolicy.objects.create(workspace=personas.workspace, keep_days=30)
    assert runs_retention_enforce() == 1
    assert list(CallPayload.objects.values_list("run_id", flat=True)) == [recent.pk]
