"""The playground streams an agent's reply, runs its tools, and records every model call."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import pytest_asyncio
from django.test import AsyncClient
from django.urls import reverse

from agents.llm import gateway_close_for_loop
from agents.models import LedgerEntry
from tests.agents.factories import make_agent, make_provider
from tests.conftest import Personas

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


@pytest_asyncio.fixture(autouse=True)
async def _gateway_closed():
    """The views share one gateway per event loop; close this test loop's pool with the test."""
    yield
    await gateway_close_for_loop()


def _events(body: bytes) -> list[tuple[str, dict]]:
    events = []
    for block in body.decode().split("\n\n"):
        if not block.strip():
            continue
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


async def _chat(user, agent, messages) -> tuple[int, list[tuple[str, dict]]]:
    client = AsyncClient()
    await client.aforce_login(user)
    response = await client.post(
        reverse("agent_playground_stream", args=[agent.pk]),
        json.dumps({"messages": messages}),
        content_type="application/json",
    )
    if response.status_code != 200:
        return response.status_code, [("http", json.loads(response.content))]
    body = b"".join([chunk async for chunk in response.streaming_content])
    return 200, _events(body)


@pytest.fixture
def demo_agent(personas: Personas, llm_server):
    llm_server.set_script(
        {
            "rules": [
                {"last_role": "tool", "reply": "The answer is 42.", "chunks": 3},
                {
                    "has_tools": True,
                    "last_message_contains": "compute",
                    "tool_call": {"name": "calculator", "arguments": {"expression": "6*7"}},
                },
                {"last_message_contains": "fail", "fault": "500"},
                {"reply": "Hello from the demo model, streamed in pieces.", "chunks": 6},
            ]
        }
    )
    provider = make_provider(personas.workspace)
    return make_agent(personas.workspace, provider=provider, tools=["calculator"])


async def test_a_reply_streams_and_is_recorded_in_the_ledger(personas: Personas, demo_agent):
    status, events = await _chat(personas.editor, demo_agent, [{"role": "user", "content": "Hi"}])
    assert status == 200
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "delta" and kinds[-1] == "done"
    streamed = "".join(data["text"] for kind, data in events if kind == "delta")
    done = events[-1][1]
    assert streamed == done["text"] == "Hello from the demo model, streamed in pieces."
    assert done["completion_tokens"] > 0
    call = next(data for kind, data in events if kind == "model_call")
    assert call["deployment"] == "Demo" and call["model"] == "demo"
    entry = await LedgerEntry.objects.aget()
    assert entry.status == "completed"
    assert entry.workspace_id == personas.workspace.id
    assert entry.source["source"] == "playground"
    assert entry.completion_tokens == done["completion_tokens"]
    # The demo model is local: free, and said to be, not an unknown price shown as zero.
    assert entry.price_source == "free" and done["unpriced_calls"] == 0


async def test_tool_calls_run_and_their_results_go_back_to_the_model(
    personas: Personas, demo_agent
):
    status, events = await _chat(
        personas.editor, demo_agent, [{"role": "user", "content": "Please compute six times seven"}]
    )
    assert status == 200
    tool_call = next(data for kind, data in events if kind == "tool_call")
    tool_result = next(data for kind, data in events if kind == "tool_result")
    assert tool_call["name"] == "calculator"
    assert tool_result["content"].startswith("42") and not tool_result["is_error"]
    assert events[-1] == ("done", events[-1][1]) and events[-1][1]["text"] == "The answer is 42."
    assert events[-1][1]["model_calls"] == 2
    assert await LedgerEntry.objects.filter(status="completed").acount() == 2


async def test_a_provider_failure_ends_the_stream_with_a_clear_error(
    personas: Personas, demo_agent
):
    status, events = await _chat(personas.editor, demo_agent, [{"role": "user", "content": "fail"}])
    assert status == 200
    kind, data = events[-1]
    assert kind == "error"
    assert data["kind"] == "provider_error"
    assert await LedgerEntry.objects.filter(status="failed").acount() >= 1
    assert not await LedgerEntry.objects.filter(status="pending").aexists()


async def test_bad_conversations_are_refused_with_a_reason(personas: Personas, demo_agent):
    status, events = await _chat(personas.editor, demo_agent, [{"role": "system", "content": "x"}])
    assert status == 400
    assert "role user or assistant" in events[0][1]["error"]
    status, events = await _chat(personas.editor, demo_agent, [])
    assert status == 400


async def test_an_agent_on_a_deleted_model_explains_itself(personas: Personas, llm_server):
    agent = await _agent_with_dead_ollama(personas)
    status, events = await _chat(personas.editor, agent, [{"role": "user", "content": "Hi"}])
    assert status == 400
    assert "No healthy node" in events[0][1]["error"]


async def _agent_with_dead_ollama(personas: Personas):
    from asgiref.sync import sync_to_async

    from agents.models import OllamaNode

    def build():
        provider = make_provider(personas.workspace, kind="ollama", name="Fleet")
        OllamaNode.objects.create(
            provider=provider, name="n", base_url="http://127.0.0.1:9", status="down"
        )
        return make_agent(personas.workspace, name="Local", provider=provider)

    return await sync_to_async(build)()


FAKE_CLI = str(Path(__file__).with_name("fake_claude.py"))


async def test_a_command_line_agent_answers_in_the_playground(personas: Personas, settings):
    from asgiref.sync import sync_to_async

    settings.CLI_AGENT_COMMANDS = [FAKE_CLI]

    def build():
        provider = make_provider(
            personas.workspace,
            kind="cli",
            name="Claude Code",
            cli_config={
                "argv": [
                    FAKE_CLI,
                    "-p",
                    "{prompt}",
                    "--output-format",
                    "stream-json",
                    "--verbose",
                    "--max-turns",
                    "{max_turns}",
                ],
                "workdir_mode": "tempdir",
                "timeout_s": 30,
            },
        )
        return make_agent(personas.workspace, name="Coder", provider=provider, role="a coder")

    agent = await sync_to_async(build)()
    status, events = await _chat(
        personas.editor, agent, [{"role": "user", "content": "List files"}]
    )
    assert status == 200, events
    kinds = [kind for kind, _ in events]
    assert "tool_call" in kinds and "tool_result" in kinds and kinds[-1] == "done"
    call = next(data for kind, data in events if kind == "model_call")
    assert call["deployment"] == "Claude Code"
    assert events[-1][1]["text"]
    entry = await LedgerEntry.objects.aget()
    assert entry.provider_kind == "cli" and entry.status == "completed"
    assert entry.cost > 0


async def _chat_with(user, agent, messages, settings) -> tuple[int, list[tuple[str, dict]]]:
    client = AsyncClient()
    await client.aforce_login(user)
    response = await client.post(
        reverse("agent_playground_stream", args=[agent.pk]),
        json.dumps({"messages": messages, "settings": settings}),
        content_type="application/json",
    )
    if response.status_code != 200:
        return response.status_code, [("http", json.loads(response.content))]
    body = b"".join([chunk async for chunk in response.streaming_content])
    return 200, _events(body)


async def test_a_try_uses_the_chosen_model_and_parameters_without_changing_the_agent(
    personas: Personas, demo_agent, llm_server
):
    version = await demo_agent.versions.aget()
    provider_id = version.config["model"]["provider_id"]
    status, events = await _chat_with(
        personas.editor,
        demo_agent,
        [{"role": "user", "content": "Hi"}],
        {
            "model": {"provider_id": provider_id, "model": "demo-large"},
            "temperature": "1.3",
            "max_tokens": 64,
        },
    )
    assert status == 200 and events[-1][0] == "done", events[-1]
    sent = [r for r in llm_server.requests if r["path"] == "/v1/chat/completions"][-1]
    assert sent["model"] == "demo-large"
    assert sent["body"]["temperature"] == 1.3 and sent["body"]["max_tokens"] == 64
    entry = await LedgerEntry.objects.aget()
    assert entry.model == "demo-large"
    assert await demo_agent.versions.acount() == 1, "the agent is not changed"
    assert (await demo_agent.versions.aget()).config == version.config


@pytest.mark.parametrize(
    ("chosen", "expected"),
    [
        ({"temperature": 5}, "temperature"),
        ({"max_tokens": "many"}, "maximum number of tokens must be a number"),
        ({"model": {"provider_id": "not-one", "model": "x"}}, "this workspace's providers"),
    ],
)
async def test_settings_that_cannot_be_used_are_refused_with_a_reason(
    personas: Personas, demo_agent, chosen, expected
):
    status, events = await _chat_with(
        personas.editor, demo_agent, [{"role": "user", "content": "Hi"}], chosen
    )
    assert status == 400
    assert expected in events[0][1]["error"]
    assert not await LedgerEntry.objects.aexists()


async def test_another_workspaces_provider_cannot_be_tried(personas: Personas, demo_agent):
    from asgiref.sync import sync_to_async

    foreign = await sync_to_async(make_provider)(personas.other_workspace, name="Theirs")
    status, events = await _chat_with(
        personas.editor,
        demo_agent,
        [{"role": "user", "content": "Hi"}],
        {"model": {"provider_id": str(foreign.pk), "model": "demo"}},
    )
    assert status == 400 and "this workspace's providers" in events[0][1]["error"]
