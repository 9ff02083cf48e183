"""Finished runs as the engine leaves them — run, ledger rows, a message — for history tests."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone

from a2a_site.accounts.models import User, Workspace
from agents.models import LedgerEntry, Provider
from workflows.models import Run, RunEvent, Step, Workflow
from workflows.search import run_search_refresh
from workflows.services.workflows import EMPTY_GRAPH, workflow_create, workflow_publish


def make_workflow(workspace: Workspace, name: str, *, user: User | None = None) -> Workflow:
    workflow = workflow_create(workspace=workspace, user=user, name=name, graph=EMPTY_GRAPH)
    workflow_publish(workflow=workflow, user=user)
    return workflow


def make_run(
    workflow: Workflow,
    *,
    text: str = "a question",
    answer: str = "an answer",
    status: str = "succeeded",
    ago: timedelta = timedelta(hours=1),
    duration: timedelta = timedelta(seconds=5),
    cost: str = "0.01",
    tokens: int = 100,
    model: str = "gpt-4o-mini",
    provider: Provider | None = None,
    agent_id: str = "",
    error_kind: str = "",
    price_source: str = "price_list",
    by: User | None = None,
    via: str = "web",
    pinned: bool = False,
    parent: Run | None = None,
) -> Run:
    created: datetime = timezone.now() - ago
    finished = status not in ("waiting", "running", "queued")
    run = Run.objects.create(
        workspace_id=workflow.workspace_id,
        workflow=workflow,
        version=workflow.versions.order_by("-number").first(),
        status=status,
        inputs={"topic": text},
        output=answer if status == "succeeded" else None,
        created_by=by,
        launched_via=via,
        pinned=pinned,
        parent=parent,
        parent_step_key="child" if parent else "",
        started_at=created,
        finished_at=created + duration if finished else None,
        prompt_tokens=tokens // 2,
        completion_tokens=tokens - tokens // 2,
        cost=Decimal(cost),
        model_calls=1,
        steps_completed=1,
        last_seq=1,
    )
    Run.objects.filter(pk=run.pk).update(created_at=created)
    run.created_at = created
    Step.objects.create(
        run=run,
        key="ask",
        node_id="ask",
        node_type="agent",
        status="completed",
        output=answer,
        started_at=created,
        finished_at=created + duration,
    )
    RunEvent.objects.create(
        run=run,
        seq=1,
        step_key="ask",
        kind="message",
        data={"agent": "Helper", "text": f"{answer} (said by the helper)"},
    )
    LedgerEntry.objects.create(
        call_id=uuid.uuid4(),
        workspace_id=workflow.workspace_id,
        provider=provider,
        deployment_id=f"{provider.pk if provider else 'x'}:{model}",
        provider_kind=provider.kind if provider else "openai",
        model=model,
        status="failed" if error_kind else "completed",
        prompt_tokens=tokens // 2,
        completion_tokens=tokens - tokens // 2,
        cost=Decimal(cost),
        price_source=price_source,
        error_kind=error_kind,
        run_id=run.pk,
        source={"step_key": "ask", "agent_id": agent_id, "source": "run"},
        started_at=created,
        finished_at=created + duration,
    )
    run_search_refresh(run.pk)
    run.refresh_from_db()
    return run


def row_ids(content: Any) -> list[str]:
    """The run ids of the history rows in a page, in order."""
    text = content.decode() if isinstance(content, bytes) else content
    return [
        part.split('"', 1)[0] for part in text.split('data-testid="history-row" data-run="')[1:]
    ]
