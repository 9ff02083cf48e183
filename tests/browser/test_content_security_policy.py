"""Every main page under the Content-Security-Policy, in Chromium: nothing refused, all working.

Chromium reports each thing the policy refuses (an inline script or style, eval, a connection to
another origin) as a console error naming the Content Security Policy; the test collects them
while Olivia walks the pages, plays with an agent, edits a workflow in the builder, runs it and
watches it live, then logs out and visits the pages of the anonymous.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import screenshot
from tests.support.processes import ServerProcess

pytestmark = [pytest.mark.browser, pytest.mark.services, pytest.mark.slow]


@pytest.fixture
def refusals(page: Any) -> list[str]:
    found: list[str] = []

    def on_console(message: Any) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            found.append(f"{page.url}: {message.text}")

    page.on("console", on_console)
    return found


def visit(page: Any, path: str, ready: str = "main") -> None:
    response = page.goto(path)
    assert response is not None and response.ok, f"{path}: {response and response.status}"
    policy = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in policy and "style-src 'self'" in policy, path
    page.locator(ready).first.wait_for()


def test_the_main_pages_work_under_the_policy(
    refusals: list[str], logged_in: Any, demo_model: Any, worker: ServerProcess
) -> None:
    from a2a_site.accounts.models import Workspace
    from agents.models import OllamaNode
    from tests.agents.factories import make_agent, make_provider
    from tests.browser.test_builder import template_workflow
    from workflows.services.workflows import workflow_publish

    page = logged_in
    demo_model.set_script(None)
    demo_model.reset()
    workspace = Workspace.objects.get(name="Lab")
    provider = make_provider(workspace)
    fleet = make_provider(workspace, kind="ollama", name="Fleet")
    OllamaNode.objects.create(provider=fleet, name="n1", base_url="http://10.0.0.5:11434")
    page.agents = {
        name: str(make_agent(workspace, name=name, provider=provider, role=role).pk)
        for name, role in (
            ("Researcher", "a meticulous researcher"),
            ("Analyst", "a sharp analyst"),
            ("Writer", "a clear writer"),
        )
    }
    page.workspace = workspace
    workflow = template_workflow(page)
    workflow_publish(workflow=workflow, user=None, note="First")
    agent = page.agents["Researcher"]

    for path in (
        "/",
        "/agents/providers/",
        "/agents/providers/new/",
        f"/agents/providers/{provider.pk}/",
        f"/agents/providers/{provider.pk}/edit/",
        f"/agents/providers/{fleet.pk}/",
        "/agents/",
        "/agents/new/",
        f"/agents/{agent}/",
        f"/agents/{agent}/edit/",
        "/workflows/",
        f"/workflows/{workflow.pk}/",
        "/runs/",
        "/monitoring/",
        "/dashboards/",
        f"/agents/{agent}/dashboard/",
        f"/workflows/{workflow.pk}/dashboard/",
        "/workspaces/",
        "/workspaces/new/",
        f"/workspaces/{workspace.pk}/",
        "/accounts/password/change/",
    ):
        visit(page, path)

    # htmx: the provider check swaps in its answer.
    visit(page, f"/agents/providers/{provider.pk}/")
    page.get_by_role("button", name="Test connection").click()
    page.locator("#provider-check .badge-ok").wait_for()

    # The playground streams an answer.
    visit(page, f"/agents/{agent}/playground/")
    page.locator("#chat-form[data-ready=true]").wait_for()  # its script is listening
    page.get_by_label("Your message").fill("Heat pumps?")
    page.get_by_label("Your message").press("Enter")
    page.locator(".chat-assistant[data-done=true]").wait_for()

    # The builder bundle draws and edits the canvas; the diff draws two versions.
    visit(page, f"/workflows/{workflow.pk}/builder/", 'workflow-builder[data-ready="true"]')
    screenshot(page, "90-builder-under-csp")
    visit(page, f"/workflows/{workflow.pk}/diff/?from=1&to=draft", "workflow-builder")
    page.locator('workflow-builder[data-ready="true"]').wait_for()

    # A run, watched live over the WebSocket, drawn on the run page's canvas.
    visit(page, f"/workflows/{workflow.pk}/run/", '[data-testid="run-form"]')
    page.get_by_label("Topic").fill("green roofs")
    page.get_by_role("button", name="Run version 1").click()
    page.locator('#run-state .badge[data-status="succeeded"]').wait_for(timeout=60_000)
    page.locator("#timeline li[data-kind=message]").nth(2).wait_for()
    page.locator('#run-builder [data-testid="node-writing"][data-status="done"]').wait_for()
    screenshot(page, "91-run-under-csp")

    page.get_by_label("Account menu for olivia").click()
    page.get_by_role("button", name="Log out").click()
    page.get_by_role("button", name="Log in").wait_for()
    for path in ("/accounts/login/", "/accounts/signup/", "/accounts/password/reset/"):
        visit(page, path)

    assert refusals == []


def test_the_policy_refuses_inline_script(refusals: list[str], page: Any) -> None:
    """The check above would pass with no policy at all: show that it sees a refusal."""
    visit(page, "/accounts/login/")
    with page.expect_console_message(lambda message: "Content Security Policy" in message.text):
        page.evaluate(
            """() => {
                const script = document.createElement("script");
                script.textContent = "window.__inline = 1";
                document.body.append(script);
            }"""
        )
    assert page.evaluate("() => window.__inline") is None
    with page.expect_console_message(lambda message: "inline style" in message.text):
        page.evaluate(
            """() => document.body.insertAdjacentHTML("beforeend", '<p style="color: red">x</p>')"""
        )
    assert any("inline script" in refusal for refusal in refusals), refusals


def test_the_administration_works_under_the_policy(refusals: list[str], page: Any) -> None:
    from tests.conftest import make_user

    ada = make_user("ada", is_staff=True, is_superuser=True)
    visit(page, "/admin/login/")
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill("correct horse")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Log out").or_(
        page.get_by_role("button", name="Log out")
    ).wait_for()
    for path in (
        "/admin/",
        "/admin/accounts/user/",
        f"/admin/accounts/user/{ada.pk}/change/",
        "/admin/accounts/workspace/add/",
    ):
        visit(page, path, "#content")
    screenshot(page, "92-admin-under-csp")
    assert refusals == []
