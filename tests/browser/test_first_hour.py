"""The first hour, walked whole on a fresh database as a newcomer would: sign up, a provider tested
before it is saved, three agents, the workflow's inputs defined in the builder, a pipeline drawn
and published, a run watched with its transcript in view, a reload in the middle of a message, and
the run found again in the history."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from a2a_site.accounts.services import signup_token
from agents.models import Agent, Provider
from tests.browser.conftest import screenshot
from tests.browser.test_builder import connect, drag_to_canvas, graph_of, new_nodes, node
from tests.support.processes import ServerProcess
from workflows.models import Run, Workflow

pytestmark = [pytest.mark.browser, pytest.mark.services, pytest.mark.slow]

REPLY = (
    "Alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho "
    "sigma tau upsilon."
)
AGENTS = (
    ("Researcher", "a meticulous researcher"),
    ("Analyst", "a sharp analyst"),
    ("Writer", "a clear writer"),
)


def test_the_first_hour(page: Any, demo_model: Any, worker: ServerProcess) -> None:
    demo_model.reset()
    demo_model.set_script({"rules": [{"reply": REPLY, "chunks": 24, "chunk_delay_ms": 150}]})
    page.set_viewport_size({"width": 1440, "height": 900})

    # Sign up: a username and an address, then the link the e-mail carries.
    page.goto("/")
    page.get_by_role("link", name="Create an account").click()
    page.get_by_label("Username").fill("maya")
    page.get_by_label("Email").fill("maya@example.com")
    page.get_by_role("button", name="Create account").click()
    page.get_by_test_id("signup-sent").wait_for()
    page.goto(
        reverse("signup_confirm", args=[signup_token(username="maya", email="maya@example.com")])
    )
    page.get_by_label("Password:", exact=True).fill("a-long-passphrase-42")
    page.get_by_label("Password confirmation").fill("a-long-passphrase-42")
    page.get_by_role("button", name="Create account").click()
    page.get_by_label("Workspace name").fill("Maya's studio")
    page.get_by_role("button", name="Create workspace").click()
    page.get_by_role("heading", name="Maya's studio").wait_for()
    screenshot(page, "90-first-hour-workspace")

    # A provider, tested before it is saved.
    nav = page.get_by_role("navigation", name="Sections")
    nav.get_by_role("link", name="Providers").click()
    page.get_by_role("link", name="Add your first provider").click()
    page.get_by_test_id("kind-demo").click()
    page.get_by_test_id("provider-test-button").click()
    page.locator("#provider-test .badge-ok").wait_for()
    assert not Provider.objects.exists(), "a test stores nothing"
    screenshot(page, "91-first-hour-provider-tested")
    page.get_by_role("button", name="Save provider").click()
    provider = Provider.objects.get()

    # Three agents, the first from the provider's own page.
    page.get_by_role("link", name="Create an agent with this provider").click()
    for index, (name, role) in enumerate(AGENTS):
        if index:
            nav.get_by_role("link", name="Agents", exact=True).click()
            page.get_by_role("link", name="New agent").click()
        page.get_by_label("Name", exact=True).fill(name)
        page.get_by_label("Role").fill(role)
        page.get_by_label("Provider", exact=True).select_option(str(provider.pk))
        page.get_by_label("Model", exact=True).fill("demo")
        page.get_by_role("button", name="Create agent").click()
        page.get_by_role("heading", name=name).wait_for()
    agents = {agent.name: str(agent.pk) for agent in Agent.objects.all()}
    assert sorted(agents) == ["Analyst", "Researcher", "Writer"]

    # A workflow: its input defined, its agents drawn and wired, then published.
    nav.get_by_role("link", name="Workflows").click()
    page.get_by_role("link", name="Draw a new workflow").click()
    page.get_by_label("Name").fill("Briefing")
    page.get_by_role("button", name="Create and open the builder").click()
    page.locator('workflow-builder[data-ready="true"]').wait_for()
    page.get_by_test_id("edit-interface").click()
    dialog = page.locator("#interface-dialog")
    first = dialog.get_by_test_id("input-row-0")
    first.get_by_label("Name").fill("topic")
    first.get_by_label("Label").fill("Topic")
    first.get_by_label("Description").fill("What the briefing is about.")
    dialog.get_by_role("button", name="Apply").click()
    dialog.get_by_test_id("interface-status").get_by_text("Applied to the draft").wait_for()
    dialog.get_by_role("button", name="Close").click()
    ids = []
    for index, (name, _) in enumerate(AGENTS):
        before = {n["id"] for n in graph_of(page)["nodes"]}
        drag_to_canvas(
            page, page.get_by_test_id(f"palette-agent-{agents[name]}"), 0.3, 0.25 + index * 0.2
        )
        (added,) = new_nodes(page, before)
        ids.append(added)
    chain = ["start", *ids, "end"]
    for source, target in zip(chain, chain[1:], strict=False):
        connect(page, source, target)
    page.get_by_role("button", name="Auto-layout").click()
    page.get_by_test_id("checklist-ok").wait_for()
    page.locator('#save-status[data-state="saved"]').wait_for()
    assert node(page, ids[0]).is_visible()
    screenshot(page, "92-first-hour-builder")
    page.get_by_role("button", name="Publish…").click()
    page.locator("#publish-dialog").get_by_role("button", name="Publish").click()
    page.locator("#import-report", has_text="Published version 1").wait_for()
    workflow = Workflow.objects.get(name="Briefing")

    # The run, launched from the workflow's page and watched with its transcript in view.
    page.goto(reverse("workflow_detail", args=[workflow.pk]))
    page.get_by_test_id("run-form").get_by_label("Topic").fill("tidal energy")
    page.get_by_role("button", name="Run version 1").click()
    streaming = page.locator("#timeline .tl-streaming .tl-body")
    page.wait_for_function(
        "() => { const b = document.querySelector('#timeline .tl-streaming .tl-body');"
        " return b && b.textContent.length > 20; }",
        timeout=60_000,
    )
    box = streaming.first.bounding_box()
    assert box is not None and box["y"] + box["height"] < 900, box
    screenshot(page, "93-first-hour-run-streaming")

    # A reload in the middle of a message finds it from its first word.
    page.reload()
    streaming.first.wait_for(timeout=10_000)
    assert streaming.first.inner_text().startswith("Alpha beta")
    page.locator('#run-state .badge[data-status="succeeded"]').wait_for(timeout=90_000)
    bodies = page.locator("#timeline li[data-kind=message] .tl-body").all_inner_texts()
    assert bodies == [REPLY] * 3
    assert "tidal energy" in page.get_by_test_id("run-io").inner_text()
    screenshot(page, "94-first-hour-run-done")

    # And the history has it.
    nav.get_by_role("link", name="Runs").click()
    row = page.get_by_test_id("history-row")
    row.first.wait_for()
    assert row.count() == 1 and "Briefing" in row.first.inner_text()
    run = Run.objects.get()
    assert run.status == "succeeded" and run.inputs == {"topic": "tidal energy"}
    screenshot(page, "95-first-hour-history")
