"""Gateway middleware in a real run: every call of the run passes through the workspace's hooks."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from agents.models import LedgerEntry
from monitoring.trace.spans import run_trace
from tests.agents.test_gateway_middleware_page import CARD, management, row
from tests.conftest import Personas
from tests.workflows.conftest import finished
from workflows.services.runs import run_start


@pytest.mark.django_db(transaction=True)
def test_a_run_passes_through_the_workspace_hooks(
    personas: Personas, pipeline: Any, llm_server: Any, executor: Any, client_for: Any
) -> None:
    llm_server.set_script({"rules": [{"reply": "Card on file: 4111 1111 1111 1111."}]})
    data = {
        **management(3),
        **row(0, kind="preamble", value="Follow the data policy.", apply_to="both"),
        **row(1, kind="redact", value=CARD, replacement="[card]", apply_to="both"),
        **row(2, kind="log", apply_to="both"),
    }
    assert client_for(personas.owner).post(reverse("gateway_middleware"), data).status_code == 302

    run = finished(run_start(workflow=pipeline, user=personas.owner, inputs={"topic": "cards"}))
    assert run.status == "succeeded", run.reason
    texts = [event.data["text"] for event in run.events.filter(kind="message")]
    assert texts and all(text == "Card on file: [card]." for text in texts)
    systems = [request["body"]["messages"][0]["content"] for request in llm_server.requests]
    assert all(system.startswith("Follow the data policy.\n\n") for system in systems)
    note = "hook 1: preamble added; hook 2: 0 redacted from the prompt; hook 2: outputs checked"
    first = LedgerEntry.objects.filter(run_id=run.pk).order_by("started_at").first()
    assert first is not None and first.source["middleware"] == note
    details = [s.detail for s in run_trace(run).by_id.values() if s.kind == "call"]
    assert details and details[0].endswith(f"middleware: {note}")
