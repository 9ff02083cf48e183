"""Token, cost and time limits hold during a call: a streamed answer is stopped at the chunk that
reaches the limit (its text kept and marked), a call with nothing to keep is cancelled at the
time limit, and a cost limit over a model without a known price refuses the call."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import pytest
from django.db.models import Sum

from agents.models import Agent, LedgerEntry, Provider
from tests.agents.factories import make_agent, make_provider
from tests.conftest import Personas
from tests.workflows.conftest import finished
from workflows.graph import examples
from workflows.models import Run, RunStatus, Workflow
from workflows.services.runs import run_start
from workflows.services.workflows import workflow_create, workflow_publish

pytestmark = pytest.mark.django_db(transaction=True)

# 50 chunks of 40 characters: 10 tokens each, as the gateway counts an answer it stopped.
CHUNK_CHARS = 40
CHUNK_TOKENS = CHUNK_CHARS // 4
LONG_REPLY = "abcdefghi " * 200
# gpt-4o-mini's output price in the bundled price list, USD per token.
OUTPUT_PRICE = Decimal("0.0000006")


def _long_answers(llm_server: Any, **extra: Any) -> None:
    """Every agent answers at length, in equal chunks, and ignores `max_tokens` (as some servers
    do): only the client's own metering can stop it."""
    rule = {"reply": LONG_REPLY, "chunks": 50, "ignore_max_tokens": True, **extra}
    llm_server.set_script({"models": ["demo", "gpt-4o-mini", "house-model"], "rules": [rule]})


def _workflow(personas: Personas, agents: list[Agent], **settings: Any) -> Workflow:
    graph = examples.research_pipeline(*(str(agent.pk) for agent in agents))
    graph["settings"] = settings
    workflow = workflow_create(
        workspace=personas.workspace, user=personas.owner, name="Limited", graph=graph
    )
    workflow_publish(workflow=workflow, user=personas.owner)
    return workflow


def _agents(personas: Personas, provider: Provider, model: str = "demo", **config: Any):
    return [
        make_agent(
            personas.workspace,
            name=name,
            provider=provider,
            model={"provider_id": str(provider.pk), "model": model},
            **config,
        )
        for name in ("Researcher", "Analyst", "Writer")
    ]


def _gateway(personas: Personas, llm_server: Any) -> Provider:
    return make_provider(
        personas.workspace,
        kind="openai_compatible",
        name="Gateway",
        base_url=f"{llm_server.url}/v1",
    )


def _run(workflow: Workflow, personas: Personas, timeout: float = 60) -> Run:
    return finished(
        run_start(workflow=workflow, user=personas.owner, inputs={"topic": "tea"}), timeout
    )


def _ledger(run: Run) -> tuple[int, Decimal]:
    totals = LedgerEntry.objects.filter(run_id=run.pk).aggregate(
        prompt=Sum("prompt_tokens"), completion=Sum("completion_tokens"), cost=Sum("cost")
    )
    return (totals["prompt"] or 0) + (totals["completion"] or 0), totals["cost"] or Decimal(0)


def _stopped_messages(run: Run) -> list[dict[str, Any]]:
    return [e.data for e in run.events.filter(kind="message") if e.data.get("stopped")]


def test_a_token_budget_stops_the_streamed_answer_within_one_chunk(
    personas: Personas, executor: Any, llm_server: Any
) -> None:
    _long_answers(llm_server)
    workflow = _workflow(
        personas, _agents(personas, make_provider(personas.workspace)), token_budget=200
    )

    run = _run(workflow, personas)

    assert run.status == RunStatus.FAILED
    assert "The run's token budget of 200 was reached: the answer was cut short." in run.reason
    tokens, _ = _ledger(run)
    # Stopped at the limit (less the margin kept for a tokenizer counting the prompt higher).
    assert 150 < tokens <= 200 + CHUNK_TOKENS
    # The partial answer is kept, marked as cut, and the run went no further.
    (cut,) = _stopped_messages(run)
    assert cut["agent"] == "Researcher"
    assert LONG_REPLY.startswith(cut["text"]) and 0 < len(cut["text"]) < len(LONG_REPLY)
    assert LedgerEntry.objects.filter(run_id=run.pk).count() == 1


def test_a_run_cost_budget_stops_the_answer_within_one_chunk(
    personas: Personas, executor: Any, llm_server: Any
) -> None:
    _long_answers(llm_server)
    agents = _agents(personas, _gateway(personas, llm_server), model="gpt-4o-mini")
    workflow = _workflow(personas, agents, cost_budget_usd=0.0001)

    run = _run(workflow, personas)

    assert run.status == RunStatus.FAILED
    assert "The run's cost budget of $0.0001 was reached" in run.reason
    _, cost = _ledger(run)
    assert Decimal("0.00008") < cost
    assert cost <= Decimal("0.0001") + CHUNK_TOKENS * OUTPUT_PRICE
    assert len(_stopped_messages(run)) == 1


def test_an_agents_cost_budget_per_run_is_enforced(
    personas: Personas, executor: Any, llm_server: Any
) -> None:
    _long_answers(llm_server)
    agents = _agents(
        personas, _gateway(personas, llm_server), model="gpt-4o-mini", cost_budget_usd=0.0001
    )
    run = _run(_workflow(personas, agents), personas)

    assert run.status == RunStatus.FAILED
    assert "Researcher's cost budget per run of $0.0001 was reached" in run.reason
    _, cost = _ledger(run)
    assert cost <= Decimal("0.0001") + CHUNK_TOKENS * OUTPUT_PRICE


def test_an_agents_cost_budget_refuses_a_call_it_cannot_afford(
    personas: Personas, executor: Any, llm_server: Any
) -> None:
    llm_server.set_script({"rules": [{"reply": "Short."}]})
    agents = _agents(
        personas, _gateway(personas, llm_server), model="gpt-4o-mini", cost_budget_usd=0
    )
    run = _run(_workflow(personas, agents), personas)

    assert run.status == RunStatus.FAILED
    assert "Researcher's cost budget per run of $0" in run.reason
    assert "so it was not made" in run.reason
    assert not LedgerEntry.objects.filter(run_id=run.pk).exists()


def test_a_cost_limit_refuses_a_model_whose_price_is_not_known(
    personas: Personas, executor: Any, llm_server: Any
) -> None:
    _long_answers(llm_server)
    agents = _agents(personas, _gateway(personas, llm_server), model="house-model")
    run = _run(_workflow(personas, agents, cost_budget_usd=5), personas)

    assert run.status == RunStatus.FAILED
    assert "the price of house-model is not known, so the call was not made" in run.reason
    assert not LedgerEntry.objects.filter(run_id=run.pk).exists()


def test_a_time_limit_interrupts_a_streamed_call_and_keeps_its_text(
    personas: Personas, executor: Any, llm_server: Any
) -> None:
    # 50 chunks, 100 ms apart: five seconds of answer against a two-second limit.
    _long_answers(llm_server, chunk_delay_ms=100)
    workflow = _workflow(
        personas, _agents(personas, make_provider(personas.workspace)), timeout_s=2
    )

    began = time.monotonic()
    run = _run(workflow, personas)
    took = time.monotonic() - began

    assert run.status == RunStatus.FAILED
    assert run.reason.startswith("Run timed out after 2 s")
    assert took < 4.5
    (cut,) = _stopped_messages(run)
    assert 0 < len(cut["text"]) < len(LONG_REPLY)


def test_a_time_limit_cancels_a_call_with_nothing_to_keep(
    personas: Personas, executor: Any, llm_server: Any
) -> None:
    llm_server.set_script({"rules": [{"reply": "Late.", "delay_ms": 8000}]})
    workflow = _workflow(
        personas, _agents(personas, make_provider(personas.workspace)), timeout_s=2
    )

    began = time.monotonic()
    run = _run(workflow, personas)
    took = time.monotonic() - began

    assert run.status == RunStatus.FAILED
    assert run.reason == "Run timed out after 2 s"
    assert took < 5
    entry = LedgerEntry.objects.get(run_id=run.pk)
    assert entry.status == "failed"
