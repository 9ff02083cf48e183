"""A sub-workflow runs as a child run of its own, and its output comes back to the parent."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.http import QueryDict
from django.utils import timezone

from agents.models import LedgerEntry, Provider
from monitoring.alerts.measures import measure_run_waiting
from monitoring.alerts.models import RuleKind
from monitoring.dashboards import dashboard_scope, headline, top_lists
from monitoring.trace.compare import runs_compare
from monitoring.trace.spans import run_trace
from tests.conftest import Personas
from tests.monitoring.alerts.test_evaluation import make_rule
from tests.support.waiting import wait_for
from tests.workflows.conftest import finished, research_agents
from workflows.graph.examples import edge, graph, node, text_variable
from workflows.models import Run, RunEvent, RunStatus, Step, Workflow
from workflows.selectors import runs_of
from workflows.services.reaper import runs_reap
from workflows.services.runs import run_answer, run_cancel, run_start
from workflows.services.workflows import workflow_create, workflow_publish

pytestmark = pytest.mark.django_db(transaction=True)


def _parent(personas: Personas, child_id: str) -> object:
    parent_graph = graph(
        nodes=[
            node("start", "start", 0, 0, input_mapping={"topic": "topic"}),
            node(
                "delegate",
                "subworkflow",
                200,
                0,
                workflow_id=child_id,
                input_mapping={"topic": "{{ topic }}"},
            ),
            node("end", "end", 400, 0),
        ],
        edges=[edge("start", "delegate"), edge("delegate", "end")],
        variables=[text_variable("topic")],
        output="delegate",
    )
    workflow = workflow_create(
        workspace=personas.workspace, user=personas.owner, name="Delegator", graph=parent_graph
    )
    workflow_publish(workflow=workflow, user=personas.owner)
    return workflow


def test_the_child_runs_and_its_output_is_the_parents(
    personas: Personas, pipeline, executor, llm_server
) -> None:
    parent = run_start(
        workflow=_parent(personas, str(pipeline.pk)), user=personas.owner, inputs={"topic": "moss"}
    )
    parent = finished(parent, timeout=60)
    assert parent.status == RunStatus.SUCCEEDED, parent.reason
    child = Run.objects.get(parent=parent)
    assert child.status == RunStatus.SUCCEEDED
    assert child.depth == 1 and child.parent_step_key == "delegate"
    assert child.inputs == {"topic": "moss"}
    assert parent.output == child.output
    assert len(llm_server.requests) == 3, "the child's three agents, once each"


def test_a_failing_child_fails_the_parent_with_its_reason(
    personas: Personas, pipeline, executor, llm_server
) -> None:
    llm_server.set_script({"rules": [{"fault": "auth"}]})
    parent = finished(
        run_start(
            workflow=_parent(personas, str(pipeline.pk)), user=personas.owner, inputs={"topic": "x"}
        ),
        timeout=60,
    )
    assert parent.status == RunStatus.FAILED
    assert "Sub-workflow" in parent.reason
    assert Run.objects.get(parent=parent).status == RunStatus.FAILED


def _publish(personas: Personas, name: str, the_graph: dict[str, Any]) -> Workflow:
    workflow = workflow_create(
        workspace=personas.workspace, user=personas.owner, name=name, graph=the_graph
    )
    workflow_publish(workflow=workflow, user=personas.owner)
    return workflow


def _delegator(personas: Personas, child: Workflow, **mapping: str) -> Workflow:
    """A parent whose one sub-workflow node maps the child's output back by `mapping`."""
    return _publish(
        personas,
        "Delegator",
        graph(
            nodes=[
                node("start", "start", 0, 0, input_mapping={"topic": "topic"}),
                node(
                    "delegate",
                    "subworkflow",
                    200,
                    0,
                    workflow_id=str(child.pk),
                    input_mapping={"topic": "{{ topic }}"},
                    output_mapping=mapping,
                ),
                node("end", "end", 400, 0, output="report"),
            ],
            edges=[edge("start", "delegate"), edge("delegate", "end")],
            variables=[text_variable("topic"), text_variable("report")],
            output="report",
        ),
    )


def _asking_child(personas: Personas, agent_id: str) -> Workflow:
    """A child that asks a person for an angle, then has an agent write with it."""
    return _publish(
        personas,
        "Asking child",
        graph(
            nodes=[
                node("start", "start", 0, 0, input_mapping={"topic": "topic"}),
                node(
                    "ask",
                    "human",
                    200,
                    0,
                    prompt="Which angle on {{ topic }}?",
                    output_variable="angle",
                ),
                node(
                    "write",
                    "agent",
                    400,
                    0,
                    agent_id=agent_id,
                    input_template="Write about {{ topic }} ({{ angle }})",
                ),
                node("end", "end", 600, 0),
            ],
            edges=[edge("start", "ask"), edge("ask", "write"), edge("write", "end")],
            variables=[text_variable("topic"), text_variable("angle")],
            output="write",
        ),
    )


def test_the_parents_totals_include_its_childs_calls_counted_once(
    personas: Personas, pipeline, executor, llm_server, client_for
) -> None:
    Provider.objects.filter(workspace=personas.workspace).update(
        input_price_per_1k=Decimal("0.01"), output_price_per_1k=Decimal("0.02")
    )
    parent = run_start(
        workflow=_delegator(personas, pipeline, **{"*": "report"}),
        user=personas.owner,
        inputs={"topic": "moss"},
    )
    parent = finished(parent, timeout=60)
    assert parent.status == RunStatus.SUCCEEDED, parent.reason
    child = Run.objects.get(parent=parent)
    calls = LedgerEntry.objects.filter(run_id=child.pk)
    assert calls.count() == 3
    assert not LedgerEntry.objects.filter(run_id=parent.pk).exists(), "the calls are the child's"
    assert child.model_calls == 3
    assert (parent.model_calls, parent.prompt_tokens, parent.completion_tokens) == (
        3,
        child.prompt_tokens,
        child.completion_tokens,
    )
    assert parent.prompt_tokens == sum(call.prompt_tokens for call in calls) > 0
    assert parent.cost == child.cost == sum(call.cost for call in calls) > 0
    # Lists of runs show the top-level run only, so nothing is counted twice there.
    assert [run.pk for run in runs_of(personas.workspace.pk)] == [parent.pk]
    scope = dashboard_scope(QueryDict(""))
    costliest = top_lists(personas.workspace.pk, scope, "costs").runs
    assert [run.pk for run in costliest] == [parent.pk]
    # The dashboards read the ledger: the spend is the child's calls, once.
    spend = headline(personas.workspace.pk, scope)
    assert spend["calls"] == 3
    assert Decimal(str(spend["cost"])).quantize(Decimal("0.000001")) == parent.cost.quantize(
        Decimal("0.000001")
    )
    # The parent's trace shows the sub-run with its totals, summed once at the root.
    root = run_trace(parent).root
    assert (root.calls, root.tokens_in, root.tokens_out, root.money.known) == (
        parent.model_calls,
        parent.prompt_tokens,
        parent.completion_tokens,
        parent.cost,
    )
    # Comparing runs reads their calls: the parent's are its child's, under its sub-workflow.
    side = runs_compare(parent, parent).a
    assert side.nodes["delegate"].calls == 3 and side.money.known == parent.cost
    history = client_for(personas.owner).get("/runs/").content.decode()
    assert f"{parent.prompt_tokens + parent.completion_tokens}</td>" in history


def test_a_text_output_maps_into_the_parents_variable(
    personas: Personas, pipeline, executor, llm_server
) -> None:
    parent = run_start(
        workflow=_delegator(personas, pipeline, output="report"),
        user=personas.owner,
        inputs={"topic": "moss"},
    )
    parent = finished(parent, timeout=60)
    assert parent.status == RunStatus.SUCCEEDED, parent.reason
    child = Run.objects.get(parent=parent)
    assert isinstance(child.output, str) and child.output
    assert parent.variables["report"] == child.output
    assert parent.output == child.output


def test_a_field_the_child_does_not_have_is_named_in_a_warning(
    personas: Personas, pipeline, executor, llm_server
) -> None:
    parent = run_start(
        workflow=_delegator(personas, pipeline, summary="report"),
        user=personas.owner,
        inputs={"topic": "moss"},
    )
    parent = finished(parent, timeout=60)
    assert parent.status == RunStatus.SUCCEEDED, parent.reason
    warning = RunEvent.objects.get(run=parent, kind="log")
    assert "'summary'" in warning.data["message"] and "'*'" in warning.data["message"]


def test_a_child_waiting_for_a_person_makes_its_parent_wait_then_both_finish(
    personas: Personas, executor, llm_server
) -> None:
    agent = research_agents(personas)[2]
    child_workflow = _asking_child(personas, str(agent.pk))
    parent = run_start(
        workflow=_delegator(personas, child_workflow, **{"*": "report"}),
        user=personas.owner,
        inputs={"topic": "moss"},
    )
    parent = finished(parent, timeout=60)
    assert parent.status == RunStatus.WAITING, parent.reason
    child = Run.objects.get(parent=parent)
    assert child.status == RunStatus.WAITING
    request = parent.waiting_request
    assert request["prompt"] == "Which angle on moss?"
    assert request["child_run_id"] == str(child.pk)
    assert request["child_step_key"] == child.waiting_request["step_key"] == "ask"
    assert request["step_key"] == "delegate" and request["workflow"] == "Asking child"
    asked = RunEvent.objects.get(run=parent, kind="human_request")
    assert asked.data["child_run_id"] == str(child.pk)

    # Answered on the parent's page: the answer is the child's, and both go on.
    run_answer(run=parent, step_key="delegate", answer="its history", user=personas.owner)
    child.refresh_from_db()
    assert child.answers == {"ask": "its history"}
    # The question is answered once: a second answer is refused, whichever run it is given to.
    for asked_run, key in ((parent, "delegate"), (child, "ask")):
        with pytest.raises(ValidationError):
            run_answer(run=asked_run, step_key=key, answer="again", user=personas.owner)
    child = finished(child, timeout=60)
    assert child.status == RunStatus.SUCCEEDED, child.reason
    parent = wait_for(
        lambda: Run.objects.filter(pk=parent.pk, status=RunStatus.SUCCEEDED).first(),
        timeout=60,
        what="the parent to resume and finish",
    )
    assert parent.variables["report"] == child.output
    assert "its history" in llm_server.requests[-1]["body"]["messages"][-1]["content"]
    assert parent.model_calls == child.model_calls == 1
    assert Step.objects.filter(run=parent, key="delegate").get().status == "completed"


def test_a_child_answered_on_its_own_page_wakes_its_parent(
    personas: Personas, executor, llm_server
) -> None:
    agent = research_agents(personas)[2]
    parent = run_start(
        workflow=_delegator(personas, _asking_child(personas, str(agent.pk)), output="report"),
        user=personas.owner,
        inputs={"topic": "moss"},
    )
    parent = finished(parent, timeout=60)
    child = Run.objects.get(parent=parent)
    run_answer(run=child, step_key="ask", answer="its uses", user=personas.owner)
    parent = wait_for(
        lambda: Run.objects.filter(pk=parent.pk, status=RunStatus.SUCCEEDED).first(),
        timeout=60,
        what="the parent to resume and finish",
    )
    child.refresh_from_db()
    assert parent.output == child.output and child.status == RunStatus.SUCCEEDED


def test_cancelling_a_waiting_parent_cancels_its_waiting_child(
    personas: Personas, executor, llm_server
) -> None:
    agent = research_agents(personas)[2]
    parent = run_start(
        workflow=_delegator(personas, _asking_child(personas, str(agent.pk)), output="report"),
        user=personas.owner,
        inputs={"topic": "moss"},
    )
    parent = finished(parent, timeout=60)
    # One question, asked in the child and shown in the parent: the alert counts it once.
    rule = make_rule(personas.workspace, RuleKind.RUN_WAITING, "0")
    assert measure_run_waiting(rule, timezone.now() + timedelta(minutes=1)).value == 1
    run_cancel(run=parent, user=personas.owner)
    assert Run.objects.get(parent=parent).status == RunStatus.CANCELLED
    parent.refresh_from_db()
    assert parent.status == RunStatus.CANCELLED


def test_the_parents_page_shows_the_childs_question_and_answers_it(
    personas: Personas, executor, llm_server, client_for
) -> None:
    agent = research_agents(personas)[2]
    parent = run_start(
        workflow=_delegator(personas, _asking_child(personas, str(agent.pk)), output="report"),
        user=personas.owner,
        inputs={"topic": "moss"},
    )
    parent = finished(parent, timeout=60)
    child = Run.objects.get(parent=parent)
    client = client_for(personas.owner)
    page = client.get(f"/runs/{parent.pk}/").content.decode()
    assert "Which angle on moss?" in page
    assert "Asked inside its sub-workflow" in page and f"/runs/{child.pk}/" in page
    assert 'class="run-step state-waiting" data-step-key="delegate"' in page
    answered = client.post(
        f"/runs/{parent.pk}/answer/", {"step_key": "delegate", "answer": "its colour"}
    )
    assert answered.status_code == 302
    parent = wait_for(
        lambda: Run.objects.filter(pk=parent.pk, status=RunStatus.SUCCEEDED).first(),
        timeout=60,
        what="the parent to finish",
    )
    child.refresh_from_db()
    assert child.answers == {"ask": "its colour"} and parent.output == child.output


def test_a_lost_wake_up_is_made_up_for_by_the_reaper(
    personas: Personas, executor, llm_server
) -> None:
    agent = research_agents(personas)[2]
    parent = run_start(
        workflow=_delegator(personas, _asking_child(personas, str(agent.pk)), output="report"),
        user=personas.owner,
        inputs={"topic": "moss"},
    )
    parent = finished(parent, timeout=60)
    child = Run.objects.get(parent=parent)
    # Both executions are over (the parent's own follow-up after its wait included), so what
    # follows is the reaper's doing, not a late wake-up from the executor.
    wait_for(lambda: executor.active == 0, what="the parent's and child's executions to end")
    # The child ended and its process died before waking the parent.
    Run.objects.filter(pk=child.pk).update(
        status=RunStatus.SUCCEEDED, waiting_request=None, output="written"
    )
    assert runs_reap().resumed == [parent.pk]
    parent = finished(parent, timeout=60)
    assert parent.status == RunStatus.SUCCEEDED, parent.reason
    assert parent.output == "written"
    assert runs_reap().resumed == [], "a settled wait is not resumed again"


def test_a_childs_unknown_price_is_its_parents_too(
    personas: Personas, pipeline, executor, llm_server, client_for
) -> None:
    parent = run_start(
        workflow=_delegator(personas, pipeline, **{"*": "report"}),
        user=personas.owner,
        inputs={"topic": "moss"},
    )
    parent = finished(parent, timeout=60)
    child = Run.objects.get(parent=parent)
    # As a model with no known price leaves its calls.
    LedgerEntry.objects.filter(run_id=child.pk).update(price_source=LedgerEntry.PriceSource.UNKNOWN)
    client = client_for(personas.owner)
    page = client.get(f"/runs/{parent.pk}/").content.decode()
    assert "3 calls with no known price" in page
    assert run_trace(parent).root.money.unknown == 3
    rows = client.get("/runs/").content.decode()
    assert '<span class="muted">price unknown</span>' in rows


def test_cancelling_the_waiting_child_fails_its_parent_with_the_reason(
    personas: Personas, executor, llm_server
) -> None:
    agent = research_agents(personas)[2]
    parent = run_start(
        workflow=_delegator(personas, _asking_child(personas, str(agent.pk)), output="report"),
        user=personas.owner,
        inputs={"topic": "moss"},
    )
    parent = finished(parent, timeout=60)
    run_cancel(run=Run.objects.get(parent=parent), user=personas.owner)
    parent = wait_for(
        lambda: Run.objects.filter(pk=parent.pk, status=RunStatus.FAILED).first(),
        timeout=60,
        what="the parent to learn its child was cancelled",
    )
    assert "Sub-workflow" in parent.reason and "cancelled" in parent.reason
