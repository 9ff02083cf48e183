"""Our agents against a small MCP server the tests start as a real process (streamable HTTP, and
stdio for an allow-listed command): tools listed and tested from the server's services, called
by agents in runs through the engine with the fake model scripting the calls — with arguments,
an error result the model sees, a slow tool cancelled at the agent's time limit, and a recorded
result a resumed run does not call again."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from agents.mcp.client import McpFailure
from agents.mcp.models import McpServer, McpToolCall
from agents.mcp.services import (
    McpServerInput,
    mcp_server_create,
    mcp_server_tool_test,
    mcp_server_tools_refresh,
)
from agents.mcp.tools import McpCallBook, McpTool
from agents.services.agents import agent_create
from agents.services.tool_hosts import tool_host_policy_update
from agents.tools.base import ToolContext
from tests.agents.factories import make_provider
from tests.conftest import Personas
from tests.support.mcp_sample import start_mcp_sample
from tests.workflows.conftest import finished
from workflows.graph.examples import edge, graph, node, text_variable
from workflows.models import RunEvent, RunStatus
from workflows.services.runs import run_start
from workflows.services.workflows import workflow_create, workflow_publish

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def mcp_url() -> Iterator[str]:
    process, url = start_mcp_sample()
    yield url
    process.stop()


@pytest.fixture
def tools_may_reach_loopback(personas: Personas, settings: Any) -> None:
    settings.TOOL_ALLOWED_HOSTS = ["127.0.0.1"]
    tool_host_policy_update(
        workspace=personas.workspace, user=personas.owner, public_hosts=True, hosts=["127.0.0.1"]
    )


@pytest.fixture
def server(personas: Personas, mcp_url: str, tools_may_reach_loopback: None) -> McpServer:
    server = mcp_server_create(
        workspace=personas.workspace,
        user=personas.editor,
        data=McpServerInput(
            name="Sample tools",
            transport="http",
            url=mcp_url,
            timeout_s=10,
            headers={"X-Api-Key": "k-secret-123"},
        ),
    )
    mcp_server_tools_refresh(server=server)
    return server


def test_a_server_lists_its_tools_and_keeps_its_headers_encrypted(server: McpServer) -> None:
    server.refresh_from_db()
    assert server.key == "sample_tools"
    assert [tool["name"] for tool in server.tools] == ["add", "echo", "fail", "slow", "count"]
    add = server.tools[0]
    assert add["input_schema"]["required"] == ["a", "b"]
    assert server.header_names == ["X-Api-Key"]
    assert "k-secret-123" not in server.headers_ciphertext
    assert server.tools_listed_at is not None and server.last_error == ""


def test_a_loopback_url_is_refused_unless_both_lists_allow_it(
    personas: Personas, mcp_url: str, settings: Any
) -> None:
    settings.TOOL_ALLOWED_HOSTS = []

    with pytest.raises(ValidationError) as refused:
        mcp_server_create(
            workspace=personas.workspace,
            user=personas.editor,
            data=McpServerInput(name="Local", transport="http", url=mcp_url),
        )

    assert "loopback" in str(refused.value)
    assert not McpServer.objects.exists()


def test_testing_tools_from_the_page_gives_results_errors_and_clear_failures(
    server: McpServer, personas: Personas
) -> None:
    added = mcp_server_tool_test(server=server, tool="add", arguments={"a": 2, "b": 3})
    failed = mcp_server_tool_test(server=server, tool="fail", arguments={"reason": "no"})

    assert (added.content, added.is_error) == ("5", False)
    assert failed.is_error

    McpServer.objects.filter(pk=server.pk).update(url="http://127.0.0.1:9/mcp")
    server.refresh_from_db()
    with pytest.raises(McpFailure) as unreachable:
        mcp_server_tools_refresh(server=server)
    assert unreachable.value.kind == "unreachable"
    server.refresh_from_db()
    assert "unreachable" in server.last_error


def test_a_stdio_server_runs_only_an_allow_listed_command(
    personas: Personas, settings: Any
) -> None:
    data = McpServerInput(
        name="Local stdio",
        transport="stdio",
        command=sys.executable,
        args=["-m", "tests.support.mcp_sample_server", "--stdio"],
    )
    settings.MCP_STDIO_COMMANDS = []
    with pytest.raises(ValidationError) as refused:
        mcp_server_create(workspace=personas.workspace, user=personas.editor, data=data)
    assert "A2A_MCP_STDIO_COMMANDS" in str(refused.value)

    settings.MCP_STDIO_COMMANDS = [sys.executable]
    server = mcp_server_create(workspace=personas.workspace, user=personas.editor, data=data)
    tools = mcp_server_tools_refresh(server=server)
    echoed = mcp_server_tool_test(server=server, tool="echo", arguments={"text": "hi", "times": 2})

    assert "echo" in [tool.name for tool in tools]
    assert echoed.content == "hi hi"


def _agent_run(personas: Personas, tools: list[str], **config: Any):
    provider = make_provider(personas.workspace)
    agent = agent_create(
        workspace=personas.workspace,
        user=None,
        name="Clerk",
        description="",
        config={
            "role": "a clerk",
            "model": {"provider_id": str(provider.pk), "model": "demo"},
            "tools": tools,
            **config,
        },
        known_tools=tools,
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
    workflow = workflow_create(
        workspace=personas.workspace, user=personas.owner, name="Clerking", graph=doc
    )
    workflow_publish(workflow=workflow, user=personas.owner)
    return run_start(workflow=workflow, user=personas.owner, inputs={"topic": "go"})


def _script(llm_server: Any, tool: str, arguments: dict[str, Any]) -> None:
    llm_server.set_script(
        {
            "rules": [
                {"last_role": "tool", "reply": "Done with the tool."},
                {"has_tools": True, "tool_call": {"name": tool, "arguments": arguments}},
            ]
        }
    )


def _events(run: Any, kind: str) -> list[dict[str, Any]]:
    return [event.data for event in RunEvent.objects.filter(run=run, kind=kind).order_by("seq")]


def test_an_agent_calls_an_mcp_tool_in_a_run(
    server: McpServer, personas: Personas, executor: Any, llm_server: Any
) -> None:
    _script(llm_server, "mcp_sample_tools__add", {"a": 20, "b": 22})

    run = finished(_agent_run(personas, ["mcp_sample_tools__add"]))

    assert run.status == RunStatus.SUCCEEDED, run.reason
    (call,) = _events(run, "tool_call")
    (result,) = _events(run, "tool_result")
    assert call["name"] == "mcp_sample_tools__add"
    assert result["content"] == "42" and result["is_error"] is False
    recorded = McpToolCall.objects.get(run_id=run.pk)
    assert (recorded.tool, recorded.content, recorded.step_key) == ("add", "42", "work")


def test_runs_that_share_what_the_first_resolved_keep_its_mcp_tools(
    server: McpServer, personas: Personas, executor: Any, llm_server: Any
) -> None:
    """The executor resolves a workspace's agents once and shares them with the runs after
    (workflows.runtime): the MCP tools those agents use travel with them."""
    from workflows import runtime
    from workflows.services.runs import run_start

    runtime.resolved_forget()
    _script(llm_server, "mcp_sample_tools__add", {"a": 1, "b": 2})
    first = finished(_agent_run(personas, ["mcp_sample_tools__add"]))
    assert first.status == RunStatus.SUCCEEDED, first.reason

    second = finished(
        run_start(workflow=first.workflow, user=personas.owner, inputs={"topic": "go"})
    )

    assert second.status == RunStatus.SUCCEEDED, second.reason
    assert [result["content"] for result in _events(second, "tool_result")] == ["3"]


def test_listing_a_servers_tools_again_moves_the_workspaces_runtime_stamp(
    server: McpServer, personas: Personas
) -> None:
    from a2a_site.accounts.models import Workspace
    from agents.mcp.services import mcp_server_tools_refresh

    before = Workspace.objects.get(pk=personas.workspace.pk).runtime_stamp
    mcp_server_tools_refresh(server=server)
    assert Workspace.objects.get(pk=personas.workspace.pk).runtime_stamp > before


def test_an_mcp_error_result_goes_back_to_the_model(
    server: McpServer, personas: Personas, executor: Any, llm_server: Any
) -> None:
    _script(llm_server, "mcp_sample_tools__fail", {"reason": "testing"})

    run = finished(_agent_run(personas, ["mcp_sample_tools__fail"]))

    assert run.status == RunStatus.SUCCEEDED, run.reason
    (result,) = _events(run, "tool_result")
    assert result["is_error"] is True
    assert run.output == "Done with the tool."


def test_a_slow_tool_is_cancelled_at_the_agents_time_limit(
    server: McpServer, personas: Personas, executor: Any, llm_server: Any
) -> None:
    _script(llm_server, "mcp_sample_tools__slow", {"seconds": 60})

    run = finished(_agent_run(personas, ["mcp_sample_tools__slow"], timeout_s=3), timeout=40)

    assert run.status == RunStatus.FAILED
    assert "did not finish its turn within 3 s" in run.reason
    assert not McpToolCall.objects.filter(run_id=run.pk).exists()


def test_a_recorded_call_is_not_made_again_when_the_step_runs_again(
    server: McpServer, personas: Personas
) -> None:
    info = next(tool for tool in server.tools if tool["name"] == "echo")
    context = ToolContext(
        workspace_id=personas.workspace.pk,
        run_id="6b0f3f7e-8d1c-4b7a-9c55-0d6c1a2f0e11",
        step_id="work",
        allowed_hosts=("127.0.0.1",),
    )

    async def step_once() -> list[str]:
        # A step executed again (a resumed run) starts a fresh turn: a fresh call book.
        tool = McpTool(server, info, McpCallBook())
        first = await tool.run({"text": "a"}, context)
        second = await tool.run({"text": "a"}, context)  # the same call, made twice in the step
        return [first.content, second.content]

    before = mcp_server_tool_test(server=server, tool="count", arguments={}).content
    first_time = asyncio.run(step_once())
    again = asyncio.run(step_once())
    after = mcp_server_tool_test(server=server, tool="count", arguments={}).content

    assert first_time == again == ["a", "a"]
    assert McpToolCall.objects.filter(step_key="work").count() == 2

    def echo_calls(counts: str) -> int:
        for part in counts.split(", "):
            if part.startswith("echo="):
                return int(part.split("=")[1])
        return 0

    assert echo_calls(after) - echo_calls(before) == 2


def test_a_tool_the_server_no_longer_offers_fails_the_step_with_the_reason(
    server: McpServer, personas: Personas, executor: Any, llm_server: Any
) -> None:
    _script(llm_server, "mcp_sample_tools__add", {"a": 1, "b": 2})
    McpServer.objects.filter(pk=server.pk).update(
        tools=[tool for tool in server.tools if tool["name"] != "add"]
    )

    run = finished(_agent_run(personas, ["mcp_sample_tools__add"]))

    assert run.status == RunStatus.FAILED
    assert "mcp_sample_tools__add" in run.reason and "List the server's tools again" in run.reason
