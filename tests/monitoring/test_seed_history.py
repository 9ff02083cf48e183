from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count, Max, Sum

from agents.models import LedgerEntry
from monitoring.history.seed import LONG_RUN_ID, LONG_RUN_STEPS, SEED_WORKSPACE_NAME
from workflows.models import Run, RunEvent, RunStatus, Step

pytestmark = pytest.mark.django_db


def _seed(runs: int, *extra: str) -> str:
    out = StringIO()
    call_command("seed_history", "--runs", str(runs), *extra, stdout=out)
    return out.getvalue()


def test_seeding_twice_adds_only_what_is_missing() -> None:
    _seed(30)
    assert Run.objects.filter(workspace__name=SEED_WORKSPACE_NAME).count() == 31
    counts = (RunEvent.objects.count(), LedgerEntry.objects.count(), Step.objects.count())

    assert "Added 0 runs" in _seed(30)
    assert (RunEvent.objects.count(), LedgerEntry.objects.count(), Step.objects.count()) == counts

    _seed(45)
    assert Run.objects.filter(workspace__name=SEED_WORKSPACE_NAME).count() == 46


def test_rows_are_shaped_as_the_engine_writes_them() -> None:
    _seed(60)
    runs = Run.objects.exclude(pk=LONG_RUN_ID)
    assert {RunStatus.SUCCEEDED, RunStatus.FAILED} <= set(runs.values_list("status", flat=True))
    for run in runs:
        # The run's totals are a copy of its ledger, and its events are numbered 1..last_seq.
        ledger = LedgerEntry.objects.filter(run_id=run.pk).aggregate(
            prompt=Sum("prompt_tokens"), calls=Count("pk")
        )
        assert run.prompt_tokens == (ledger["prompt"] or 0)
        assert run.model_calls == ledger["calls"]
        events = RunEvent.objects.filter(run=run).aggregate(n=Count("pk"), top=Max("seq"))
        assert events["n"] == (events["top"] or 0) == run.last_seq
        assert run.steps_completed == run.steps.filter(status="completed").count()
        assert run.search_text.startswith(next(iter(run.inputs.values())))
        if run.status == RunStatus.FAILED:
            assert run.reason and run.output is None
    sources = LedgerEntry.objects.values_list("source", flat=True)
    assert all(source["source"] == "run" and source["step_key"] for source in sources)
    assert LedgerEntry.objects.filter(price_source="unknown").exists()
    assert LedgerEntry.objects.exclude(error_kind="").exists()


def test_the_long_run_has_two_hundred_steps() -> None:
    _seed(1)
    long_run = Run.objects.get(pk=LONG_RUN_ID)
    assert long_run.steps.count() == LONG_RUN_STEPS
    assert long_run.status == RunStatus.SUCCEEDED
    assert LedgerEntry.objects.filter(run_id=LONG_RUN_ID).count() >= LONG_RUN_STEPS - 1


def test_a_member_can_be_given_the_sample_workspace(personas) -> None:
    _seed(2, "--member", personas.owner.username)
    assert Run.objects.filter(workspace__memberships__user=personas.owner).count() == 3
    with pytest.raises(CommandError, match="No user"):
        _seed(2, "--member", "nobody-here")
