"""A resumed run does not call an MCP tool again: the worker dies after the tool answered (its
result recorded) while the model's next call is in flight; a second worker re-executes the step,
the model asks for the same call, and the recorded result answers it. Real Celery workers,
PostgreSQL, Redis and the sample MCP server process."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.utils import timezone

from agents.mcp.models import McpServer, McpToolCall
from agents.mcp.services import mcp_server_tool_test
from tests.conftest import Personas
from tests.support.processes import ServerProcess, start_celery_worker
from tests.support.waiting import wait_for
from tests.workflows.test_run_mcp_tools import (  # noqa: F401  (fixtures)
    _agent_run,
    mcp_url,
    server,
    tools_may_reach_loopback,
)
from workflows.models import Run, RunEvent, RunStatus
from workflows.services.reaper import runs_reap

pytestmark = [
    pytest.mark.services,
    pytest.mark.slow,
    pytest.mark.serial,
    pytest.mark.django_db(transaction=True),
]


def _worker(llm_server: Any, label: str) -> ServerProcess:
    return start_celery_worker(
        f"{label}-{uuid.uuid4().hex[:6]}",
        A2A_DEMO_MODEL_URL=llm_server.url,
        A2A_OUTBOUND_ALLOWED_HOSTS="127.0.0.1",
        A2A_TOOL_ALLOWED_HOSTS="127.0.0.1",
        A2A_RUN_LEASE_SECONDS="3",
        A2A_RUN_HEARTBEAT_SECONDS="1",
    )


def _echo_calls(mcp_server: McpServer) -> int:
    counts = mcp_server_tool_test(server=mcp_server, tool="count", arguments={}).content
    for part in counts.split(", "):
        if part.startswith("echo="):
            return int(part.split("=")[1])
    return 0


def test_a_resumed_run_uses_the_recorded_result_instead_of_calling_again(
    server: McpServer,  # noqa: F811
    personas: Personas,
    llm_server: Any,
    settings: Any,
) -> None:
    settings.EXECUTION_MODE = "celery"
    llm_server.set_script(
        {
            "rules": [
                {"last_role": "tool", "reply": "Echoed it.", "delay_ms": 3000},
                {
                    "has_tools": True,
                    "tool_call": {
                        "name": "mcp_sample_tools__echo",
                        "arguments": {"text": f"once-{uuid.uuid4().hex[:6]}"},
                    },
                },
            ]
        }
    )
    echoes_before = _echo_calls(server)
    first = _worker(llm_server, "first")
    second: ServerProcess | None = None
    try:
        run = _agent_run(personas, ["mcp_sample_tools__echo"])
        wait_for(
            lambda: (first.assert_running(), McpToolCall.objects.filter(run_id=run.pk).exists())[1],
            timeout=60,
            what="the tool call to be recorded",
        )
        first.process.kill()
        first.process.wait(10)

        second = _worker(llm_server, "second")
        wait_for(
            lambda: (
                (lease := Run.objects.get(pk=run.pk).lease_until) is not None
                and lease < timezone.now()
            ),
            timeout=30,
            what="the dead worker's lease to expire",
        )
        assert run.pk in runs_reap().resumed
        run = wait_for(
            lambda: Run.objects.filter(pk=run.pk, status=RunStatus.SUCCEEDED).first(),
            timeout=90,
            what="the resumed run to finish",
        )
    finally:
        first.stop()
        if second is not None:
            second.stop()

    assert run.output == "Echoed it."
    assert run.attempts == 2
    assert _echo_calls(server) - echoes_before == 1, "the resumed step called the tool again"
    (recorded,) = McpToolCall.objects.filter(run_id=run.pk)
    results = RunEvent.objects.filter(run=run, kind="tool_result")
    assert [event.data["content"] for event in results] == [recorded.content]
