"""A provider's rpm holds across real worker processes: two Celery workers running eight runs
against a deployment limited to 2 requests a window never send it more than 2 in any window,
and every run finishes (waiting its turn, none failed for the limit)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from agents.models import LedgerEntry
from tests.agents.factories import make_agent, make_provider
from tests.conftest import Personas
from tests.support.processes import start_celery_worker
from tests.support.waiting import wait_for
from workflows.graph import examples
from workflows.models import TERMINAL_STATUSES, Run, RunStatus, Worker
from workflows.services.runs import run_start
from workflows.services.workflows import workflow_create, workflow_publish

pytestmark = [
    pytest.mark.services,
    pytest.mark.slow,
    pytest.mark.serial,
    pytest.mark.django_db(transaction=True),
]

WINDOW_S = 2
RPM = 2
RUNS = 8


def test_an_rpm_holds_across_two_worker_processes(
    personas: Personas, llm_server: Any, settings: Any
) -> None:
    settings.EXECUTION_MODE = "celery"
    provider = make_provider(personas.workspace, name="Shared", rpm_limit=RPM)
    agent = make_agent(personas.workspace, provider=provider)
    graph = examples.graph(
        nodes=[
            examples.node("start", "start", 0, 0, input_mapping={"topic": "topic"}),
            examples.agent("answer", str(agent.pk), 250, "Answer: {{ topic }}", "answer"),
            examples.node("end", "end", 500, 0, output="answer"),
        ],
        edges=[examples.edge("start", "answer"), examples.edge("answer", "end")],
        variables=[examples.text_variable("topic"), examples.text_variable("answer")],
        output="answer",
    )
    workflow = workflow_create(
        workspace=personas.workspace, user=personas.owner, name="Shared", graph=graph
    )
    workflow_publish(workflow=workflow, user=personas.owner)
    env = {
        "A2A_DEMO_MODEL_URL": llm_server.url,
        "A2A_OUTBOUND_ALLOWED_HOSTS": "127.0.0.1",
        "A2A_RATE_WINDOW_SECONDS": str(WINDOW_S),
    }
    names = [f"{label}-{uuid.uuid4().hex[:6]}" for label in "ab"]
    workers = [start_celery_worker(name, **env) for name in names]
    try:
        # Both ready (they have read the price list and beat): the test measures the limit,
        # not a worker's start.
        for name, worker in zip(names, workers, strict=True):
            wait_for(
                lambda name=name, worker=worker: (
                    worker.assert_running(),
                    Worker.objects.filter(name__startswith=f"{name}@").exists(),
                )[1],
                timeout=60,
                interval=0.1,
                what=f"worker {name} to be ready",
            )
        runs = [
            run_start(workflow=workflow, user=personas.owner, inputs={"topic": str(n)})
            for n in range(RUNS)
        ]

        def all_done() -> bool:
            for worker in workers:
                worker.assert_running()
            ended = Run.objects.filter(pk__in=[r.pk for r in runs], status__in=TERMINAL_STATUSES)
            return ended.count() == RUNS

        wait_for(all_done, timeout=90, interval=0.1, what="every run to finish")
        # Both took runs: the limit was held across processes, not within one.
        received = [worker.log().count("run_execute[") for worker in workers]
    finally:
        for worker in workers:
            worker.stop()

    statuses = list(Run.objects.filter(pk__in=[r.pk for r in runs]).values_list("status", "reason"))
    assert all(status == RunStatus.SUCCEEDED for status, _ in statuses), statuses
    assert all(received), received
    assert len(llm_server.requests) == RUNS
    # When each call was let through: its ledger row's start, written right after the shared
    # limit admitted it (the request reaches the provider later, after the row is written).
    times = sorted(
        started.timestamp()
        for started in LedgerEntry.objects.filter(run_id__in=[r.pk for r in runs]).values_list(
            "started_at", flat=True
        )
    )
    assert len(times) == RUNS
    # In any window of WINDOW_S seconds, at most RPM calls.
    for i in range(len(times) - RPM):
        assert times[i + RPM] - times[i] >= WINDOW_S - 0.05, times
