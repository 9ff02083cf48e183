"""Model policies in real runs: the chosen model is called, and the choice is in the transcript,
the ledger and the trace."""

from __future__ import annotations

from typing import Any

import pytest

from agents.models import LedgerEntry
from monitoring.trace.spans import run_trace
from tests.agents.factories import make_agent, make_provider
from tests.conftest import Personas
from tests.workflows.conftest import finished
from workflows.graph.examples import edge, node
from workflows.models import Run, RunStatus, Workflow
from workflows.services.runs import run_start
from workflows.services.workflows import workflow_create, workflow_publish


def one_agent_workflow(personas: Personas, policy: dict[str, Any]) -> Workflow:
    provider = make_provider(personas.workspace)
    for rule in policy.get("rules", []):
        rule["use"]["provider_id"] = str(provider.pk)
    for name in ("classifier", "complex_model"):
        if name in policy:
            policy[name]["provider_id"] = str(provider.pk)
    helper = make_agent(
        personas.workspace, name="Helper", provider=provider, role="a helper", model_policy=policy
    )
    graph = {
        "schema_version": 1,
        "nodes": [
            node("start", "start", 0, 0),
            node("answer", "agent", 0, 0, agent_id=str(helper.pk)),
            node("end", "end", 0, 0),
        ],
        "edges": [edge("start", "answer"), edge("answer", "end")],
        "inputs": {"fields": [{"name": "topic", "type": "text"}]},
    }
    workflow = workflow_create(
        workspace=personas.workspace, user=personas.owner, name="Helper", graph=graph
    )
    workflow_publish(workflow=workflow, user=personas.owner)
    return workflow


def launched(workflow: Workflow, personas: Personas, topic: str) -> Run:
    run = finished(run_start(workflow=workflow, user=personas.owner, inputs={"topic": topic}))
    assert run.status == RunStatus.SUCCEEDED, run.reason
    return run


@pytest.mark.django_db(transaction=True)
def test_a_rule_sends_long_inputs_to_the_larger_model(
    personas: Personas, llm_server: Any, executor: Any
) -> None:
    rule = {"when": "input_longer_than", "value": 40, "use": {"model": "demo-fast"}}
    workflow = one_agent_workflow(personas, {"kind": "rules", "rules": [rule]})

    short = launched(workflow, personas, "tea")
    long = launched(workflow, personas, "the history of tea in every country " * 3)

    assert list(LedgerEntry.objects.filter(run_id=short.pk).values_list("model", flat=True)) == [
        "demo"
    ]
    [call] = LedgerEntry.objects.filter(run_id=long.pk)
    assert call.model == "demo-fast"
    reason = "rule 1 (input longer than 40 characters) → demo-fast"
    assert call.source["model_policy"] == reason
    [message] = long.events.filter(kind="message")
    assert message.data["usage"]["policy"] == reason
    assert message.data["usage"]["model"] == "demo-fast"
    spans = [span for span in run_trace(long).by_id.values() if span.kind == "call"]
    assert [span.detail.endswith(f"model policy: {reason}") for span in spans] == [True]


@pytest.mark.django_db(transaction=True)
def test_a_classifier_sorts_turns_into_simple_and_complex(
    personas: Personas, llm_server: Any, executor: Any
) -> None:
    llm_server.set_script(
        {
            "rules": [
                {
                    "system_contains": "You sort requests",
                    "last_message_contains": "proof",
                    "reply": "complex",
                },
                {"system_contains": "You sort requests", "reply": "simple"},
            ]
        }
    )
    policy = {
        "kind": "classifier",
        "classifier": {"model": "demo-fast"},
        "complex_model": {"model": "gpt-4o-mini"},
    }
    workflow = one_agent_workflow(personas, policy)

    simple = launched(workflow, personas, "say hello")
    hard = launched(workflow, personas, "a proof that there are infinitely many primes")

    def calls(run: Run) -> list[tuple[str, str]]:
        rows = LedgerEntry.objects.filter(run_id=run.pk).order_by("started_at")
        return [(row.model, row.source.get("purpose", "turn")) for row in rows]

    assert calls(simple) == [("demo-fast", "model policy classifier"), ("demo", "turn")]
    assert calls(hard) == [("demo-fast", "model policy classifier"), ("gpt-4o-mini", "turn")]
    [message] = hard.events.filter(kind="message")
    assert message.data["usage"]["policy"] == "classifier: complex → gpt-4o-mini"
    # The classifier's call is part of the turn: counted in the run and drawn in the trace.
    assert hard.model_calls == 2
    names = [span.name for span in run_trace(hard).by_id.values() if span.kind == "call"]
    assert names == ["demo-fast (model policy classifier)", "gpt-4o-mini"]
