"""Forking a run from a finished step: the steps before it are reused (no model call, no cost),
the edited variables reach the later steps, and what replay cannot reproduce is refused."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db.models import Sum
from django.utils import timezone

from agents.models import LedgerEntry
from tests.conftest import Personas
from tests.workflows.conftest import finished
from workflows.graph.examples import edge, node
from workflows.models import Run, RunEvent, RunStatus, Step, Workflow
from workflows.services.fork import fork_point, run_fork
from workflows.services.runs import run_start
from workflows.services.workflows import workflow_publish

# Tests that execute runs need the executor's own connections to see their rows.
pytestmark = pytest.mark.django_db
executed = pytest.mark.django_db(transaction=True)


def _prompts(llm_server: Any) -> list[str]:
    return [json.dumps(entry["body"], ensure_ascii=False) for entry in llm_server.requests]


def _finished_pipeline_run(personas: Personas, pipeline: Workflow) -> Run:
    run = finished(run_start(workflow=pipeline, user=personas.owner, inputs={"topic": "kelp"}))
    assert run.status == RunStatus.SUCCEEDED, run.reason
    return run


@executed
def test_a_fork_reuses_the_steps_before_and_runs_the_rest_with_the_edit(
    personas: Personas, pipeline, executor, llm_server
) -> None:
    parent = _finished_pipeline_run(personas, pipeline)
    assert len(llm_server.requests) == 3
    research = Step.objects.get(run=parent, key="research")

    fork = run_fork(
        run=parent,
        step_key="analysis",
        user=personas.editor,
        variables={"findings": "Kelp forests store carbon."},
    )
    fork = finished(fork)

    assert fork.status == RunStatus.SUCCEEDED, fork.reason
    assert len(llm_server.requests) == 5, "research was reused: only analysis and writing called"
    assert "Kelp forests store carbon." in _prompts(llm_server)[3]
    assert fork.forked_from == parent and fork.fork_step_key == "analysis"
    assert fork.created_by == personas.editor
    steps = {step.key: step for step in Step.objects.filter(run=fork)}
    assert set(steps) == {"research", "analysis", "writing"}
    assert steps["research"].reused and steps["research"].output == research.output
    assert steps["research"].started_at == research.started_at
    assert not steps["analysis"].reused and not steps["writing"].reused
    # The fork's cost is what it spent: two calls of its own, none of the parent's.
    ledger = LedgerEntry.objects.filter(run_id=fork.pk)
    assert ledger.count() == 2 and fork.model_calls == 2
    assert fork.cost == (ledger.aggregate(total=Sum("cost"))["total"] or Decimal(0))
    assert fork.steps_completed == 3
    # The reused step's message is in the fork's transcript, then the note, then the new steps.
    events = list(RunEvent.objects.filter(run=fork).order_by("seq"))
    assert [event.seq for event in events] == list(range(1, len(events) + 1))
    messages = [event.step_key for event in events if event.kind == "message"]
    assert messages == ["research", "analysis", "writing"]
    assert events[0].data["reused_from"] == str(parent.pk), "a reused message says so"
    note = next(event for event in events if event.kind == "log")
    assert "reused" in note.data["message"] and "findings" in note.data["message"]
    # The parent is untouched.
    parent.refresh_from_db()
    assert Step.objects.filter(run=parent).count() == 3
    assert LedgerEntry.objects.filter(run_id=parent.pk).count() == 3


@executed
def test_edited_inputs_reach_the_later_steps_and_the_reused_ones_keep_theirs(
    personas: Personas, pipeline, executor, llm_server
) -> None:
    parent = _finished_pipeline_run(personas, pipeline)
    fork = finished(
        run_fork(run=parent, step_key="research", user=personas.owner, inputs={"topic": "moss"})
    )
    assert fork.status == RunStatus.SUCCEEDED, fork.reason
    assert fork.inputs == {"topic": "moss"}
    assert len(llm_server.requests) == 6, "forked from the first step: everything runs again"
    assert "moss" in _prompts(llm_server)[3]
    assert not Step.objects.filter(run=fork, reused=True).exists()


@executed
def test_a_fork_of_a_fork_reuses_what_each_one_ran(
    personas: Personas, pipeline, executor, llm_server
) -> None:
    parent = _finished_pipeline_run(personas, pipeline)
    first = finished(
        run_fork(
            run=parent, step_key="analysis", user=personas.owner, variables={"findings": "edited"}
        )
    )
    second = finished(run_fork(run=first, step_key="writing", user=personas.owner))
    assert second.status == RunStatus.SUCCEEDED, second.reason
    assert len(llm_server.requests) == 6, "3 + 2 + only the writing step again"
    reused = {step.key: step for step in Step.objects.filter(run=second, reused=True)}
    assert set(reused) == {"research", "analysis"}
    assert reused["analysis"].output == Step.objects.get(run=first, key="analysis").output
    assert second.forked_from == first and second.variables["findings"] == "edited"


@executed
def test_a_fork_runs_on_the_latest_version_that_changed_the_forked_step(
    personas: Personas, pipeline, executor, llm_server
) -> None:
    parent = _finished_pipeline_run(personas, pipeline)
    draft = pipeline.versions.get().graph
    writing = next(node for node in draft["nodes"] if node["id"] == "writing")
    writing["config"]["input_template"] = "Write a haiku from:\n{{ analysis }}"
    pipeline.draft = draft
    pipeline.save(update_fields=["draft"])
    latest = workflow_publish(workflow=pipeline, user=personas.owner, note="haiku")
    fork = finished(run_fork(run=parent, step_key="writing", user=personas.owner, version=latest))
    assert fork.status == RunStatus.SUCCEEDED, fork.reason
    assert fork.version == latest
    assert len(llm_server.requests) == 4
    assert "haiku" in _prompts(llm_server)[3]


# --- Refusals: nothing is written ------------------------------------------------------------


def run_with_steps(workflow: Workflow, steps: list[tuple[str, str, int, int | None]]) -> Run:
    """A run with steps (key, status, started s, finished s) at those seconds from now."""
    run = Run.objects.create(
        workspace_id=workflow.workspace_id,
        workflow=workflow,
        version=workflow.versions.order_by("-number").first(),
        status=RunStatus.SUCCEEDED,
        inputs={"topic": "kelp"},
    )
    base = timezone.now()
    for key, status, started, ended in steps:
        Step.objects.create(
            run=run,
            key=key,
            node_id=key.split("[")[0].split("/")[0].split("@")[0],
            node_type="agent",
            status=status,
            output=f"output of {key}",
            variables={},
            started_at=base + timedelta(seconds=started),
            finished_at=None if ended is None else base + timedelta(seconds=ended),
        )
    return run


def _refused(run: Run, key: str, match: str, **options: Any) -> None:
    runs, steps = Run.objects.count(), Step.objects.count()
    with pytest.raises(ValidationError, match=match):
        run_fork(run=run, step_key=key, user=None, **options)
    assert (Run.objects.count(), Step.objects.count()) == (runs, steps), "nothing half-made"


DONE, FAILED, RUNNING = Step.Status.COMPLETED, Step.Status.FAILED, Step.Status.RUNNING


def test_steps_that_cannot_be_forked_are_refused_with_a_reason(
    personas: Personas, pipeline
) -> None:
    run = run_with_steps(
        pipeline,
        [
            ("research", DONE, 0, 1),
            ("chat/turn-1", DONE, 2, 3),
            ("analysis", RUNNING, 4, None),
        ],
    )
    _refused(run, "nowhere", "no step “nowhere”")
    _refused(run, "chat/turn-1", "one turn inside the team step “chat”")
    _refused(run, "analysis", "has not finished yet")
    _refused(run, "research", "no variable nope", variables={"nope": 1})
    _refused(run, "research", "topic", inputs={})


def test_a_step_that_ran_beside_an_unfinished_sibling_is_refused(
    personas: Personas, pipeline
) -> None:
    run = run_with_steps(
        pipeline,
        [
            ("research", DONE, 0, 1),
            ("analysis[0]", DONE, 2, 6),
            ("writing[1]", DONE, 3, 4),
        ],
    )
    _refused(run, "writing[1]", "was still running when “writing\\[1\\]” started")
    # The other way round is a point in time: the sibling had finished, so it is reused.
    point = fork_point(run=run, step_key="analysis[0]")
    assert [step.key for step in point.reused] == ["research"]
    later = run_with_steps(
        pipeline, [("research", DONE, 0, 1), ("analysis[0]", DONE, 2, 3), ("writing", DONE, 4, 5)]
    )
    assert [s.key for s in fork_point(run=later, step_key="writing").reused] == [
        "research",
        "analysis[0]",
    ]


def test_a_failed_step_can_be_forked_but_not_past_a_tolerated_failure(
    personas: Personas, pipeline
) -> None:
    run = run_with_steps(pipeline, [("research", DONE, 0, 1), ("analysis", FAILED, 2, 3)])
    assert [step.key for step in fork_point(run=run, step_key="analysis").reused] == ["research"]
    tolerated = run_with_steps(pipeline, [("research", FAILED, 0, 1), ("analysis", DONE, 2, 3)])
    _refused(tolerated, "analysis", "had failed before")


def test_a_sub_workflow_run_is_refused(personas: Personas, pipeline) -> None:
    parent = run_with_steps(pipeline, [("research", DONE, 0, 1)])
    child = run_with_steps(pipeline, [("research", DONE, 0, 1)])
    child.parent = parent
    child.parent_step_key = "delegate"
    child.save(update_fields=["parent", "parent_step_key"])
    _refused(child, "research", "sub-workflow of another run")


def _publish(workflow: Workflow, user: Any, change: Any) -> Any:
    draft = json.loads(json.dumps(workflow.versions.order_by("-number").first().graph))
    change(draft)
    workflow.draft = draft
    workflow.save(update_fields=["draft"])
    return workflow_publish(workflow=workflow, user=user)


def test_a_latest_version_that_changed_what_came_before_is_refused(
    personas: Personas, pipeline
) -> None:
    run = run_with_steps(
        pipeline,
        [("research", DONE, 0, 1), ("analysis", DONE, 2, 3), ("writing", DONE, 4, 5)],
    )

    def changed_research(doc: dict[str, Any]) -> None:
        doc["nodes"][1]["config"]["input_template"] = "Research harder: {{ topic }}"

    _refused(
        run,
        "analysis",
        "changed node “research”",
        version=_publish(pipeline, personas.owner, changed_research),
    )

    def without_writing(doc: dict[str, Any]) -> None:
        doc["nodes"] = [node for node in doc["nodes"] if node["id"] != "writing"]
        doc["edges"] = [e for e in doc["edges"] if "writing" not in (e["source"], e["target"])]
        doc["edges"].append(edge("analysis", "end"))

    _refused(
        run,
        "writing",
        "has no node “writing”",
        version=_publish(pipeline, personas.owner, without_writing),
    )

    def a_check_before_analysis(doc: dict[str, Any]) -> None:
        agent_id = doc["nodes"][1]["config"]["agent_id"]
        doc["nodes"].append(node("check", "agent", 0, 0, agent_id=agent_id))
        doc["edges"] = [e for e in doc["edges"] if e["source"] != "research"]
        doc["edges"] += [edge("research", "check"), edge("check", "analysis")]

    _refused(
        run,
        "analysis",
        "changed the connections out of “research”|adds nodes before",
        version=_publish(pipeline, personas.owner, a_check_before_analysis),
    )


def test_the_variables_at_a_step_are_the_ones_the_walk_had_there(
    personas: Personas, pipeline
) -> None:
    run = run_with_steps(pipeline, [("research", DONE, 0, 1), ("analysis", DONE, 2, 3)])
    Step.objects.filter(run=run, key="research").update(variables={"findings": "F"})
    Step.objects.filter(run=run, key="analysis").update(variables={"analysis": "A"})
    point = fork_point(run=run, step_key="analysis")
    assert point.variables == {"topic": "kelp", "findings": "F", "analysis": None, "report": None}


@executed
def test_a_fork_after_parallel_branches_reuses_both_and_the_join(
    personas: Personas, executor, llm_server
) -> None:
    from tests.workflows.conftest import research_agents
    from workflows.graph.examples import parallel_research
    from workflows.services.workflows import workflow_create

    a, b, analyst = research_agents(personas)
    workflow = workflow_create(
        workspace=personas.workspace,
        user=personas.owner,
        name="Parallel",
        graph=parallel_research(str(a.pk), str(b.pk), str(analyst.pk)),
    )
    workflow_publish(workflow=workflow, user=personas.owner)
    parent = finished(run_start(workflow=workflow, user=personas.owner, inputs={"topic": "kelp"}))
    assert parent.status == RunStatus.SUCCEEDED, parent.reason
    assert len(llm_server.requests) == 3
    fork = finished(
        run_fork(run=parent, step_key="analysis", user=personas.owner, variables={"notes": "N"})
    )
    assert fork.status == RunStatus.SUCCEEDED, fork.reason
    assert len(llm_server.requests) == 4, "both branches and the join reused"
    assert "Analyse:\\nN" in _prompts(llm_server)[3]
    reused = set(Step.objects.filter(run=fork, reused=True).values_list("key", flat=True))
    assert reused == {"research-a[0]", "research-b[1]", "join"}


def test_a_team_step_is_forked_from_its_first_turn(personas: Personas, pipeline) -> None:
    run = run_with_steps(
        pipeline,
        [
            ("research", DONE, 0, 1),
            ("chat/turn-1", DONE, 2, 3),
            ("chat/select-2", DONE, 3, 4),
            ("chat/turn-2", DONE, 4, 5),
            ("chat", DONE, 5, 6),
            ("writing", DONE, 7, 8),
        ],
    )
    # The team records its own step after its turns: forking it runs the conversation again.
    assert [step.key for step in fork_point(run=run, step_key="chat").reused] == ["research"]
    after = fork_point(run=run, step_key="writing").reused
    assert [step.key for step in after] == [
        "research",
        "chat/turn-1",
        "chat/select-2",
        "chat/turn-2",
        "chat",
    ]


@executed
def test_a_person_s_answer_is_reused_before_the_fork_and_asked_again_at_it(
    personas: Personas, executor, llm_server
) -> None:
    from tests.workflows.conftest import research_agents
    from workflows.services.runs import run_answer
    from workflows.services.workflows import workflow_create

    drafter, shipper, redoer = research_agents(personas)

    def agent(node_id: str, agent_id: Any, template: str) -> dict[str, Any]:
        return node(node_id, "agent", 0, 0, agent_id=str(agent_id), input_template=template)

    doc = {
        "schema_version": 1,
        "nodes": [
            node("start", "start", 0, 0),
            agent("draft", drafter.pk, "Draft {{ topic }}"),
            node("check", "human", 0, 0, prompt="Ship it?", kind="approval"),
            agent("ship", shipper.pk, "Ship it"),
            agent("redo", redoer.pk, "Redo it"),
            node("end", "end", 0, 0),
        ],
        "edges": [
            edge("start", "draft"),
            edge("draft", "check"),
            edge("check", "ship", "approved"),
            edge("check", "redo", "rejected"),
            edge("ship", "end"),
            edge("redo", "end"),
        ],
        "variables": [],
        "inputs": {"fields": [{"name": "topic", "type": "text"}]},
    }
    workflow = workflow_create(
        workspace=personas.workspace, user=personas.owner, name="Approved", graph=doc
    )
    workflow_publish(workflow=workflow, user=personas.owner)
    parent = finished(run_start(workflow=workflow, user=personas.owner, inputs={"topic": "tea"}))
    assert parent.status == RunStatus.WAITING
    run_answer(run=parent, step_key="check", answer=True, user=personas.editor)
    parent = finished(parent)
    assert parent.status == RunStatus.SUCCEEDED, parent.reason
    assert len(llm_server.requests) == 2

    after = finished(run_fork(run=parent, step_key="ship", user=personas.owner))
    assert after.status == RunStatus.SUCCEEDED, "the answer was reused: nobody is asked"
    assert after.answered_by == {"check": "eddie"}
    assert len(llm_server.requests) == 3

    again = finished(run_fork(run=parent, step_key="check", user=personas.owner))
    assert again.status == RunStatus.WAITING, "the fork asks the person again"
    run_answer(run=again, step_key="check", answer=False, user=personas.owner)
    again = finished(again)
    assert again.status == RunStatus.SUCCEEDED, again.reason
    assert set(Step.objects.filter(run=again).values_list("key", flat=True)) == {
        "draft",
        "check",
        "redo",
    }
    assert len(llm_server.requests) == 4, "draft reused; only redo called"


def test_a_fork_of_a_fork_keeps_the_edits_made_before_its_point(
    personas: Personas, pipeline, settings
) -> None:
    settings.EXECUTION_MODE = "celery"  # queued only: what is written is the point here
    first = run_with_steps(
        pipeline, [("research", DONE, 0, 1), ("analysis", DONE, 2, 3), ("writing", DONE, 4, 5)]
    )
    Step.objects.filter(run=first, key="research").update(variables={"findings": "R"})
    first.fork_edits = [
        {"step": "analysis", "variables": {"findings": "X"}, "before": ["research"]}
    ]
    first.save(update_fields=["fork_edits"])

    assert fork_point(run=first, step_key="analysis").variables["findings"] == "X"
    assert fork_point(run=first, step_key="writing").variables["findings"] == "X"
    earlier = fork_point(run=first, step_key="research")
    assert earlier.inherited == [] and earlier.variables["findings"] is None

    same = run_fork(run=first, step_key="analysis", user=None, variables={"analysis": "Y"})
    assert same.fork_edits == [
        {
            "step": "analysis",
            "variables": {"findings": "X", "analysis": "Y"},
            "before": ["research"],
        }
    ]
    later = run_fork(run=first, step_key="writing", user=None)
    assert later.fork_edits == first.fork_edits
    assert later.variables["findings"] == "X"
