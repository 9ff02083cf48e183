"""A run's calls land in the hourly rollups under its workflow, agents and launching user."""

from __future__ import annotations

from typing import Any

import pytest
from django.db.models import Sum

from agents.models import LedgerEntry, LedgerRollup
from agents.rollups import rollups_check
from tests.conftest import Personas
from tests.workflows.conftest import finished
from workflows.services.runs import run_start

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_runs_calls_are_rolled_up_by_workflow_agent_and_user(
    personas: Personas, pipeline: Any, executor: Any
) -> None:
    run = finished(run_start(workflow=pipeline, user=personas.owner, inputs={"topic": "tea"}))

    assert run.status == "succeeded", run.reason
    rows = LedgerRollup.objects.filter(workspace=personas.workspace)
    assert {row.workflow_id for row in rows} == {str(pipeline.pk)}
    assert {row.user_id for row in rows} == {str(personas.owner.pk)}
    assert len({row.agent_id for row in rows}) == 3
    calls = LedgerEntry.objects.filter(run_id=run.pk).count()
    assert rows.aggregate(calls=Sum("calls"))["calls"] == calls
    assert rows.aggregate(n=Sum("first_token_count"))["n"] == calls  # the demo model streams
    assert rollups_check() == []
