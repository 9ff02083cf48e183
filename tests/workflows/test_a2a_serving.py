"""A published workflow served as an A2A 1.0 agent, driven by the a2a-sdk's own client over real
HTTP to a daphne process: the card (and its caching), send, stream, get, list, cancel, the
input-required round trip, and the refusals (no token, another workspace, text/plain)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from a2a.client import ClientConfig, create_client
from a2a.types.a2a_pb2 import (
    CancelTaskRequest,
    GetTaskRequest,
    ListTasksRequest,
    Message,
    Part,
    Role,
    SendMessageRequest,
    SubscribeToTaskRequest,
    TaskState,
)
from a2a.utils.errors import (
    A2AError,
    TaskNotCancelableError,
    TaskNotFoundError,
    UnsupportedOperationError,
)

from agents.fakellm import start_in_thread
from tests.agents.factories import make_agent, make_provider
from tests.api.conftest import make_token
from tests.conftest import Personas
from tests.support.processes import start_daphne
from workflows.a2a.services import a2a_exposure_set
from workflows.graph.examples import edge, node
from workflows.models import LaunchedVia, Run, RunStatus, Workflow
from workflows.services.workflows import workflow_create, workflow_publish

pytestmark = [pytest.mark.services, pytest.mark.slow]


@pytest.fixture(scope="module")
def model() -> Iterator[Any]:
    with start_in_thread(name="a2a-model") as server:
        yield server


@pytest.fixture(scope="module")
def server(django_db_setup: None, django_db_blocker: Any, model: Any) -> Iterator[str]:
    with django_db_blocker.unblock():
        process, url = start_daphne(
            "daphne-a2a",
            REDIS_URL="",
            A2A_EXECUTION_MODE="embedded",
            A2A_EXECUTOR_AUTOSTART="true",
            A2A_DEMO_MODEL_URL=model.url,
            A2A_OUTBOUND_ALLOWED_HOSTS="127.0.0.1",
            A2A_BLOCKING_SECONDS="60",
        )
    yield url
    process.stop()


def reviewed_workflow(personas: Personas, *, workspace: Any = None, owner: Any = None) -> Workflow:
    """A writer drafts on the topic; a person picks the tone; an editor rewrites in it."""
    workspace = workspace or personas.workspace
    owner = owner or personas.owner
    provider = make_provider(workspace)
    writer = make_agent(workspace, name="Writer", provider=provider, role="a writer")
    editor = make_agent(workspace, name="Editor", provider=provider, role="an editor")
    graph = {
        "schema_version": 1,
        "nodes": [
            node("start", "start", 0, 0, input_mapping={"topic": "topic"}),
            node(
                "draft",
                "agent",
                1,
                0,
                agent_id=str(writer.pk),
                input_template="Draft a note on {{ topic }}",
                output_variable="draft",
            ),
            node(
                "tone", "human", 2, 0, prompt="Which tone for {{ topic }}?", output_variable="tone"
            ),
            node(
                "edit",
                "agent",
                3,
                0,
                agent_id=str(editor.pk),
                input_template="Rewrite in a {{ tone }} tone:\n{{ draft }}",
                output_variable="note",
            ),
            node("end", "end", 4, 0, output="note"),
        ],
        "edges": [
            edge("start", "draft"),
            edge("draft", "tone"),
            edge("tone", "edit"),
            edge("edit", "end"),
        ],
        "variables": [
            {"name": "topic", "type": "string"},
            {"name": "draft", "type": "string"},
            {"name": "tone", "type": "string"},
            {"name": "note", "type": "string"},
        ],
        "inputs": {"fields": [{"name": "topic", "type": "text", "label": "Topic"}]},
        "output": "note",
    }
    workflow = workflow_create(workspace=workspace, user=owner, name="Reviewed note", graph=graph)
    workflow_publish(workflow=workflow, user=owner)
    a2a_exposure_set(workflow=workflow, user=owner, enabled=True)
    return workflow


def user_message(text: str, *, task_id: str = "", context_id: str = "") -> Message:
    return Message(
        message_id=str(uuid.uuid4()),
        role=Role.ROLE_USER,
        parts=[Part(text=text)],
        task_id=task_id,
        context_id=context_id,
    )


async def client_for(url: str, token: str | None, *, streaming: bool = True) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    http = httpx.AsyncClient(headers=headers, timeout=60)
    return await create_client(
        url, client_config=ClientConfig(streaming=streaming, httpx_client=http)
    )


async def send(client: Any, message: Message, **configuration: Any) -> list[Any]:
    request = SendMessageRequest(message=message)
    for name, value in configuration.items():
        setattr(request.configuration, name, value)
    return [event async for event in client.send_message(request)]


def test_the_card_describes_the_workflow_and_is_cached(
    server: str, personas: Personas, transactional_db: None
) -> None:
    workflow = reviewed_workflow(personas)
    card_url = f"{server}/a2a/{workflow.pk}/.well-known/agent-card.json"
    first = httpx.get(card_url)
    assert first.status_code == 200, first.text
    card = first.json()
    assert card["name"] == "Reviewed note"
    assert card["version"] == "1.0.0"
    assert card["capabilities"]["streaming"] is True
    jsonrpc = card["supportedInterfaces"][0]
    assert jsonrpc == {
        "url": f"{server}/a2a/{workflow.pk}/",
        "protocolBinding": "JSONRPC",
        "protocolVersion": "1.0",
    }
    assert card["securityRequirements"] == [{"schemes": {"bearer": {"list": ["run"]}}}]
    assert card["securitySchemes"]["bearer"]["httpAuthSecurityScheme"]["scheme"] == "Bearer"
    assert [skill["id"] for skill in card["skills"]] == ["reviewed-note"]
    assert "max-age=" in first.headers["cache-control"]
    assert first.headers["last-modified"].endswith("GMT")
    etag = first.headers["etag"]
    again = httpx.get(card_url, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""

    # Edited skills change the card, and with it the ETag.
    a2a_exposure_set(
        workflow=workflow,
        user=personas.owner,
        enabled=True,
        skills=[{"id": "note", "name": "Write a note", "description": "Drafts a short note."}],
    )
    changed = httpx.get(card_url, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert [skill["id"] for skill in changed.json()["skills"]] == ["note"]

    # Switched off: nothing is served there any more.
    a2a_exposure_set(workflow=workflow, user=personas.owner, enabled=False)
    assert httpx.get(card_url).status_code == 404


def test_a_message_runs_the_workflow_through_a_person_step_to_its_artifact(
    server: str, model: Any, personas: Personas, transactional_db: None
) -> None:
    model.set_script({"rules": [{"reply": "A crisp note on tides."}]})
    workflow = reviewed_workflow(personas)
    token = make_token(personas.editor, "run", name="partner-agent")

    async def scenario() -> tuple[Any, Any, Any, Any]:
        client = await client_for(f"{server}/a2a/{workflow.pk}/", token, streaming=False)
        try:
            # Blocking: the answer comes when the run asks the person's question.
            [first] = await send(client, user_message("tides"))
            asked = first.task
            # The next message on the task answers it; this time streamed.
            streaming = await client_for(f"{server}/a2a/{workflow.pk}/", token)
            try:
                events = await send(streaming, user_message("playful", task_id=asked.id))
            finally:
                await streaming.close()
            done = await client.get_task(GetTaskRequest(id=asked.id))
            listed = await client.list_tasks(ListTasksRequest())
            return asked, events, done, listed
        finally:
            await client.close()

    asked, events, done, listed = asyncio.run(scenario())
    assert asked.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
    assert "Which tone for tides?" in asked.status.message.parts[0].text
    run = Run.objects.get(pk=asked.id)
    assert run.launched_via == LaunchedVia.A2A
    assert run.api_token is not None and run.api_token.name == "partner-agent"
    assert run.created_by == personas.editor
    assert asked.context_id == str(run.pk)

    # The stream: the task, working updates with the editor's message, the artifact, completed.
    kinds = [event.WhichOneof("payload") for event in events]
    assert kinds[0] == "task"
    assert "artifact_update" in kinds
    assert kinds[-1] == "status_update"
    assert events[-1].status_update.status.state == TaskState.TASK_STATE_COMPLETED
    assert kinds.index("artifact_update") < len(kinds) - 1
    working = [
        e.status_update.status.message.parts[0].text
        for e in events
        if e.WhichOneof("payload") == "status_update"
        and e.status_update.status.state == TaskState.TASK_STATE_WORKING
        and e.status_update.status.message.parts
    ]
    assert working and all("tides" in text.lower() for text in working)

    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert run.answers == {"tone": "playful"}
    assert done.status.state == TaskState.TASK_STATE_COMPLETED
    assert done.artifacts[0].parts[0].text == run.output
    roles = [message.role for message in done.history]
    assert roles[0] == Role.ROLE_USER  # the topic
    assert Role.ROLE_AGENT in roles
    assert [task.id for task in listed.tasks] == [str(run.pk)]

    # The run page and the API say who launched it.
    from django.test import Client

    page = Client()
    page.force_login(personas.owner)
    html = page.get(f"/runs/{run.pk}/").content.decode()
    assert "Launched over A2A by partner-agent (a2a_" in html
    assert "(eddie)" in html


def test_cancel_subscribe_and_list_are_scoped_to_the_caller(
    server: str, model: Any, personas: Personas, transactional_db: None
) -> None:
    model.set_script({"rules": [{"reply": "Slowly, a draft.", "delay_ms": 20000}]})
    workflow = reviewed_workflow(personas)
    token = make_token(personas.editor, "run")
    other = make_token(personas.owner, "run")

    async def scenario() -> dict[str, Any]:
        client = await client_for(f"{server}/a2a/{workflow.pk}/", token, streaming=False)
        streaming = await client_for(f"{server}/a2a/{workflow.pk}/", token)
        theirs = await client_for(f"{server}/a2a/{workflow.pk}/", other, streaming=False)
        found: dict[str, Any] = {}
        try:
            [answer] = await send(client, user_message("slow tides"), return_immediately=True)
            task = answer.task
            found["submitted"] = task
            # Subscribing sees the task now, working while the model takes its time.
            stream = streaming.subscribe(SubscribeToTaskRequest(id=task.id))
            found["first"] = await anext(stream)
            await stream.aclose()
            found["theirs"] = await theirs.list_tasks(ListTasksRequest())
            try:
                await theirs.get_task(GetTaskRequest(id=task.id))
            except A2AError as error:
                found["theirs_get"] = error
            found["cancelled"] = await client.cancel_task(CancelTaskRequest(id=task.id))
            try:
                await client.cancel_task(CancelTaskRequest(id=task.id))
            except A2AError as error:
                found["again"] = error
            try:
                subscribe = streaming.subscribe(SubscribeToTaskRequest(id=task.id))
                await anext(subscribe)
            except A2AError as error:
                found["subscribe_after"] = error
        finally:
            await client.close()
            await streaming.close()
            await theirs.close()
        return found

    found = asyncio.run(scenario())
    assert found["submitted"].status.state in (
        TaskState.TASK_STATE_SUBMITTED,
        TaskState.TASK_STATE_WORKING,
    )
    assert found["first"].WhichOneof("payload") == "task"
    assert list(found["theirs"].tasks) == []
    assert isinstance(found["theirs_get"], TaskNotFoundError)
    assert found["cancelled"].status.state == TaskState.TASK_STATE_CANCELED
    assert Run.objects.get(pk=found["submitted"].id).status == RunStatus.CANCELLED
    assert isinstance(found["again"], TaskNotCancelableError)
    assert isinstance(found["subscribe_after"], UnsupportedOperationError)


def test_refusals_no_token_other_workspace_plain_text_and_no_version_header(
    server: str, personas: Personas, transactional_db: None
) -> None:
    workflow = reviewed_workflow(personas)
    theirs = reviewed_workflow(
        personas, workspace=personas.other_workspace, owner=personas.outsider
    )
    token = make_token(personas.editor, "run")
    reader = make_token(personas.editor, "read")
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "GetTask",
        "params": {"id": str(uuid.uuid4())},
    }
    version = {"A2A-Version": "1.0"}
    url = f"{server}/a2a/{workflow.pk}/"

    anonymous = httpx.post(url, json=body, headers=version)
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")

    wrong = httpx.post(url, json=body, headers={**version, "Authorization": "Bearer a2a_nope"})
    assert wrong.status_code == 401

    low = httpx.post(url, json=body, headers={**version, "Authorization": f"Bearer {reader}"})
    assert low.status_code == 403

    auth = {**version, "Authorization": f"Bearer {token}"}
    foreign = httpx.post(f"{server}/a2a/{theirs.pk}/", json=body, headers=auth)
    assert foreign.status_code == 404
    assert not Run.objects.filter(workflow=theirs).exists()

    plain = httpx.post(url, content=b"hello", headers={**auth, "Content-Type": "text/plain"})
    assert plain.status_code == 415
    assert plain.json()["error"]["code"] == -32005

    unknown = httpx.post(url, json=body, headers=auth)
    assert unknown.status_code == 200
    assert unknown.json()["error"]["code"] == -32001  # TaskNotFound

    headerless = httpx.post(url, json=body, headers={"Authorization": f"Bearer {token}"})
    assert headerless.json()["error"]["code"] == -32009  # no header: 0.3, not served

    # The HTTP+JSON binding answers the same, from the same handler.
    rest = httpx.get(f"{url}rest/tasks/{uuid.uuid4()}", headers=auth)
    assert rest.status_code == 404


def test_the_http_json_binding_and_the_callers_context(
    server: str, model: Any, personas: Personas, transactional_db: None
) -> None:
    """The same agent through HTTP+JSON: the caller's context id is kept, listed by it."""
    model.set_script({"rules": [{"reply": "A note."}]})
    workflow = reviewed_workflow(personas)
    token = make_token(personas.editor, "run")

    async def scenario() -> tuple[Any, Any, Any]:
        http = httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60)
        config = ClientConfig(
            streaming=False, httpx_client=http, supported_protocol_bindings=["HTTP+JSON"]
        )
        client = await create_client(f"{server}/a2a/{workflow.pk}/", client_config=config)
        try:
            [answer] = await send(client, user_message("tea", context_id="conversation-7"))
            mine = await client.list_tasks(ListTasksRequest(context_id="conversation-7"))
            none = await client.list_tasks(ListTasksRequest(context_id="another"))
            return answer.task, mine, none
        finally:
            await client.close()

    task, mine, none = asyncio.run(scenario())
    assert task.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
    assert task.context_id == "conversation-7"
    # The same message sent again (a retry) is the same task, not a second run.
    retried = httpx.post(
        f"{server}/a2a/{workflow.pk}/",
        headers={"Authorization": f"Bearer {token}", "A2A-Version": "1.0"},
        json={
            "jsonrpc": "2.0",
            "id": 2,
            "method": "SendMessage",
            "params": {
                "message": {
                    "messageId": Run.objects.get(pk=task.id).a2a_message_id,
                    "role": "ROLE_USER",
                    "parts": [{"text": "tea"}],
                },
                "configuration": {"returnImmediately": True},
            },
        },
    )
    assert retried.json()["result"]["task"]["id"] == task.id
    assert Run.objects.filter(workflow=workflow).count() == 1
    assert [t.id for t in mine.tasks] == [task.id]
    assert list(none.tasks) == []
    assert Run.objects.get(pk=task.id).a2a_context_id == "conversation-7"


def test_the_conformance_agent_is_off_unless_the_setting_turns_it_on(
    server: str, django_db_blocker: Any
) -> None:
    assert httpx.get(f"{server}/a2a/conformance/.well-known/agent-card.json").status_code == 404
    with django_db_blocker.unblock():
        process, url = start_daphne(
            "daphne-a2a-conformance",
            REDIS_URL="",
            A2A_EXECUTION_MODE="embedded",
            A2A_CONFORMANCE_AGENT="true",
        )
    try:

        async def scenario() -> tuple[Any, Any, Any]:
            client = await client_for(f"{url}/a2a/conformance/", None, streaming=False)
            streaming = await client_for(f"{url}/a2a/conformance/", None)
            try:
                done = await send(
                    client,
                    Message(
                        message_id="tck-artifact-text-1",
                        role=Role.ROLE_USER,
                        parts=[Part(text="x")],
                    ),
                )
                asked = await send(
                    client,
                    Message(
                        message_id="tck-input-required-1",
                        role=Role.ROLE_USER,
                        parts=[Part(text="x")],
                    ),
                )
                streamed = await send(
                    streaming,
                    Message(
                        message_id="tck-stream-001-1", role=Role.ROLE_USER, parts=[Part(text="x")]
                    ),
                )
                return done[0].task, asked[0].task, streamed
            finally:
                await client.close()
                await streaming.close()

        done, asked, streamed = asyncio.run(scenario())
    finally:
        process.stop()
    assert done.status.state == TaskState.TASK_STATE_COMPLETED
    assert done.artifacts[0].parts[0].text == "Generated text content"
    assert asked.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
    kinds = [event.WhichOneof("payload") for event in streamed]
    assert kinds == ["task", "status_update", "artifact_update", "status_update"]
    assert streamed[-1].status_update.status.state == TaskState.TASK_STATE_COMPLETED
