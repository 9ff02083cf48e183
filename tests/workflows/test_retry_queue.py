"""A step that meets a model's rate limit waits in line for capacity instead of failing, shown on
the run page with its place in line; higher-priority runs are served first; a wait longer than
the agent's max wait fails the step with the reason."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from agents.llm import gateway as gateway_module
from agents.llm.capacity import RedisCapacity
from agents.llm.gateway import configure_gateways
from agents.models import Agent, LedgerEntry, Provider
from tests.agents.factories import make_agent, make_provider
from tests.conftest import Personas
from tests.support.waiting import wait_for
from tests.workflows.conftest import finished
from workflows.graph import examples
from workflows.models import Run, RunPriority, RunStatus, Workflow
from workflows.selectors import run_capacity_wait
from workflows.services.runs import run_start
from workflows.services.workflows import workflow_create, workflow_publish

pytestmark = pytest.mark.django_db(transaction=True)

WINDOW_S = 3


@pytest.fixture
def short_minutes() -> Iterator[None]:
    """Rate windows of a few seconds instead of a minute, so a test sees one pass."""
    before = dict(gateway_module._defaults)
    shortened: dict[str, Any] = {**before, "rate_window_s": WINDOW_S}
    shared = before.get("capacity")
    if shared is not None:  # the distributed mode's limits, in Redis
        shortened["capacity"] = RedisCapacity(
            shared.url,
            listener=shared.listener,
            window_s=WINDOW_S,
            key_prefix=f"a2a:test:{uuid.uuid4().hex}:",
        )
    configure_gateways(**shortened)
    yield
    configure_gateways(**before)


def _one_step(personas: Personas, agent: Agent, name: str) -> Workflow:
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
        workspace=personas.workspace, user=personas.owner, name=name, graph=graph
    )
    workflow_publish(workflow=workflow, user=personas.owner)
    return workflow


def _limited(personas: Personas, **agent_config: Any) -> tuple[Provider, Agent]:
    provider = make_provider(personas.workspace, name="Limited", rpm_limit=2)
    return provider, make_agent(personas.workspace, provider=provider, **agent_config)


def _first_call(run: Run) -> Any:
    return LedgerEntry.objects.filter(run_id=run.pk).order_by("started_at").first().started_at


def test_three_runs_on_an_rpm_of_two_all_finish_in_priority_order(
    personas: Personas, executor: Any, llm_server: Any, short_minutes: None
) -> None:
    _, agent = _limited(personas)
    workflow = _one_step(personas, agent, "Answer")
    # Two calls fill the window: every run launched next must wait for it.
    for _ in range(2):
        assert finished(run_start(workflow=workflow, user=personas.owner, inputs={"topic": "a"}))
    runs = {
        priority: run_start(
            workflow=workflow, user=personas.owner, inputs={"topic": priority}, priority=priority
        )
        for priority in ("low", "normal", "high")
    }

    low = runs["low"]

    def low_waits_behind_the_others() -> dict[str, Any] | None:
        low.refresh_from_db()
        waiting = run_capacity_wait(low)
        return waiting if waiting is not None and waiting["position"] == 3 else None

    # Launched first, it is put behind the two of higher priority that came after it.
    waiting = wait_for(low_waits_behind_the_others, timeout=10, what="the low run to wait")
    assert waiting["deployment"] == "Limited"

    done = {priority: finished(run, timeout=30) for priority, run in runs.items()}
    assert {run.status for run in done.values()} == {RunStatus.SUCCEEDED}
    assert done["high"].priority == RunPriority.HIGH
    # Served in priority order: high, then normal, then low (one window later).
    starts = {priority: _first_call(run) for priority, run in done.items()}
    assert starts["high"] <= starts["normal"] < starts["low"]
    # The transcript says it waited, and where it stood.
    notes = [
        event.data["message"]
        for event in done["low"].events.filter(kind="log")
        if "capacity" in event.data
    ]
    assert notes and notes[0].startswith("Waiting for capacity on Limited: position")


def test_a_wait_longer_than_the_agents_max_wait_fails_the_step_with_the_reason(
    personas: Personas, executor: Any, llm_server: Any, short_minutes: None
) -> None:
    _, agent = _limited(personas, max_queue_wait_s=1)
    workflow = _one_step(personas, agent, "Impatient")
    for _ in range(2):
        assert finished(run_start(workflow=workflow, user=personas.owner, inputs={"topic": "a"}))

    run = finished(run_start(workflow=workflow, user=personas.owner, inputs={"topic": "b"}))

    assert run.status == RunStatus.FAILED
    assert "no capacity on Limited within 1 s of waiting" in run.reason
    assert not LedgerEntry.objects.filter(run_id=run.pk).exists()


def test_a_launch_names_a_bad_priority(personas: Personas, llm_server: Any) -> None:
    from django.core.exceptions import ValidationError

    _, agent = _limited(personas)
    workflow = _one_step(personas, agent, "Any")
    with pytest.raises(ValidationError, match="expected low, normal or high"):
        run_start(workflow=workflow, user=personas.owner, inputs={"topic": "a"}, priority="top")
