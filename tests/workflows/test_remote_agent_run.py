"""The "Remote agent (A2A)" node run for real against an A2A agent built with the a2a-sdk's
own server classes, started as a separate process (`tests/support/a2a_peer.py`)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from django.urls import reverse

from agents.remote.services import remote_agent_create
from monitoring.trace.spans import run_trace
from tests.conftest import Personas
from tests.support.processes import A2APeer
from tests.support.waiting import wait_for
from tests.workflows.conftest import finished
from workflows.graph.examples import edge, node
from workflows.models import RemoteTask, Run, RunEvent, RunStatus, Step, Workflow
from workflows.services.runs import run_answer, run_cancel, run_start
from workflows.services.workflows import workflow_create, workflow_publish

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "peer-secret-7f3a9c1e"


@pytest.fixture
def peer(settings: Any) -> Iterator[A2APeer]:
    # Loopback is allow-listed as an administrator would for an agent on the same machine.
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    server = A2APeer()
    yield server
    server.stop()


def remote_workflow(
    personas: Personas,
    url: str,
    *,
    after: dict[str, Any] | None = None,
    timeout_s: int = 3600,
    name: str = "Trips",
    **config: Any,
) -> Workflow:
    remote = node("desk", "remote_agent", 0, 0, url=url, output_variable="answer", **config)
    remote["label"] = "Travel desk"
    nodes = [node("start", "start", 0, 0), remote]
    edges = [edge("start", "desk")]
    if after is not None:
        nodes.append(after)
        edges += [edge("desk", after["id"]), edge(after["id"], "end")]
    else:
        edges.append(edge("desk", "end"))
    nodes.append(node("end", "end", 0, 0, output="answer"))
    graph = {
        "schema_version": 1,
        "nodes": nodes,
        "edges": edges,
        "variables": [{"name": "answer", "type": "string"}],
        "inputs": {"fields": [{"name": "request", "type": "text"}]},
        "settings": {"timeout_s": timeout_s},
    }
    workflow = workflow_create(
        workspace=personas.workspace, user=personas.owner, name=name, graph=graph
    )
    workflow_publish(workflow=workflow, user=personas.owner, note="first")
    return workflow


def events(run: Run, kind: str) -> list[dict[str, Any]]:
    return [e.data for e in RunEvent.objects.filter(run=run, kind=kind).order_by("seq")]


def test_a_streamed_answer_is_the_nodes_output_and_the_call_is_on_record(
    personas: Personas, peer: A2APeer, executor: Any, client_for: Any
) -> None:
    workflow = remote_workflow(personas, peer.url, skill_id="echo")
    run = finished(
        run_start(workflow=workflow, user=personas.owner, inputs={"request": "hi there"})
    )

    assert run.status == RunStatus.SUCCEEDED, run.reason
    assert run.output == "Echo: hi there"
    [call] = events(run, "remote_call")
    assert call["host"] == f"127.0.0.1:{peer.port}"
    assert call["state"] == "completed" and call["task_id"]
    assert call["usage"] is None  # the peer reports none: its cost is unknown, not $0
    said = events(run, "message")
    assert said[-1]["agent"] == "Travel desk" and said[-1]["text"] == "Echo: hi there"
    remembered = RemoteTask.objects.get(run=run)
    assert (remembered.step_key, remembered.task_id) == ("desk/call-1", call["task_id"])
    assert peer.calls()["messages"] == 1

    # The trace shows the remote task under its step, its cost unknown rather than $0.
    trace = run_trace(run)
    remote = next(span for span in trace.by_id.values() if span.kind == "remote")
    assert remote.name == f"Travel desk at 127.0.0.1:{peer.port}"
    assert call["task_id"] in remote.detail and "completed" in remote.detail
    assert remote.money.text == "price unknown"
    assert trace.by_id["run"].money.text == "price unknown"
    page = client_for(personas.owner).get(reverse("run_detail", args=[run.pk])).content.decode()
    assert "1 remote agent task (A2A): cost unknown" in page
    assert "$0.000000" not in page.split('data-testid="run-cost"')[1].split("</dd>")[0]


def test_a_question_from_the_remote_agent_waits_for_a_person_and_the_answer_continues_its_task(
    personas: Personas, peer: A2APeer, executor: Any
) -> None:
    workflow = remote_workflow(personas, peer.url)
    run = finished(run_start(workflow=workflow, user=personas.owner, inputs={"request": "ask"}))

    assert run.status == RunStatus.WAITING, run.reason
    assert run.waiting_request["step_key"] == "desk/human-1"
    assert "What is your name?" in run.waiting_request["prompt"]
    # What the remote agent said while working reached the transcript before its question.
    assert [m["text"] for m in events(run, "message")] == [
        "Looking at your request.",
        "What is your name?",
    ]

    run = finished(run_answer(run=run, step_key="desk/human-1", answer="Ada", user=personas.owner))
    assert run.status == RunStatus.SUCCEEDED, run.reason
    assert run.output == "Hello, Ada! Your booking is done."
    calls = peer.calls()
    assert calls["texts"] == ["ask", "Ada"]
    first, second = RemoteTask.objects.filter(run=run).order_by("step_key")
    assert first.task_id == second.task_id, "the answer continues the same remote task"
    assert (first.state, second.state) == ("input-required", "completed")


def test_a_fixed_answer_answers_the_remote_agent_without_a_person(
    personas: Personas, peer: A2APeer, executor: Any
) -> None:
    workflow = remote_workflow(
        personas, peer.url, on_input_required="fixed_answer", fixed_answer="Grace"
    )
    run = finished(run_start(workflow=workflow, user=personas.owner, inputs={"request": "ask"}))
    assert run.status == RunStatus.SUCCEEDED, run.reason
    assert run.output == "Hello, Grace! Your booking is done."


@pytest.mark.parametrize(
    ("request_text", "reason"),
    [
        ("fail now", "failed: The flight database is down."),
        ("reject this", "rejected the task: I do not handle such requests."),
    ],
)
def test_a_failed_or_rejected_remote_task_fails_the_step_with_its_reason(
    personas: Personas, peer: A2APeer, executor: Any, request_text: str, reason: str
) -> None:
    workflow = remote_workflow(personas, peer.url)
    run = finished(
        run_start(workflow=workflow, user=personas.owner, inputs={"request": request_text})
    )
    assert run.status == RunStatus.FAILED
    assert reason in run.reason
    step = Step.objects.get(run=run, key="desk/call-1")
    assert step.status == Step.Status.FAILED and reason in step.error


def test_the_outbound_policy_refuses_a_loopback_agent_that_is_not_allow_listed(
    personas: Personas, peer: A2APeer, executor: Any, settings: Any
) -> None:
    settings.OUTBOUND_ALLOWED_HOSTS = []
    workflow = remote_workflow(personas, peer.url)
    run = finished(run_start(workflow=workflow, user=personas.owner, inputs={"request": "hi"}))
    assert run.status == RunStatus.FAILED
    assert "Refused by the outbound URL policy" in run.reason
    assert "loopback" in run.reason
    assert peer.calls()["messages"] == 0


def test_an_unreachable_agent_fails_the_step_saying_so(
    personas: Personas, peer: A2APeer, executor: Any
) -> None:
    peer.stop()
    workflow = remote_workflow(personas, peer.url)
    run = finished(run_start(workflow=workflow, user=personas.owner, inputs={"request": "hi"}))
    assert run.status == RunStatus.FAILED
    assert f"127.0.0.1:{peer.port} is unreachable" in run.reason


def test_a_finished_remote_step_is_not_called_again_when_the_run_resumes(
    personas: Personas, peer: A2APeer, executor: Any
) -> None:
    review = node("review", "human", 0, 0, prompt="Anything to add? {{ answer }}", kind="input")
    workflow = remote_workflow(personas, peer.url, after=review)
    run = finished(run_start(workflow=workflow, user=personas.owner, inputs={"request": "Oslo"}))
    assert run.status == RunStatus.WAITING
    assert peer.calls()["messages"] == 1

    # The run resumes by replaying from the start: the remote step is recorded, not re-sent.
    run = finished(run_answer(run=run, step_key="review", answer="no", user=personas.owner))
    assert run.status == RunStatus.SUCCEEDED, run.reason
    assert peer.calls()["messages"] == 1
    assert len(events(run, "remote_call")) == 1


def test_a_call_interrupted_mid_way_follows_the_same_remote_task_after_the_resume(
    personas: Personas, peer: A2APeer, settings: Any
) -> None:
    from workflows.executor import RunExecutor

    settings.EXECUTION_MODE = "embedded"
    settings.RUN_HEARTBEAT_SECONDS = 1
    workflow = remote_workflow(personas, peer.url)
    first = RunExecutor(embedded=False)
    run = run_start(
        workflow=workflow, user=personas.owner, inputs={"request": "hold"}, dispatch=False
    )
    first.submit(str(run.pk))
    remembered = wait_for(
        lambda: RemoteTask.objects.filter(run=run).first(),
        timeout=30,
        what="the remote task to be remembered",
    )
    wait_for(
        lambda: RunEvent.objects.filter(run=run, kind="message").exists(),
        what="the remote agent's working message in the transcript, live",
    )
    # The worker goes away mid-call (its leases end; the run is not cancelled).
    first.shutdown()
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING
    assert peer.calls()["cancels"] == 0

    second = RunExecutor(embedded=False)
    try:
        second.submit(str(run.pk))
        # The resumed step asks for the task (GetTask), then follows it (SubscribeToTask).
        wait_for(
            lambda: len(peer.calls()["authorization"]) >= 3,
            timeout=30,
            what="the resumed step to follow the remembered task",
        )
        peer.release()
        run = finished(run)
    finally:
        second.shutdown()
    assert run.status == RunStatus.SUCCEEDED, run.reason
    assert run.output == "Released: hold"
    assert peer.calls()["messages"] == 1, "the message was sent once"
    [call] = events(run, "remote_call")
    assert call["task_id"] == remembered.task_id and call["resumed"] is True


def test_cancelling_the_run_cancels_the_remote_task(
    personas: Personas, peer: A2APeer, executor: Any
) -> None:
    workflow = remote_workflow(personas, peer.url)
    run = run_start(workflow=workflow, user=personas.owner, inputs={"request": "hold"})
    wait_for(lambda: RemoteTask.objects.filter(run=run).exists(), timeout=30, what="the call")
    run_cancel(run=run, user=personas.owner)
    run = finished(run)
    assert run.status == RunStatus.CANCELLED
    wait_for(lambda: peer.calls()["cancels"] == 1, what="the remote agent to be asked to cancel")


def test_the_runs_time_limit_ends_the_call_and_cancels_the_remote_task(
    personas: Personas, peer: A2APeer, executor: Any
) -> None:
    workflow = remote_workflow(personas, peer.url, timeout_s=3)
    run = finished(run_start(workflow=workflow, user=personas.owner, inputs={"request": "hold"}))
    assert run.status == RunStatus.FAILED
    assert "timed out after 3 s" in run.reason
    wait_for(lambda: peer.calls()["cancels"] == 1, what="the remote agent to be asked to cancel")


def test_a_saved_credential_travels_as_a_bearer_token_and_is_never_shown(
    personas: Personas, settings: Any, executor: Any, client_for: Any, caplog: Any
) -> None:
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    guarded = A2APeer(token=TOKEN)
    try:
        saved = remote_agent_create(
            workspace=personas.workspace,
            user=personas.owner,
            name="Travel desk",
            url=guarded.url,
            credential=TOKEN,
        )
        assert TOKEN not in saved.credential_ciphertext
        caplog.set_level(logging.DEBUG)
        without = remote_workflow(personas, guarded.url)
        refused = finished(
            run_start(workflow=without, user=personas.owner, inputs={"request": "hi"})
        )
        assert refused.status == RunStatus.FAILED
        assert "HTTP 401" in refused.reason

        workflow = remote_workflow(
            personas, guarded.url, name="With a token", remote_agent_id=str(saved.pk)
        )
        run = finished(run_start(workflow=workflow, user=personas.owner, inputs={"request": "hi"}))
        assert run.status == RunStatus.SUCCEEDED, run.reason
        assert f"Bearer {TOKEN}" in guarded.calls()["authorization"]
    finally:
        guarded.stop()
    stored = [
        str(run.output),
        str(run.reason),
        *(str(e.data) for e in RunEvent.objects.all()),
        *(f"{s.input}{s.output}{s.error}" for s in Step.objects.all()),
    ]
    assert not any(TOKEN in text for text in stored)
    assert TOKEN not in caplog.text
    page = client_for(personas.owner).get("/agents/remote-agents/")
    assert page.status_code == 200 and TOKEN not in page.content.decode()


def test_the_next_node_answers_the_remote_agents_question_and_the_same_task_goes_on(
    personas: Personas, peer: A2APeer, executor: Any, llm_server: Any
) -> None:
    from tests.agents.factories import make_agent, make_provider

    llm_server.set_script({"rules": [{"last_message_contains": "name", "reply": "Lin"}]})
    helper = make_agent(
        personas.workspace, name="Helper", provider=make_provider(personas.workspace)
    )
    desk = node("desk", "remote_agent", 0, 0, url=peer.url, output_variable="answer")
    desk["config"]["on_input_required"] = "next_node"
    reply = node(
        "reply", "agent", 0, 0, agent_id=str(helper.pk), input_template="{{ last.question }}"
    )
    rounds = node(
        "rounds",
        "loop",
        0,
        0,
        max_iterations=3,
        condition={"kind": "variable_predicate", "variable": "answer", "operator": "truthy"},
    )
    graph = {
        "schema_version": 1,
        "nodes": [
            node("start", "start", 0, 0),
            rounds,
            desk,
            reply,
            node("end", "end", 0, 0, output="answer"),
        ],
        "edges": [
            edge("start", "rounds"),
            edge("rounds", "desk", "loop"),
            edge("rounds", "end", "done"),
            edge("desk", "rounds", "done"),
            edge("desk", "reply", "input_required"),
            edge("reply", "rounds"),
        ],
        "variables": [{"name": "answer", "type": "string"}],
        "inputs": {"fields": [{"name": "request", "type": "text"}]},
    }
    workflow = workflow_create(
        workspace=personas.workspace, user=personas.owner, name="Handed on", graph=graph
    )
    workflow_publish(workflow=workflow, user=personas.owner, note="first")
    run = finished(run_start(workflow=workflow, user=personas.owner, inputs={"request": "ask"}))

    assert run.status == RunStatus.SUCCEEDED, run.reason
    assert run.output == "Hello, Lin! Your booking is done."
    assert peer.calls()["texts"] == ["ask", "Lin"]
    tasks = {row.task_id for row in RemoteTask.objects.filter(run=run)}
    assert len(tasks) == 1, "the answer continued the same remote task"


def test_an_agent_that_does_not_stream_is_sent_to_and_answers_all_the_same(
    personas: Personas, settings: Any, executor: Any
) -> None:
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    plain = A2APeer(streaming=False)
    try:
        workflow = remote_workflow(
            personas, plain.url, on_input_required="fixed_answer", fixed_answer="Kim"
        )
        run = finished(run_start(workflow=workflow, user=personas.owner, inputs={"request": "ask"}))
        echoed = finished(
            run_start(
                workflow=remote_workflow(personas, plain.url, name="Echo"),
                user=personas.owner,
                inputs={"request": "plain words"},
            )
        )
    finally:
        plain.stop()
    assert run.status == RunStatus.SUCCEEDED, run.reason
    assert run.output == "Hello, Kim! Your booking is done."
    assert echoed.status == RunStatus.SUCCEEDED, echoed.reason
    assert echoed.output == "Echo: plain words"


def test_a_retry_after_a_failed_remote_task_sends_a_new_task(
    personas: Personas, peer: A2APeer, executor: Any
) -> None:
    workflow = remote_workflow(
        personas,
        peer.url,
        error_policy={"action": "retry", "retries": 1, "backoff_s": 0},
    )
    run = finished(run_start(workflow=workflow, user=personas.owner, inputs={"request": "fail"}))
    assert run.status == RunStatus.FAILED
    assert "The flight database is down." in run.reason
    assert peer.calls()["messages"] == 2, "the retry sent the message again, as a new task"
