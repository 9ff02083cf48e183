"""A consensus node run for real: agents on the fake provider, the decision log on the run page."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from typing import Any

import pytest
from django.urls import reverse

from monitoring.trace.spans import run_trace
from tests.agents.factories import make_agent, make_provider
from tests.conftest import Personas
from tests.workflows.conftest import finished
from workflows.graph.examples import edge, node
from workflows.models import Run, RunStatus, Step, Workflow
from workflows.services.runs import run_start
from workflows.services.workflows import workflow_create, workflow_publish

pytestmark = pytest.mark.django_db(transaction=True)

# The proposer's first plan draws the skeptic's objection; the revision meets it.
COUNCIL_SCRIPT = {
    "rules": [
        {
            "system_contains": "You propose a decision",
            "last_message_contains": "Objections",
            "reply": "Plan B: a four-day week, with Friday cover on a rota.",
        },
        {"system_contains": "You propose a decision", "reply": "Plan A: a four-day week."},
        {
            "system_contains": "a skeptic",
            "last_message_contains": "Plan A",
            "reply": json.dumps({"decision": "reject", "reason": "Who covers Fridays?"}),
        },
        {
            "system_contains": "Accept or reject",
            "reply": json.dumps({"decision": "accept", "reason": "Works for me."}),
        },
    ]
}


def council_workflow(personas: Personas, **config: Any) -> Workflow:
    provider = make_provider(personas.workspace)
    planner = make_agent(personas.workspace, name="Planner", provider=provider, role="a planner")
    members = [
        make_agent(personas.workspace, name=name, provider=provider, role=role)
        for name, role in (
            ("Skeptic", "a skeptic"),
            ("Ally", "a supportive colleague"),
            ("Steward", "a budget steward"),
        )
    ]
    agree = node(
        "agree",
        "consensus",
        0,
        0,
        proposer_agent_id=str(planner.pk),
        members=[str(member.pk) for member in members],
        task="Propose how the team works: {{ topic }}",
        quorum="unanimous",
        output_variable="plan",
        **config,
    )
    agree["label"] = "Agree on a plan"
    graph = {
        "schema_version": 1,
        "nodes": [node("start", "start", 0, 0), agree, node("end", "end", 0, 0, output="plan")],
        "edges": [edge("start", "agree"), edge("agree", "end")],
        "variables": [{"name": "plan", "type": "string"}],
        "inputs": {"fields": [{"name": "topic", "type": "text"}]},
    }
    workflow = workflow_create(
        workspace=personas.workspace, user=personas.owner, name="Council", graph=graph
    )
    workflow_publish(workflow=workflow, user=personas.owner, note="first")
    return workflow


def test_a_council_revises_its_plan_and_commits_it(
    personas: Personas, llm_server: Any, executor: Any, client_for: Any
) -> None:
    llm_server.set_script(COUNCIL_SCRIPT)
    workflow = council_workflow(personas)
    run = finished(run_start(workflow=workflow, user=personas.owner, inputs={"topic": "Fridays"}))
    assert run.status == RunStatus.SUCCEEDED, run.reason
    assert run.output == "Plan B: a four-day week, with Friday cover on a rota."
    keys = set(Step.objects.filter(run=run).values_list("key", flat=True))
    assert {"agree/term-1/propose", "agree/term-2/propose", "agree/term-2/member-0"} <= keys
    # Members answered through the structured output the node asked for.
    ballots = [r for r in llm_server.requests if "Accept or reject" in json.dumps(r)]
    assert len(ballots) == 6
    [decision] = run.events.filter(kind="consensus")
    assert decision.data["committed"] is True and decision.data["term"] == 2

    # The trace names each sub-step by its term and role, nested under the node's step.
    names = {span.name for span in run_trace(run).by_id.values()}
    assert {
        "Agree on a plan · term 1 · proposal",
        "Agree on a plan · term 2 · member 1",
    } <= names

    page = client_for(personas.viewer).get(reverse("run_detail", args=[run.pk])).content.decode()
    assert "Decision log" in page
    assert "Term 1" in page and "Term 2" in page
    assert "Who covers Fridays?" in page
    assert "committed</span> in term 2: 3 of 3 members accepted (3 needed)" in page


def test_a_council_that_never_agrees_fails_and_says_so(
    personas: Personas, llm_server: Any, executor: Any, client_for: Any
) -> None:
    never = {
        "system_contains": "a skeptic",
        "reply": json.dumps({"decision": "reject", "reason": "Not convinced."}),
    }
    llm_server.set_script({"rules": [never, *COUNCIL_SCRIPT["rules"]]})
    workflow = council_workflow(personas, max_terms=2)
    run = finished(run_start(workflow=workflow, user=personas.owner, inputs={"topic": "Fridays"}))
    assert run.status == RunStatus.FAILED
    assert "No proposal reached the quorum of 3 in 2 terms" in run.reason

    page = client_for(personas.viewer).get(reverse("run_detail", args=[run.pk])).content.decode()
    assert "no agreement</span> The node ended without committing a proposal." in page
    assert page.count('class="decision-term"') == 2
    assert page.count("Not convinced.") == 2


def test_a_run_without_a_consensus_node_has_no_decision_log(
    personas: Personas, pipeline: Workflow, client_for: Any
) -> None:
    run = Run.objects.create(
        workflow=pipeline,
        version=pipeline.versions.get(),
        workspace=personas.workspace,
        inputs={"topic": "x"},
    )
    page = client_for(personas.viewer).get(reverse("run_detail", args=[run.pk])).content.decode()
    assert 'id="run-decisions" hidden' in page and "Decision log" not in page


@pytest.mark.services
@pytest.mark.slow
@pytest.mark.serial
def test_a_worker_killed_mid_consensus_leaves_the_next_one_to_replay_the_log(
    personas: Personas, llm_server: Any, settings: Any
) -> None:
    """Killed once the first term's ballots are stored: the second worker replays term 1 from
    its steps (no call, event or ledger row twice) and carries on to the same commit."""
    from django.utils import timezone

    from agents.models import LedgerEntry
    from tests.support.processes import start_celery_worker
    from tests.support.waiting import wait_for
    from workflows.services.reaper import runs_reap

    settings.EXECUTION_MODE = "celery"
    slow = [{**rule, "delay_ms": 400} for rule in COUNCIL_SCRIPT["rules"]]
    llm_server.set_script({"rules": slow})
    workflow = council_workflow(personas)
    lease = {"A2A_RUN_LEASE_SECONDS": "3", "A2A_RUN_HEARTBEAT_SECONDS": "1"}

    def worker(label: str) -> Any:
        return start_celery_worker(
            f"{label}-{uuid.uuid4().hex[:6]}",
            A2A_DEMO_MODEL_URL=llm_server.url,
            A2A_OUTBOUND_ALLOWED_HOSTS="127.0.0.1",
            **lease,
        )

    def ballots_done(run: Run) -> int:
        return Step.objects.filter(
            run=run, key__startswith="agree/term-1/member-", status=Step.Status.COMPLETED
        ).count()

    first = worker("first")
    second = None
    try:
        run = run_start(workflow=workflow, user=personas.owner, inputs={"topic": "Fridays"})
        wait_for(
            lambda: (first.assert_running(), ballots_done(run) == 3)[1],
            timeout=60,
            interval=0.02,
            what="the first term's ballots",
        )
        first.process.kill()
        first.process.wait(10)
        term1 = {
            step.key: step.finished_at
            for step in Step.objects.filter(run=run, key__startswith="agree/term-1/")
        }
        second = worker("second")
        wait_for(
            lambda: Run.objects.get(pk=run.pk).lease_until < timezone.now(),
            timeout=30,
            what="the dead worker's lease to expire",
        )
        assert runs_reap().resumed == [run.pk]
        run = wait_for(
            lambda: (r := Run.objects.get(pk=run.pk)).status in ("succeeded", "failed") and r,
            timeout=60,
            interval=0.05,
            what="the second worker to finish",
        )
    finally:
        first.stop()
        if second is not None:
            second.stop()

    assert run.status == RunStatus.SUCCEEDED, run.reason
    assert run.attempts == 2
    assert run.output == "Plan B: a four-day week, with Friday cover on a rota."
    # Term 1 was replayed from its steps, not decided again.
    for step in Step.objects.filter(run=run, key__startswith="agree/term-1/"):
        assert step.attempt == 1 and step.finished_at == term1[step.key]
    calls = Counter(
        entry["source"].get("step_key")
        for entry in LedgerEntry.objects.filter(run_id=run.pk, status="completed").values("source")
    )
    assert calls == {
        "agree/term-1/propose": 1,
        "agree/term-1/member-0": 1,
        "agree/term-1/member-1": 1,
        "agree/term-1/member-2": 1,
        "agree/term-2/propose": 1,
        "agree/term-2/member-0": 1,
        "agree/term-2/member-1": 1,
        "agree/term-2/member-2": 1,
    }
    ballots = list(run.events.filter(kind="ballot").values_list("step_key", flat=True))
    assert len(ballots) == len(set(ballots)) == 6
    [decision] = run.events.filter(kind="consensus")
    assert [term["committed"] for term in decision.data["log"]] == [False, True]
    assert decision.data["log"][0]["votes"][0]["reason"] == "Who covers Fridays?"
