"""An owner registers an MCP server from the agents' pages, sees its tools, tests two of them (a
result and an error result), meets a clear failure for a server that is not there, and finds the
tools on the agent form."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.test import override_settings

from agents.fakellm import start_in_thread
from agents.mcp.models import McpServer
from agents.services.tool_hosts import tool_host_policy_update
from tests.agents.factories import make_provider
from tests.browser.conftest import screenshot
from tests.support.mcp_sample import start_mcp_sample
from tests.support.processes import start_daphne

pytestmark = [pytest.mark.browser, pytest.mark.services]


@pytest.fixture(scope="module")
def mcp_url() -> Iterator[str]:
    process, url = start_mcp_sample("mcp-sample-browser")
    yield url
    process.stop()


@pytest.fixture(scope="module")
def mcp_model() -> Iterator[Any]:
    with start_in_thread(name="mcp-pages-model") as server:
        yield server


@pytest.fixture(scope="module")
def mcp_daphne(django_db_setup: None, django_db_blocker: Any, mcp_model: Any) -> Iterator[str]:
    """A server that runs its runs itself, whose administrator lets tools reach this machine
    (the sample MCP server is here)."""
    with django_db_blocker.unblock():
        process, url = start_daphne(
            "daphne-mcp-pages",
            REDIS_URL="",
            A2A_EXECUTION_MODE="embedded",
            A2A_EXECUTOR_AUTOSTART="true",
            A2A_DEMO_MODEL_URL=mcp_model.url,
            A2A_OUTBOUND_ALLOWED_HOSTS="127.0.0.1",
            A2A_TOOL_ALLOWED_HOSTS="127.0.0.1",
        )
    yield url
    process.stop()


@pytest.fixture
def page(browser: Any, mcp_daphne: str, transactional_db: None) -> Iterator[Any]:
    context = browser.new_context(base_url=mcp_daphne, viewport={"width": 1280, "height": 820})
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def test_an_owner_adds_an_mcp_server_and_tests_its_tools(logged_in: Any, mcp_url: str) -> None:
    from a2a_site.accounts.models import User, Workspace

    page = logged_in
    owner = User.objects.get(username="olivia")
    tool_host_policy_update(
        workspace=Workspace.objects.get(name="Lab"),
        user=owner,
        public_hosts=True,
        hosts=["127.0.0.1"],
    )
    page.get_by_role("navigation", name="Sections").get_by_role(
        "link", name="Agents", exact=True
    ).click()
    page.get_by_test_id("mcp-servers-link").click()
    page.get_by_test_id("empty-mcp-servers").wait_for()
    screenshot(page, "70-mcp-servers-empty")

    page.get_by_role("link", name="Add your first MCP server").click()
    page.get_by_label("Name").fill("Sample tools")
    page.get_by_label("Endpoint URL").fill(mcp_url)
    page.get_by_label("Bearer token").fill("tok-secret-42")
    screenshot(page, "71-mcp-server-form")
    page.get_by_role("button", name="Save and list tools").click()
    page.get_by_text("it offers 5 tools").wait_for()
    tools = page.get_by_test_id("mcp-tools")
    for name in ("add", "echo", "fail", "slow", "count"):
        assert tools.get_by_test_id(f"mcp-tool-{name}").is_visible()
    assert "tok-secret-42" not in page.content()
    assert "Authorization: ••••" in page.content()
    screenshot(page, "72-mcp-server-tools")
    server = McpServer.objects.get()
    assert server.header_names == ["Authorization"]

    page.get_by_test_id("mcp-tool-add").get_by_role("link", name="Test").click()
    page.get_by_role("button", name="Call the tool").click()
    page.get_by_text("Required.").first.wait_for()
    page.get_by_label("a (required)").fill("2")
    page.get_by_label("b (required)").fill("3.5")
    page.get_by_role("button", name="Call the tool").click()
    page.get_by_test_id("mcp-result-status").wait_for()
    assert page.get_by_test_id("mcp-result").inner_text() == "5.5"
    screenshot(page, "73-mcp-tool-result")

    page.goto(f"/agents/mcp/{server.pk}/tools/fail/test/")
    page.get_by_role("button", name="Call the tool").click()
    page.get_by_text("the tool reported an error").wait_for()
    screenshot(page, "74-mcp-tool-error")

    page.goto("/agents/mcp/new/")
    page.get_by_label("Name").fill("Not there")
    page.get_by_label("Endpoint URL").fill("http://127.0.0.1:9/mcp")
    page.get_by_role("button", name="Save and list tools").click()
    page.get_by_text("its tools could not be listed").wait_for()
    assert "unreachable" in page.get_by_test_id("mcp-list-error").inner_text()
    screenshot(page, "75-mcp-server-unreachable")

    page.goto("/agents/mcp/")
    screenshot(page, "76-mcp-servers-list")
    assert page.get_by_test_id("mcp-server-not_there").get_by_text("failed").is_visible()

    make_provider(Workspace.objects.get(name="Lab"))
    page.goto("/agents/new/")
    assert page.get_by_text("add (Sample tools, MCP)").is_visible()


def test_an_owner_offers_a_workflow_to_mcp_clients(logged_in: Any) -> None:
    from a2a_site.accounts.models import User, Workspace
    from workflows.models import Workflow
    from workflows.services.workflows import EMPTY_GRAPH, workflow_create, workflow_publish

    page = logged_in
    workflow = workflow_create(
        workspace=Workspace.objects.get(name="Lab"),
        user=User.objects.get(username="olivia"),
        name="Weekly digest",
        graph=EMPTY_GRAPH,
    )
    workflow_publish(workflow=workflow, user=None)
    page.goto(f"/workflows/{workflow.pk}/")
    panel = page.get_by_test_id("mcp-panel")
    panel.get_by_test_id("mcp-not-offered").wait_for()
    panel.get_by_role("button", name="Offer it as an MCP tool").click()
    page.get_by_text("is offered to MCP clients as the tool “weekly_digest”").wait_for()
    config = page.get_by_test_id("mcp-config").inner_text()
    assert '"url": "http://127.0.0.1:' in config and "/mcp/" in config
    page.get_by_test_id("mcp-panel").scroll_into_view_if_needed()
    screenshot(page, "77-workflow-offered-over-mcp")
    assert Workflow.objects.get(pk=workflow.pk).mcp_offered

    page.get_by_role("button", name="Stop offering it").click()
    page.get_by_text("is no longer offered").wait_for()
    assert not Workflow.objects.get(pk=workflow.pk).mcp_offered


def test_a_runs_transcript_shows_the_mcp_tool_call_and_its_result(
    logged_in: Any, mcp_url: str, mcp_model: Any
) -> None:
    from a2a_site.accounts.models import User, Workspace
    from agents.mcp.services import McpServerInput, mcp_server_create, mcp_server_tools_refresh
    from agents.services.agents import agent_create
    from workflows.graph.examples import edge, graph, node, text_variable
    from workflows.services.workflows import workflow_create, workflow_publish

    page = logged_in
    workspace = Workspace.objects.get(name="Lab")
    owner = User.objects.get(username="olivia")
    tool_host_policy_update(workspace=workspace, user=owner, public_hosts=True, hosts=["127.0.0.1"])
    # This process checks the URL as the server's administrator allowed (loopback for tools).
    with override_settings(TOOL_ALLOWED_HOSTS=["127.0.0.1"]):
        server = mcp_server_create(
            workspace=workspace,
            user=owner,
            data=McpServerInput(name="Sample tools", transport="http", url=mcp_url),
        )
        # Playwright holds an event loop in this thread: the listing runs in another one.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(mcp_server_tools_refresh, server=server).result()
    provider = make_provider(workspace)
    agent = agent_create(
        workspace=workspace,
        user=owner,
        name="Clerk",
        description="",
        config={
            "role": "a clerk",
            "model": {"provider_id": str(provider.pk), "model": "demo"},
            "tools": ["mcp_sample_tools__add"],
        },
        known_tools=["mcp_sample_tools__add"],
    )
    doc = graph(
        nodes=[
            node("start", "start", 0, 0, input_mapping={"topic": "topic"}),
            node(
                "work",
                "agent",
                250,
                0,
                agent_id=str(agent.pk),
                input_template="{{ topic }}",
                output_variable="answer",
            ),
            node("end", "end", 500, 0, output="answer"),
        ],
        edges=[edge("start", "work"), edge("work", "end")],
        variables=[text_variable("topic"), text_variable("answer")],
        output="answer",
    )
    workflow = workflow_create(workspace=workspace, user=owner, name="Sums", graph=doc)
    workflow_publish(workflow=workflow, user=owner)
    mcp_model.set_script(
        {
            "rules": [
                {"last_role": "tool", "reply": "The sum is 42."},
                {
                    "has_tools": True,
                    "tool_call": {"name": "mcp_sample_tools__add", "arguments": {"a": 40, "b": 2}},
                },
            ]
        }
    )

    page.goto(f"/workflows/{workflow.pk}/")
    page.get_by_label("Topic").fill("add 40 and 2")
    page.get_by_role("button", name="Run version 1").click()
    page.locator('#run-state .badge[data-status="succeeded"]').wait_for(timeout=60_000)
    timeline = page.locator("#timeline")
    assert "mcp_sample_tools__add" in timeline.inner_text()
    answered = timeline.get_by_text("mcp_sample_tools__add answered")
    answered.click()
    assert "42" in answered.locator("xpath=..").inner_text()
    screenshot(page, "78-run-with-mcp-tool")
