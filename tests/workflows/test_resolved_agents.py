"""An executor resolves a workspace's agents, route plans and tool host policy once and shares them
with the runs that follow, until something they were resolved from changes: every such change
moves the workspace's runtime stamp, which each run reads as it loads."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from a2a_site.accounts.models import Workspace
from agents.models import Agent, LedgerEntry, OllamaNode, Provider, ToolHostPolicy
from agents.services.agents import agent_update
from agents.services.providers import ProviderInput, provider_update
from tests.conftest import Personas
from tests.workflows.conftest import finished
from workflows import runtime
from workflows.models import Run
from workflows.services.runs import run_start

pytestmark = pytest.mark.django_db(transaction=True)


def _stamp(personas: Personas) -> int:
    return Workspace.objects.get(pk=personas.workspace.pk).runtime_stamp


@pytest.fixture
def resolutions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The agents each run had to resolve from the database (the process cache emptied)."""
    runtime.resolved_forget()
    loads: list[str] = []
    original = runtime.DjangoAgentRunner._load

    def counted(self: Any, agent_id: str) -> Any:
        loads.append(agent_id)
        return original(self, agent_id)

    monkeypatch.setattr(runtime.DjangoAgentRunner, "_load", counted)
    yield loads
    runtime.resolved_forget()


def _run(pipeline: Any, personas: Personas) -> Run:
    run = finished(run_start(workflow=pipeline, user=personas.owner, inputs={"topic": "tea"}))
    assert run.status == "succeeded", run.reason
    return run


def _speakers(run: Run) -> list[str]:
    return [e.data["agent"] for e in run.events.filter(kind="message").order_by("seq")]


def test_runs_of_an_unchanged_workspace_share_what_the_first_resolved(
    personas: Personas, pipeline: Any, executor: Any, resolutions: list[str]
) -> None:
    _run(pipeline, personas)
    assert len(resolutions) == 1  # one load resolves every agent the version pinned

    second = _run(pipeline, personas)
    third = _run(pipeline, personas)

    assert len(resolutions) == 1
    assert _speakers(second) == _speakers(third) == ["Researcher", "Analyst", "Writer"]


def test_an_agent_changed_between_runs_moves_the_stamp_and_is_resolved_again(
    personas: Personas, pipeline: Any, executor: Any, resolutions: list[str]
) -> None:
    _run(pipeline, personas)
    before = _stamp(personas)
    analyst = Agent.objects.get(workspace=personas.workspace, name="Analyst")
    version = analyst.versions.get(number=analyst.latest_version)
    agent_update(
        agent=analyst,
        user=personas.owner,
        name="Analyst",
        description="Sharper now",
        config={**version.config, "temperature": 0.2},
        known_tools=[],
    )

    _run(pipeline, personas)

    assert _stamp(personas) > before
    assert len(resolutions) == 2


def test_a_provider_changed_between_runs_routes_the_next_run_by_its_new_settings(
    personas: Personas, pipeline: Any, executor: Any, resolutions: list[str]
) -> None:
    first = _run(pipeline, personas)
    provider = Provider.objects.get(workspace=personas.workspace, kind="demo")
    provider_update(
        provider=provider,
        data=ProviderInput(
            kind="demo",
            name=provider.name,
            input_price_per_1k=Decimal("1"),
            output_price_per_1k=Decimal("1"),
        ),
    )

    priced = _run(pipeline, personas)

    assert len(resolutions) == 2
    costs = [e.cost for e in LedgerEntry.objects.filter(run_id=first.pk)]
    assert not any(costs)
    assert all(e.cost > 0 for e in LedgerEntry.objects.filter(run_id=priced.pk))


def test_every_change_a_run_resolves_from_moves_the_stamp(personas: Personas) -> None:
    from tests.agents.factories import make_agent, make_provider

    stamps = [_stamp(personas)]

    def moved() -> bool:
        stamps.append(_stamp(personas))
        return stamps[-1] > stamps[-2]

    provider = make_provider(personas.workspace)
    assert moved()
    agent = make_agent(personas.workspace, name="Stamped", provider=provider)
    assert moved()
    fleet = Provider.objects.create(
        workspace=personas.workspace, kind="ollama", name="Fleet", base_url=""
    )
    node = OllamaNode.objects.create(provider=fleet, name="gpu-1", base_url="http://gpu-1:11434")
    assert moved()
    node.enabled = False
    node.save()
    assert moved()
    ToolHostPolicy.objects.create(workspace=personas.workspace, hosts=[], public_hosts=False)
    assert moved()
    agent.delete()
    assert moved()
    # Another workspace's changes leave this one's stamp alone.
    make_provider(personas.other_workspace, name="Elsewhere")
    assert not moved()
