"""What a run's calls cost, or that their price is not known: never a silent zero."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from agents.models import LedgerEntry
from tests.agents.factories import make_agent, make_provider
from tests.conftest import Personas
from tests.workflows.conftest import finished
from workflows.graph import examples
from workflows.services.runs import run_start
from workflows.services.workflows import workflow_create, workflow_publish

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(
    ("model", "source"), [("gpt-4o-mini", "price_list"), ("house-llama", "unknown")]
)
def test_a_gateway_call_is_priced_by_its_model_or_said_to_be_unknown(
    personas: Personas, llm_server: Any, executor: Any, client_for: Any, model: str, source: str
) -> None:
    # An OpenAI-compatible gateway: gpt-4o-mini has a public price, a house model has none.
    gateway = make_provider(
        personas.workspace,
        kind="openai_compatible",
        name="Gateway",
        base_url=f"{llm_server.url}/v1",
    )
    ids = [
        str(
            make_agent(
                personas.workspace,
                name=name,
                provider=gateway,
                model={"provider_id": str(gateway.pk), "model": model},
            ).pk
        )
        for name in ("Researcher", "Analyst", "Writer")
    ]
    workflow = workflow_create(
        workspace=personas.workspace,
        user=personas.owner,
        name="Priced",
        graph=examples.research_pipeline(*ids),
    )
    workflow_publish(workflow=workflow, user=personas.owner)

    run = finished(run_start(workflow=workflow, user=personas.owner, inputs={"topic": "tea"}))

    assert run.status == "succeeded", run.reason
    entries = LedgerEntry.objects.filter(run_id=run.pk)
    assert {entry.price_source for entry in entries} == {source}
    page = client_for(personas.viewer).get(reverse("run_detail", args=[run.pk])).content.decode()
    if source == "price_list":
        assert run.cost > 0
        assert "price unknown" not in page
    else:
        assert run.cost == 0
        assert "price unknown" in page
        assert "3 calls with no known price" in page
        # The note links to the card where that model's prices are set.
        assert f"/agents/providers/{gateway.pk}/?model=house-llama#prices" in page


def test_local_models_are_free_and_say_so(personas: Personas, pipeline: Any, executor: Any):
    run = finished(run_start(workflow=pipeline, user=personas.owner, inputs={"topic": "tea"}))

    assert {entry.price_source for entry in LedgerEntry.objects.filter(run_id=run.pk)} == {"free"}
