"""The trace of a run: its spans as they happened, each call's payload, secrets never shown."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from agents.models import CallPayload, LedgerEntry
from monitoring.trace.spans import run_trace
from tests.agents.factories import make_agent, make_provider
from tests.conftest import Personas
from tests.support.waiting import wait_for
from tests.workflows.conftest import finished
from workflows.graph import examples
from workflows.models import Run, RunStatus, Workflow
from workflows.services.workflows import workflow_create, workflow_publish

pytestmark = pytest.mark.django_db(transaction=True)

SCRIPT = {
    "rules": [
        # The researcher asks the calculator once, then answers from its result.
        {"last_role": "tool", "reply": "Bees visit 42 flowers."},
        {
            "system_regex": "(?i)researcher",
            "has_tools": True,
            "tool_call": {"name": "calculator", "arguments": {"expression": "6*7"}},
        },
        # The analyst's first two attempts fail; the gateway retries twice.
        {"system_regex": "(?i)analyst", "fault": "500x2"},
    ]
}


@pytest.fixture
def traced(personas: Personas, llm_server: Any) -> Workflow:
    provider = make_provider(personas.workspace)
    researcher = make_agent(
        personas.workspace,
        name="Researcher",
        provider=provider,
        role="a meticulous researcher",
        tools=["calculator"],
    )
    analyst = make_agent(personas.workspace, name="Analyst", provider=provider, role="an analyst")
    writer = make_agent(personas.workspace, name="Writer", provider=provider, role="a writer")
    graph = examples.research_pipeline(str(researcher.pk), str(analyst.pk), str(writer.pk))
    workflow = workflow_create(
        workspace=personas.workspace, user=personas.owner, name="Traced", graph=graph
    )
    workflow_publish(workflow=workflow, user=personas.owner)
    llm_server.set_script(SCRIPT)
    return workflow


def _run(client: Any, workflow: Workflow, topic: str) -> Run:
    client.post(reverse("workflow_run", args=[workflow.pk]), {"topic": topic})
    run = finished(Run.objects.filter(workflow=workflow).order_by("-created_at").first())
    # Each call's payload is written just after the call, off its path.
    wait_for(
        lambda: (
            CallPayload.objects.filter(run_id=run.pk).count()
            == LedgerEntry.objects.filter(run_id=run.pk).count()
        ),
        what="the run's payloads",
    )
    return run


def test_a_finished_run_is_drawn_span_by_span(
    personas: Personas, traced: Workflow, client_for, executor
) -> None:
    client = client_for(personas.viewer)
    run = _run(client_for(personas.editor), traced, "bees")
    assert run.status == RunStatus.SUCCEEDED, run.reason

    trace = run_trace(run)
    kinds = [(row.depth, row.span.kind, row.span.name) for row in trace.rows]
    assert kinds[0] == (0, "run", "Traced run")
    steps = [span for span in trace.root.children if span.kind == "step"]
    assert [step.node_id for step in steps] == ["research", "analysis", "writing"]
    research, analysis, _ = steps
    # The researcher's turn: a model call asking for the calculator, the tool, a second call.
    assert [child.kind for child in research.children] == ["call", "tool", "call"]
    tool = research.children[1]
    assert tool.name == "calculator" and tool.timing_known and tool.status == "ok"
    assert research.children[0].end <= tool.start <= tool.end <= research.children[2].start
    # The analyst's call: two failed attempts, then the retry that answered, as one call.
    (call,) = analysis.children
    assert [attempt.kind for attempt in call.children] == ["attempt"] * 3
    assert [attempt.status for attempt in call.children] == ["failed", "failed", "ok"]
    assert call.status == "ok" and call.children[2].name == "retry of demo"
    # Usage adds up to the ledger, which is the truth.
    ledger = LedgerEntry.objects.filter(run_id=run.pk)
    assert trace.root.calls == ledger.count() == 6
    assert trace.root.tokens_in == sum(entry.prompt_tokens for entry in ledger)
    # Every call of the run kept what it sent and received (written just after each call).
    wait_for(lambda: CallPayload.objects.filter(run_id=run.pk).count() == 6, what="payloads")
    assert {total.name for total in trace.agent_totals} == {"Researcher", "Analyst", "Writer"}
    assert [total.visits for total in trace.node_totals] == [1, 1, 1]

    page = client.get(reverse("run_trace", args=[run.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-testid="waterfall"' in html and "calculator" in html
    assert "hx-trigger" not in html  # a finished run is not polled


def test_selecting_a_call_shows_what_it_sent_and_received(
    personas: Personas, traced: Workflow, client_for, executor
) -> None:
    run = _run(client_for(personas.editor), traced, "bees")
    first = LedgerEntry.objects.filter(run_id=run.pk).order_by("started_at").first()
    url = reverse("run_trace", args=[run.pk])
    client = client_for(personas.viewer)

    inspector = client.get(
        url, {"span": f"call:{first.pk}"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="trace-inspector"
    )
    html = inspector.content.decode()
    assert html.lstrip().startswith('<aside id="trace-inspector"')  # the partial alone
    assert "Messages sent" in html and "meticulous researcher" in html  # the system message
    assert "Research this topic: bees" in html  # the user's message
    assert "Tools offered" in html and "calculator" in html
    assert "Tool calls asked for" in html and "6*7" in html

    # The analyst's call with its retries: the last attempt's payload, and a word on the others.
    first_try = (
        LedgerEntry.objects.filter(run_id=run.pk, source__step_key="analysis")
        .order_by("started_at")
        .first()
    )
    retried = client.get(url, {"span": f"calls:{first_try.pk}"}).content.decode()
    assert "3 attempts" in retried and "Analyse these findings" in retried

    tool = client.get(url, {"span": "tool:research:1"}).content.decode()
    assert "Arguments" in tool and "42" in tool  # the calculator's result

    step = client.get(url, {"span": "step:analysis"}).content.decode()
    assert "Variable updates" in step and "Bees visit" in step
    # "Run again from here" leads editors to the fork of that step; viewers cannot fork.
    assert "Run again from here" not in step
    as_editor = client_for(personas.editor).get(url, {"span": "step:analysis"}).content.decode()
    fork = reverse("run_fork", args=[run.pk]) + "?step=analysis"
    assert 'data-testid="fork-here"' in as_editor and fork in as_editor


def test_secrets_in_a_call_are_never_kept_or_shown(
    personas: Personas, traced: Workflow, client_for, executor
) -> None:
    secret = "sk-live-9f8e7d6c5b4a39281706f5e4d3c2b1a0"
    run = _run(client_for(personas.editor), traced, f"my key is {secret}")
    wait_for(lambda: CallPayload.objects.filter(run_id=run.pk).count() == 6, what="payloads")
    stored = " ".join(str(p.request) + str(p.response) for p in CallPayload.objects.all())
    assert stored and secret not in stored and "sk-live" not in stored
    url = reverse("run_trace", args=[run.pk])
    client = client_for(personas.viewer)
    for span in ["run", "step:research", *(f"call:{e.pk}" for e in LedgerEntry.objects.all())]:
        html = client.get(url, {"span": span}).content.decode()
        assert secret not in html, span


def test_a_run_without_calls_and_an_unknown_span_say_so(
    personas: Personas, client_for, settings
) -> None:
    from workflows.services.workflows import EMPTY_GRAPH

    workflow = workflow_create(
        workspace=personas.workspace, user=personas.owner, name="Empty", graph=EMPTY_GRAPH
    )
    workflow_publish(workflow=workflow, user=personas.owner)
    run = Run.objects.create(
        workspace=personas.workspace,
        workflow=workflow,
        version=workflow.versions.get(),
        status=RunStatus.FAILED,
        reason="The workflow graph cannot run",
    )
    client = client_for(personas.viewer)
    url = reverse("run_trace", args=[run.pk])
    html = client.get(url).content.decode()
    assert "recorded no steps and made no provider calls" in html
    odd = client.get(url, {"span": "call:not-a-call"})
    assert odd.status_code == 200 and "no such span" in odd.content.decode()
    assert client.get(url, {"span": "x" * 1000}).status_code == 400


def test_the_waterfall_escapes_what_runs_and_models_wrote() -> None:
    from monitoring.trace.types import Row, Span
    from monitoring.trace.waterfall import waterfall_rows

    span = Span(
        'step:a"b',
        "step",
        "<img src=x onerror=alert(1)>",
        None,
        None,
        error="<script>alert(2)</script>",
        step_key='a"b',
    )
    html = waterfall_rows(
        [Row(span, 1, 0, 2, "+0 ms", "1 ms", "<b>parent</b>")],
        trace_url="/runs/x/trace/",
        fork_url="",
        can_edit=True,
        selected="",
    )
    assert "<img" not in html and "<script>" not in html and "<b>" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert 'data-span="step:a&quot;b"' in html and "span=step%3Aa%22b" in html


def _row(run: Run, key: str, node: str, started, finished, status="completed") -> None:
    from workflows.models import Step

    Step.objects.create(
        run=run,
        key=key,
        node_id=node,
        node_type="agent",
        status=status,
        started_at=started,
        finished_at=finished,
    )


def _call(run: Run, key: str, started, finished, status="completed", **fields: Any) -> None:
    import uuid

    LedgerEntry.objects.create(
        call_id=uuid.uuid4(),
        workspace=run.workspace,
        deployment_id="p:demo",
        provider_kind="demo",
        model="demo",
        status=status,
        prompt_tokens=10,
        completion_tokens=4,
        price_source="" if status == "pending" else fields.pop("price_source", "free"),
        run_id=run.pk,
        source={"step_key": key},
        started_at=started,
        finished_at=finished,
        **fields,
    )


def test_a_live_run_with_parallel_branches_and_a_person_waited_for(
    personas: Personas, pipeline: Workflow, client_for
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from workflows.models import RunEvent

    t0 = timezone.now() - timedelta(seconds=10)
    at = lambda seconds: t0 + timedelta(seconds=seconds)  # noqa: E731
    run = Run.objects.create(
        workspace=personas.workspace,
        workflow=pipeline,
        version=pipeline.versions.get(),
        status=RunStatus.WAITING,
        started_at=t0,
        waiting_request={"step_key": "approve", "kind": "approval", "prompt": "Ship it?"},
    )
    # Two branches at the same time; the second's call is still in flight (a live run).
    _row(run, "research[0]", "research", at(1), at(4))
    _call(run, "research[0]", at(1), at(3.9))
    _row(run, "analysis[1]", "analysis", at(1.2), None, status="running")
    _call(run, "analysis[1]", at(1.3), None, status="pending")
    _call(run, "analysis[1]", at(1.3), at(2), price_source="unknown")
    RunEvent.objects.create(
        run=run, seq=1, step_key="approve", kind="human_request", data={"kind": "approval"}
    )
    # A sub-workflow the first branch called, with its own totals.
    child = Run.objects.create(
        workspace=personas.workspace,
        workflow=pipeline,
        version=pipeline.versions.get(),
        status=RunStatus.SUCCEEDED,
        parent=run,
        parent_step_key="research[0]",
        depth=1,
        started_at=at(1.5),
        finished_at=at(3),
        prompt_tokens=7,
        model_calls=1,
    )
    trace = run_trace(run)
    sub = trace.by_id[f"subrun:{child.pk}"]
    assert sub.parent.step_key == "research[0]" and sub.tokens_in == 7
    groups = [span for span in trace.root.children if span.kind == "group"]
    assert [group.name for group in groups] == ["Branch 1", "Branch 2"]
    first, second = (group.children[0] for group in groups)
    assert first.start < second.start < first.end  # side by side on the time axis
    assert second.status == "running" and second.end is None
    assert second.money.text == "price unknown + in flight"
    wait = trace.by_id["wait:approve"]
    assert wait.status == "waiting" and wait.end is None and wait.parent.status == "waiting"

    url = reverse("run_trace", args=[run.pk])
    client = client_for(personas.viewer)
    page = client.get(url).content.decode()
    assert 'hx-trigger="every 2s"' in page  # polled while the run goes on
    live = client.get(
        url, {"span": "step:analysis[1]"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="trace-live"
    ).content.decode()
    assert live.lstrip().startswith('<div id="trace-live"')
    assert 'id="trace-inspector" hx-swap-oob="true"' in live  # the span selected is still going
    done = client.get(
        url, {"span": "step:research[0]"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="trace-live"
    ).content.decode()
    assert "hx-swap-oob" not in done  # a finished span is left as it is read
    subrun = client.get(url, {"span": f"subrun:{child.pk}"}).content.decode()
    assert reverse("run_trace", args=[child.pk]) in subrun
    waiting = client.get(url, {"span": "wait:approve"}).content.decode()
    assert "Ship it?" in waiting and "Still waiting" in waiting
