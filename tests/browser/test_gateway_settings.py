"""The workspace's gateway middleware and an agent's model policy, set up in Chromium."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.browser.conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.services, pytest.mark.slow]


def test_an_owner_adds_middleware_hooks_from_the_workspace_settings(logged_in: Any) -> None:
    from agents.models import GatewayMiddleware

    page = logged_in
    page.goto("/workspace/")
    section = page.get_by_test_id("middleware-settings")
    section.get_by_text("No hooks").wait_for()
    section.get_by_test_id("middleware-link").click()
    page.get_by_role("heading", name="Gateway middleware").wait_for()

    first, second = page.get_by_test_id("hook-row-1"), page.get_by_test_id("hook-row-2")
    first.get_by_label("Hook").select_option("redact")
    first.get_by_label("Pattern, text or keywords").fill(r"\b\d{4}(?: ?\d{4}){3}\b")
    first.get_by_label("Replace with").fill("[card]")
    second.get_by_label("Hook").select_option("preamble")
    second.get_by_label("Pattern, text or keywords").fill("Follow the data policy.")
    second.get_by_label("Order").fill("1")
    first.get_by_label("Order").fill("2")
    page.get_by_role("button", name="Save hooks").click()
    page.get_by_text("Middleware saved").wait_for()
    effective = page.get_by_test_id("middleware-effective")
    items = effective.locator("li").all_inner_texts()
    assert items[0].startswith("Add a system preamble")
    assert items[1].startswith("Redact /")
    assert [h["kind"] for h in GatewayMiddleware.objects.get().hooks] == ["preamble", "redact"]
    screenshot(page, "51-gateway-middleware")

    # A hook that cannot work is explained, and the saved ones stay.
    page.get_by_test_id("hook-row-3").get_by_label("Hook").select_option("redact")
    page.get_by_test_id("hook-row-3").get_by_label("Pattern, text or keywords").fill("(oops")
    page.get_by_role("button", name="Save hooks").click()
    page.get_by_test_id("middleware-errors").get_by_text("Hook 3: not a valid pattern").wait_for()
    assert len(GatewayMiddleware.objects.get().hooks) == 2

    page.goto("/workspace/")
    assert "Change the hooks" in page.get_by_test_id("middleware-settings").inner_text()


def test_an_agent_gets_a_model_policy_in_its_form(logged_in: Any) -> None:
    from a2a_site.accounts.models import Workspace
    from agents.config import agent_config_load
    from agents.models import Agent
    from tests.agents.factories import make_provider

    workspace = Workspace.objects.get(name="Lab")
    local = make_provider(workspace, name="Local")
    hosted = make_provider(workspace, name="Hosted")
    page = logged_in
    page.goto("/agents/new/")
    page.get_by_label("Name").fill("Triage")
    page.get_by_label("Role").fill("a triage nurse")
    page.get_by_label("Provider", exact=True).select_option(str(local.pk))
    page.get_by_label("Model", exact=True).fill("demo")
    policy = page.get_by_test_id("model-policy")
    policy.locator("summary").click()
    policy.get_by_label("Model policy").select_option("rules")
    rules = [
        {
            "when": "input_longer_than",
            "value": 2000,
            "use": {"provider": "Hosted", "model": "demo-fast"},
        },
        {
            "when": "role_is",
            "value": "proposer",
            "use": {"provider": "Hosted", "model": "demo-fast"},
        },
    ]
    policy.get_by_label("Policy rules").fill(json.dumps(rules, indent=2))
    screenshot(page, "52-agent-model-policy")
    page.get_by_role("button", name="Create agent").click()
    page.get_by_role("heading", name="Triage").wait_for()
    config = agent_config_load(Agent.objects.get(name="Triage").versions.get().config)
    assert config.model_policy is not None
    assert [rule.use.provider_id for rule in config.model_policy.rules] == [str(hosted.pk)] * 2
