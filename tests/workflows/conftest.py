"""Runs executed for real: a process executor, the demo provider on the fake LLM server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from agents.models import Agent
from tests.agents.factories import make_agent, make_provider
from tests.conftest import Personas
from tests.support.waiting import wait_for
from workflows.graph import examples
from workflows.models import TERMINAL_STATUSES, Run, Workflow
from workflows.services.workflows import workflow_create, workflow_publish


@pytest.fixture
def executor(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """This test's own executor, as the embedded mode's web process would have."""
    from workflows import executor as executor_module

    settings.EXECUTION_MODE = "embedded"
    settings.RUN_HEARTBEAT_SECONDS = 1
    runner = executor_module.RunExecutor(embedded=False)
    runner.owned_by_fixture = True  # type: ignore[attr-defined]
    monkeypatch.setattr(executor_module, "_executor", runner)
    yield runner
    # The executor's database work happens on asgiref's sync thread: close what it opened.
    asyncio.run_coroutine_threadsafe(sync_to_async(connections.close_all)(), runner.loop).result(
        timeout=10
    )
    runner.shutdown()


def finished(run: Run, timeout: float = 30) -> Run:
    def done() -> Run | None:
        run.refresh_from_db()
        return run if run.status in TERMINAL_STATUSES or run.status == "waiting" else None

    return wait_for(done, timeout=timeout, interval=0.05, what=f"run {run.pk} to finish")


def research_agents(personas: Personas) -> list[Agent]:
    provider = make_provider(personas.workspace)
    return [
        make_agent(personas.workspace, name=name, provider=provider, role=role)
        for name, role in (
            ("Researcher", "a meticulous researcher"),
            ("Analyst", "a sharp analyst"),
            ("Writer", "a clear writer"),
        )
    ]


@pytest.fixture
def pipeline(personas: Personas, llm_server: Any) -> Workflow:
    researcher, analyst, writer = research_agents(personas)
    graph = examples.research_pipeline(str(researcher.pk), str(analyst.pk), str(writer.pk))
    workflow = workflow_create(
        workspace=personas.workspace, user=personas.owner, name="Research pipeline", graph=graph
    )
    workflow_publish(workflow=workflow, user=personas.owner, note="first")
    return workflow
