"""The `mcp` SDK's own client against our MCP endpoint, over real HTTP to daphne: offered
workflows listed with their input schemas, a call that runs the workflow and answers with its
output (with progress), refusals without a token, another workspace's workflows never listed,
wrong arguments answered as a tool error, a run waiting for a person answered with its address,
and a call the client abandons cancelling the run."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from agents.fakellm import start_in_thread
from tests.api.conftest import make_token
from tests.conftest import Personas
from tests.support.processes import start_daphne
from tests.support.waiting import wait_for
from tests.workflows.conftest import research_agents
from workflows.graph import examples
from workflows.graph.examples import edge, node
from workflows.models import LaunchedVia, Run, RunStatus, Workflow
from workflows.services.workflows import workflow_create, workflow_publish

# Two processes writing one SQLite file lock each other out: this runs on PostgreSQL.
pytestmark = [pytest.mark.services, pytest.mark.slow]


@pytest.fixture(scope="module")
def model() -> Iterator[Any]:
    with start_in_thread(name="mcp-model") as server:
        yield server


@pytest.fixture(scope="module")
def server(django_db_setup: None, django_db_blocker: Any, model: Any) -> Iterator[str]:
    with django_db_blocker.unblock():
        process, url = start_daphne(
            "daphne-mcp",
            REDIS_URL="",
            A2A_EXECUTION_MODE="embedded",
            A2A_EXECUTOR_AUTOSTART="true",
            A2A_DEMO_MODEL_URL=model.url,
            A2A_OUTBOUND_ALLOWED_HOSTS="127.0.0.1",
        )
    yield url
    process.stop()


def _published(personas: Personas, name: str, *, offered: bool = True, agents: Any = None):
    researcher, analyst, writer = agents or research_agents(personas)
    graph = examples.research_pipeline(str(researcher.pk), str(analyst.pk), str(writer.pk))
    workflow = workflow_create(
        workspace=personas.workspace, user=personas.owner, name=name, graph=graph
    )
    workflow_publish(workflow=workflow, user=personas.owner)
    Workflow.objects.filter(pk=workflow.pk).update(mcp_offered=offered)
    return workflow


def _client(url: str, token: str, **options: Any) -> tuple[httpx2.AsyncClient, Client]:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60)
    return http, Client(streamable_http_client(f"{url}/mcp/", http_client=http), **options)


def test_a_client_lists_the_offered_workflows_and_runs_one(
    server: str, model: Any, personas: Personas, transactional_db: None
) -> None:
    model.set_script({"rules": [{"reply": "Tides rise and fall twice a day."}]})
    agents = research_agents(personas)
    _published(personas, "Research tides", agents=agents)
    _published(personas, "Not offered", offered=False, agents=agents)
    other_owner_workflow = Workflow.objects.create(
        workspace=personas.other_workspace, name="Elsewhere secret", mcp_offered=True
    )
    token = make_token(personas.editor, "run")
    progress: list[tuple[float, str | None]] = []

    async def scenario() -> tuple[Any, Any]:
        http, client = _client(server, token)
        async with http, client:
            listed = await client.list_tools()

            async def on_progress(value: float, total: float | None, message: str | None):
                progress.append((value, message))

            result = await client.call_tool(
                "research_tides", {"topic": "tides"}, progress_callback=on_progress
            )
        return listed, result

    listed, result = asyncio.run(scenario())

    names = [tool.name for tool in listed.tools]
    assert names == ["research_tides"]
    assert other_owner_workflow.name not in str(listed)
    schema = listed.tools[0].input_schema
    assert schema["properties"]["topic"]["type"] == "string"
    assert schema["required"] == ["topic"]
    assert not result.is_error, result
    assert "Tides rise and fall" in result.content[0].text
    run = Run.objects.get(workflow__name="Research tides")
    assert run.status == RunStatus.SUCCEEDED
    assert run.launched_via == LaunchedVia.MCP
    assert run.created_by == personas.editor
    assert progress, "no progress notification came"
    assert [value for value, _ in progress] == sorted(value for value, _ in progress)


def test_a_client_of_the_handshake_era_protocol_is_served_too(
    server: str, model: Any, personas: Personas, transactional_db: None
) -> None:
    """Clients in the field still open with `initialize` (protocol 2025-xx); they get the same
    tools and calls."""
    model.set_script({"rules": [{"reply": "Legacy answer."}]})
    _published(personas, "Research tides")
    token = make_token(personas.editor, "run")

    async def scenario() -> tuple[Any, Any]:
        http, client = _client(server, token, mode="legacy")
        async with http, client:
            return await client.list_tools(), await client.call_tool(
                "research_tides", {"topic": "x"}
            )

    listed, result = asyncio.run(scenario())

    assert [tool.name for tool in listed.tools] == ["research_tides"]
    assert not result.is_error and "Legacy answer." in result.content[0].text


def test_without_a_valid_token_the_endpoint_refuses(server: str, transactional_db: None) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"Accept": "application/json, text/event-stream"}
    missing = httpx.post(f"{server}/mcp/", json=body, headers=headers)
    wrong = httpx.post(
        f"{server}/mcp/", json=body, headers={**headers, "Authorization": "Bearer a2a_nope"}
    )

    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert "Authorization: Bearer" in missing.json()["error"]["message"]
    assert wrong.status_code == 401
    assert "not known" in wrong.json()["error"]["message"]

    async def with_sdk() -> None:
        http, client = _client(server, "a2a_nope")
        async with http, client:
            await client.list_tools()

    with pytest.raises(BaseException) as refused:
        asyncio.run(with_sdk())
    assert "This token is not known" in repr(refused.value)


def test_another_workspaces_token_sees_none_of_ours_and_cannot_call_them(
    server: str, personas: Personas, transactional_db: None
) -> None:
    _published(personas, "Research tides")
    token = make_token(personas.outsider, "run")

    async def scenario() -> tuple[Any, Any]:
        http, client = _client(server, token)
        async with http, client:
            listed = await client.list_tools()
            try:
                called = await client.call_tool("research_tides", {"topic": "x"})
            except Exception as error:  # an unknown tool is a protocol error
                called = error
        return listed, called

    listed, called = asyncio.run(scenario())

    assert listed.tools == []
    assert "no tool named" in str(getattr(called, "content", called)).lower() or getattr(
        called, "is_error", False
    )
    assert not Run.objects.exists()


def test_wrong_arguments_come_back_as_a_tool_error_and_start_nothing(
    server: str, personas: Personas, transactional_db: None
) -> None:
    _published(personas, "Research tides")
    token = make_token(personas.editor, "run")
    reader = make_token(personas.editor, "read")

    async def scenario() -> tuple[Any, Any]:
        http, client = _client(server, token)
        async with http, client:
            wrong = await client.call_tool("research_tides", {})
        http, client = _client(server, reader)
        async with http, client:
            refused = await client.call_tool("research_tides", {"topic": "x"})
        return wrong, refused

    wrong, refused = asyncio.run(scenario())

    assert wrong.is_error
    assert "topic" in wrong.content[0].text
    assert refused.is_error
    assert "run scope" in refused.content[0].text
    assert not Run.objects.exists()


def _approval_workflow(personas: Personas) -> Workflow:
    (drafter, *_rest) = research_agents(personas)
    graph = {
        "schema_version": 1,
        "nodes": [
            node("start", "start", 0, 0),
            node(
                "draft", "agent", 0, 0, agent_id=str(drafter.pk), input_template="Draft {{ topic }}"
            ),
            node("check", "human", 0, 0, prompt="Ship it?", kind="approval"),
            node("redo", "agent", 0, 0, agent_id=str(drafter.pk), input_template="Redo it"),
            node("end", "end", 0, 0),
        ],
        "edges": [
            edge("start", "draft"),
            edge("draft", "check"),
            edge("check", "end", "approved"),
            edge("check", "redo", "rejected"),
            edge("redo", "end"),
        ],
        "variables": [],
        "inputs": {"fields": [{"name": "topic", "type": "text"}]},
    }
    workflow = workflow_create(
        workspace=personas.workspace, user=personas.owner, name="Approve", graph=graph
    )
    workflow_publish(workflow=workflow, user=personas.owner)
    Workflow.objects.filter(pk=workflow.pk).update(mcp_offered=True)
    return workflow


def test_a_run_waiting_for_a_person_answers_with_the_runs_address(
    server: str, model: Any, personas: Personas, transactional_db: None
) -> None:
    model.set_script({"rules": [{"reply": "A draft."}]})
    _approval_workflow(personas)
    token = make_token(personas.editor, "run")

    async def scenario() -> Any:
        http, client = _client(server, token)
        async with http, client:
            return await client.call_tool("approve", {"topic": "tides"})

    result = asyncio.run(scenario())

    run = Run.objects.get()
    assert run.status == RunStatus.WAITING
    assert result.is_error
    text = result.content[0].text
    assert "waiting for a person" in text
    assert f"/runs/{run.pk}/" in text


def test_a_client_that_gives_up_cancels_the_run(
    server: str, model: Any, personas: Personas, transactional_db: None
) -> None:
    model.set_script({"rules": [{"reply": "Slowly.", "delay_ms": 20000}]})
    _published(personas, "Research tides")
    token = make_token(personas.editor, "run")

    async def scenario() -> None:
        http, client = _client(server, token)
        async with http, client:
            call = asyncio.ensure_future(client.call_tool("research_tides", {"topic": "x"}))
            await asyncio.to_thread(
                wait_for,
                lambda: Run.objects.filter(status=RunStatus.RUNNING).exists(),
                timeout=30,
                what="the run to start",
            )
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call

    asyncio.run(scenario())

    run = wait_for(
        lambda: Run.objects.filter(status=RunStatus.CANCELLED).first(),
        timeout=30,
        what="the run to be cancelled",
    )
    assert run.reason.startswith("Cancelled")


@pytest.mark.parametrize("cancel_fails", [False, True])
def test_a_client_that_gives_up_while_its_run_starts_still_cancels_it(
    personas: Personas,
    transactional_db: None,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    cancel_fails: bool,
) -> None:
    """The give-up can come while the run is being started (its start finishes on a database
    thread anyway): the run is cancelled once it exists, not left running for nobody. Should
    the database refuse that cancel, the call still ends as given up and the run goes on."""
    import threading
    from types import SimpleNamespace

    from django.db import OperationalError
    from mcp_types import CallToolRequestParams

    from a2a_site.api.tokens import token_authenticate
    from workflows.mcp import server as mcp_server

    settings.EXECUTION_MODE = "celery"  # no worker here: the run stays queued until cancelled
    _published(personas, "Research tides")
    token = token_authenticate(make_token(personas.editor, "run"))
    entered, release = threading.Event(), threading.Event()
    start = mcp_server.mcp_run_start

    def slow_start(*args: Any) -> Any:
        entered.set()
        assert release.wait(timeout=30)
        return start(*args)

    monkeypatch.setattr(mcp_server, "mcp_run_start", slow_start)
    if cancel_fails:

        def cancel_refused(*args: Any) -> Any:
            raise OperationalError("the database is gone for a moment")

        monkeypatch.setattr(mcp_server, "mcp_run_cancel", cancel_refused)
    ctx = SimpleNamespace(
        request=SimpleNamespace(scope={mcp_server.TOKEN_KEY: token}),
        meta=None,
        request_id=1,
        session=None,
    )
    params = CallToolRequestParams(name="research_tides", arguments={"topic": "x"})

    async def scenario() -> None:
        call = asyncio.ensure_future(mcp_server._call_tool(ctx, params))  # type: ignore[arg-type]
        await asyncio.to_thread(entered.wait, 30)
        call.cancel()
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await call

    asyncio.run(scenario())
    run = wait_for(lambda: Run.objects.first(), timeout=30, what="the run to exist")
    if cancel_fails:
        assert run.status == RunStatus.QUEUED, run.status
        return
    assert run.status == RunStatus.CANCELLED, run.status
    assert run.reason.startswith("Cancelled")
