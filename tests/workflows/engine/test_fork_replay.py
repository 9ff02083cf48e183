"""A fork is replay: reused steps are skipped, the edited variables are set at the fork step."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.workflows.engine.conftest import Harness, agent, chain, edge, graph, node, var
from workflows.engine.contracts import ForkEdit, StepRecord

pytestmark = pytest.mark.asyncio


def reused(key: str, output: str, **variables: Any) -> StepRecord:
    return StepRecord(key, re.split(r"[@[]", key)[0], output, None, variables)


def edit(step: str, before: set[str], **variables: Any) -> tuple[ForkEdit, ...]:
    return (ForkEdit(step, variables, frozenset(before)),)


def pipeline() -> dict[str, Any]:
    return chain(
        agent("research", "ann", "Research {{ topic }}", output_variable="findings"),
        agent("analysis", "bob", "Analyse {{ findings }}", output_variable="analysis"),
        agent("writing", "cy", "Write {{ analysis }}", output_variable="report"),
        output="report",
        variables=[var("findings"), var("analysis"), var("report")],
    )


async def test_a_fork_runs_from_its_step_with_the_edited_value(harness: Harness) -> None:
    run = harness.add(
        pipeline(), fork_edits=edit("analysis", {"research"}, findings="edited notes")
    )
    run.completed["research"] = reused("research", "old notes", findings="old notes")
    outcome = await harness.run()
    assert outcome.status == "succeeded"
    assert harness.agents.keys == ["analysis", "writing"], "research is reused, not run"
    prompt = harness.agents.calls[0].history[0]["content"]
    assert prompt == "Analyse edited notes"


async def test_a_resumed_fork_sets_the_edit_again_before_its_own_steps(harness: Harness) -> None:
    run = harness.add(
        pipeline(), fork_edits=edit("analysis", {"research"}, findings="edited notes")
    )
    run.completed["research"] = reused("research", "old notes", findings="old notes")
    # The fork already ran its step (then its worker died): its own update comes after the edit.
    run.completed["analysis"] = StepRecord("analysis", "analysis", "A", None, {"analysis": "A"})
    await harness.run()
    assert harness.agents.keys == ["writing"]
    assert harness.agents.calls[0].history[0]["content"] == "Write A"


async def test_a_reused_sibling_branch_leaves_the_edited_variable_alone(harness: Harness) -> None:
    doc = graph(
        [
            node("start", "start", 0, 0),
            node("fan", "parallel", 0, 0),
            agent("a", "ann", "A {{ topic }}", output_variable="notes"),
            agent("a2", "bob", "A2 sees {{ notes }}"),
            agent("b", "cy", "B {{ topic }}", output_variable="notes"),
            node("join", "join", 0, 0, strategy="concatenate"),
            agent("final", "dee", "Final sees {{ notes }}"),
            node("end", "end", 0, 0),
        ],
        [
            edge("start", "fan"),
            edge("fan", "a"),
            edge("a", "a2"),
            edge("fan", "b"),
            edge("a2", "join"),
            edge("b", "join"),
            edge("join", "final"),
            edge("final", "end"),
        ],
        [var("notes", "array", "append")],
    )
    run = harness.add(doc, fork_edits=edit("a2[0]", {"a[0]", "b[1]"}, notes=["mine"]))
    run.completed["a[0]"] = reused("a[0]", "from a", notes="from a")
    run.completed["b[1]"] = reused("b[1]", "from b", notes="from b")
    await harness.run()
    assert harness.agents.keys == ["a2[0]", "final"]
    prompts = [call.history[0]["content"] for call in harness.agents.calls]
    # The edit already holds b's note (b finished before a2 started): not added twice.
    assert prompts == ['A2 sees ["mine"]', 'Final sees ["mine"]']


async def test_a_loop_before_the_fork_step_sees_the_values_it_saw(harness: Harness) -> None:
    doc = graph(
        [
            node("start", "start", 0, 0),
            node(
                "again",
                "loop",
                0,
                0,
                max_iterations=5,
                condition={
                    "kind": "variable_predicate",
                    "variable": "done",
                    "operator": "truthy",
                },
            ),
            agent("draft", "ann", "Draft {{ input }}"),
            agent("check", "bob", "Check {{ input }}", output_variable="done"),
            node("end", "end", 0, 0),
        ],
        [
            edge("start", "again"),
            edge("again", "draft", "loop"),
            edge("draft", "check"),
            edge("check", "again"),
            edge("again", "end", "done"),
        ],
        [var("done")],
    )
    # Forked at the second draft with `done` edited to stop after it: the first lap replays
    # under the values it had, so the walk still reaches the fork step.
    before = {"draft@again:0", "check@again:0"}
    run = harness.add(doc, fork_edits=edit("draft@again:1", before, done="yes"))
    run.completed["draft@again:0"] = reused("draft@again:0", "d0")
    run.completed["check@again:0"] = reused("check@again:0", "", done="")
    outcome = await harness.run()
    assert outcome.status == "succeeded", outcome.reason
    assert harness.agents.keys[0] == "draft@again:1"


async def test_a_fork_of_a_fork_sets_each_edit_where_it_was_made(harness: Harness) -> None:
    edits = (
        ForkEdit("analysis", {"findings": "first edit"}, frozenset({"research"})),
        ForkEdit("writing", {"analysis": "second edit"}, frozenset({"research", "analysis"})),
    )
    run = harness.add(pipeline(), fork_edits=edits)
    run.completed["research"] = reused("research", "R", findings="R")
    # Run by the first fork after its edit: its update is its own, so it is applied.
    run.completed["analysis"] = reused("analysis", "A", analysis="A", findings="from analysis")
    await harness.run()
    assert harness.agents.keys == ["writing"]
    assert harness.agents.calls[0].history[0]["content"] == "Write second edit"
    assert harness.store.runs["r1"].completed["writing"].variables == {"report": "Cy @ writing"}
