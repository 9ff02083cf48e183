"""A run streams its model calls only while something consumes the tokens: a viewer of the run (a
member of its channel-layer group: the run page, an SSE or A2A stream) or an agent set to stream.
Otherwise the calls are plain and each message shows when complete — stored, ordered and
counted as before."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from agents.models import LedgerEntry
from tests.agents.factories import make_agent, make_provider
from tests.conftest import Personas
from tests.workflows.conftest import finished
from workflows.graph import examples
from workflows.live import run_group, run_watched
from workflows.models import Run
from workflows.services.runs import run_start
from workflows.services.workflows import workflow_create, workflow_publish

pytestmark = pytest.mark.django_db(transaction=True)


def _chat_calls(llm_server: Any) -> list[dict[str, Any]]:
    return [
        entry["body"]
        for entry in llm_server.requests
        if isinstance(entry["body"], dict) and "messages" in entry["body"]
    ]


def _streamed(llm_server: Any) -> list[bool]:
    return [bool(body.get("stream")) for body in _chat_calls(llm_server)]


def _messages(run: Run) -> list[str]:
    return [event.data["text"] for event in run.events.filter(kind="message").order_by("seq")]


def test_a_run_nobody_watches_makes_plain_calls_and_keeps_every_message(
    personas: Personas, pipeline: Any, executor: Any, llm_server: Any
) -> None:
    run = finished(run_start(workflow=pipeline, user=personas.owner, inputs={"topic": "tea"}))

    assert run.status == "succeeded", run.reason
    # The first call streams (this process had not seen the model answer), the rest are plain.
    assert _streamed(llm_server) == [True, False, False]
    assert len(_messages(run)) == 3 and all(_messages(run))
    seqs = list(run.events.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
    # Time to first token is known for the streamed answer only: a plain answer came all at
    # once, and its latency is not shown as a first token's.
    entries = LedgerEntry.objects.filter(run_id=run.pk).order_by("started_at")
    assert entries.count() == 3
    assert [entry.first_token_ms is not None for entry in entries] == [True, False, False]


def test_a_watched_run_streams_its_calls_to_the_viewer(
    personas: Personas, pipeline: Any, executor: Any, llm_server: Any
) -> None:
    llm_server.set_script({"rules": [{"reply": "Steeped in history.", "chunks": 3}]})
    run = run_start(workflow=pipeline, user=personas.owner, inputs={"topic": "tea"}, dispatch=False)
    layer = get_channel_layer()
    received: list[dict[str, Any]] = []

    async def watch() -> None:
        # A viewer as the run page is one: a member of the run's group, from the executor's loop
        # (the embedded layer's home), reading what reaches it until the run ends.
        channel = await layer.new_channel()
        await layer.group_add(run_group(run.pk), channel)
        assert await run_watched(run.pk)
        executor.submit(str(run.pk))
        while True:
            message = await asyncio.wait_for(layer.receive(channel), 30)
            received.append(message)
            if message["type"] == "run.status" and message["status"] == "succeeded":
                break
        await layer.group_discard(run_group(run.pk), channel)

    asyncio.run_coroutine_threadsafe(watch(), executor.loop).result(timeout=60)
    run = finished(run)

    assert run.status == "succeeded", run.reason
    assert _streamed(llm_server) == [True, True, True]
    deltas = [m for m in received if m["type"] == "run.delta"]
    assert {m["step_key"] for m in deltas} == {"research", "analysis", "writing"}
    assert _messages(run) == ["Steeped in history."] * 3


def test_an_agent_set_to_stream_streams_though_nobody_watches(
    personas: Personas, executor: Any, llm_server: Any
) -> None:
    provider = make_provider(personas.workspace)
    loud = make_agent(personas.workspace, name="Loud", provider=provider, stream=True)
    quiet = [make_agent(personas.workspace, name=name, provider=provider) for name in ("Ann", "Bo")]
    graph = examples.research_pipeline(str(quiet[0].pk), str(quiet[1].pk), str(loud.pk))
    workflow = workflow_create(
        workspace=personas.workspace, user=personas.owner, name="Mixed", graph=graph
    )
    workflow_publish(workflow=workflow, user=personas.owner)

    run = finished(run_start(workflow=workflow, user=personas.owner, inputs={"topic": "tea"}))

    assert run.status == "succeeded", run.reason
    # The first call streams (the model not yet seen answering here), the loud agent's too.
    assert _streamed(llm_server) == [True, False, True]


def test_nobody_watches_a_fresh_run_and_a_viewer_in_its_group_is_seen(
    personas: Personas, pipeline: Any
) -> None:
    run = run_start(workflow=pipeline, user=personas.owner, inputs={"topic": "tea"}, dispatch=False)

    async def check() -> tuple[bool, bool, bool]:
        layer = get_channel_layer()
        before = await run_watched(run.pk)
        channel = await layer.new_channel()
        await layer.group_add(run_group(run.pk), channel)
        during = await run_watched(run.pk)
        await layer.group_discard(run_group(run.pk), channel)
        return before, during, await run_watched(run.pk)

    assert async_to_sync(check)() == (False, True, False)
