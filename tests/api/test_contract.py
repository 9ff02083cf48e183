"""The public API over real HTTP to daphne, each answer checked against the OpenAPI schema the
server itself publishes: a journey through workflows and runs, and every kind of refusal."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import pytest

from tests.api.conftest import make_token
from tests.conftest import Personas
from tests.support.processes import start_daphne
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.slow]

GRAPH: dict[str, Any] = {
    "schema_version": 1,
    "nodes": [
        {
            "id": "start",
            "type": "start",
            "label": "Start",
            "position": {"x": 0, "y": 0},
            "config": {"input_mapping": {"topic": "topic"}},
        },
        {"id": "end", "type": "end", "label": "End", "position": {"x": 0, "y": 200}},
    ],
    "edges": [{"id": "start-end", "source": "start", "target": "end"}],
    "variables": [{"name": "topic", "type": "string"}],
    "inputs": {"fields": [{"name": "topic", "type": "text", "label": "Topic"}]},
}


@pytest.fixture(scope="module")
def server(django_db_setup: None, django_db_blocker: Any) -> Iterator[str]:
    """daphne as `make run` has it: runs execute inside the web process."""
    with django_db_blocker.unblock():
        process, url = start_daphne(
            "daphne-api",
            REDIS_URL="",
            A2A_EXECUTION_MODE="embedded",
            A2A_EXECUTOR_AUTOSTART="true",
            A2A_API_RATE_LIMIT="1000",
        )
    yield url
    process.stop()


class Api:
    """A script's view of the API: bearer token, JSON; every answer checked against the schema."""

    def __init__(self, base: str, token: str | None, schema: dict[str, Any]) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=base, headers=headers, timeout=30)
        self.schema = schema

    def __call__(
        self, method: str, path: str, body: Any = None, *, check: bool = True, **kwargs: Any
    ) -> httpx.Response:
        if body is not None:
            kwargs["json"] = body
        response = self.http.request(method, path, **kwargs)
        if check:
            conforms(self.schema, method, path, response)
        return response


def _template_of(schema: dict[str, Any], path: str) -> str | None:
    bare = path.split("?")[0]
    for template in schema["paths"]:
        parts, wanted = template.split("/"), bare.split("/")
        if len(parts) == len(wanted) and all(
            p == w or (p.startswith("{") and p.endswith("}"))
            for p, w in zip(parts, wanted, strict=True)
        ):
            return template
    return None


def conforms(schema: dict[str, Any], method: str, path: str, response: httpx.Response) -> None:
    """The answer is what the schema promises for its path, method and status."""
    status = response.status_code
    content_type = response.headers.get("content-type", "")
    if status >= 400:
        assert content_type.startswith("application/problem+json"), (path, status, content_type)
    template = _template_of(schema, path)
    if template is None or method.lower() not in schema["paths"][template]:
        assert status in (404, 405), (path, status)
        documented = {"$ref": "#/components/schemas/Problem"}
    else:
        responses = schema["paths"][template][method.lower()]["responses"]
        entry = responses.get(str(status)) or responses.get(f"{str(status)[0]}XX")
        assert entry is not None, f"{method} {template} answered {status}, not documented"
        if "content" not in entry:  # 204
            assert response.content == b"", response.content
            return
        media = "application/problem+json" if status >= 400 else "application/json"
        documented = entry["content"][media]["schema"]
    jsonschema.validate(
        response.json(),
        {**documented, "components": schema["components"]},
        cls=jsonschema.Draft202012Validator,
    )


@pytest.fixture
def openapi(server: str) -> dict[str, Any]:
    answer = httpx.get(f"{server}/api/v1/openapi.json", timeout=30)
    assert answer.status_code == 200
    document: dict[str, Any] = answer.json()
    return document


def test_the_schema_is_openapi_3_1_and_the_reference_page_is_served(
    server: str, openapi: dict[str, Any], transactional_db: None
) -> None:
    assert openapi["openapi"] == "3.1.0"
    assert "/api/v1/workflows/{workflow_id}/runs" in openapi["paths"]
    assert "Problem" in openapi["components"]["schemas"]
    page = httpx.get(f"{server}/api/v1/docs/", timeout=30)
    assert page.status_code == 200
    assert "/static/vendor/swagger-ui-5.31.0/swagger-ui-bundle.js" in page.text
    assert "//cdn" not in page.text and "unpkg" not in page.text
    script = httpx.get(f"{server}/static/vendor/swagger-ui-5.31.0/swagger-ui-bundle.js", timeout=30)
    assert script.status_code == 200


def test_a_script_edits_publishes_launches_and_follows_a_run(
    server: str, openapi: dict[str, Any], personas: Personas, transactional_db: None
) -> None:
    from workflows.services.workflows import workflow_create

    workflow = workflow_create(workspace=personas.workspace, user=personas.owner, name="Digest")
    api = Api(server, make_token(personas.editor, "write"), openapi)

    me = api("GET", "/api/v1/me").json()
    assert me["user"]["username"] == "eddie" and me["scope"] == "write"
    spaces = api("GET", "/api/v1/workspaces").json()["items"]
    assert [(w["name"], w["role"]) for w in spaces] == [("Lab", "editor")]
    listed = api("GET", "/api/v1/workflows").json()
    assert [w["name"] for w in listed["items"]] == ["Digest"]

    # The draft, saved by compare-and-swap as the builder saves it.
    draft = api("GET", f"/api/v1/workflows/{workflow.pk}/draft").json()
    base = draft["draft_updated_at"]
    saved = api("PUT", f"/api/v1/workflows/{workflow.pk}/draft", {"graph": GRAPH, "base": base})
    assert saved.status_code == 200, saved.text
    assert saved.json()["report"]["ok"] is True
    stale = api("PUT", f"/api/v1/workflows/{workflow.pk}/draft", {"graph": {}, "base": base})
    assert stale.status_code == 409
    assert stale.json()["draft_updated_at"] == saved.json()["draft_updated_at"]
    workflow.refresh_from_db()
    assert workflow.draft == GRAPH  # the stale save wrote nothing

    invalid = api("POST", f"/api/v1/workflows/{workflow.pk}/validate", {"graph": {"nodes": 3}})
    assert invalid.status_code == 200 and invalid.json()["ok"] is False
    published = api("POST", f"/api/v1/workflows/{workflow.pk}/publish", {"note": "first"})
    assert published.status_code == 201 and published.json()["number"] == 1
    versions = api("GET", f"/api/v1/workflows/{workflow.pk}/versions").json()["items"]
    assert [v["number"] for v in versions] == [1]
    assert api("GET", f"/api/v1/workflows/{workflow.pk}/versions/1").json()["graph"]["nodes"]
    detail = api("GET", f"/api/v1/workflows/{workflow.pk}").json()
    assert [field["name"] for field in detail["inputs"]] == ["topic"]

    # Launch, then follow it to its end.
    launched = api("POST", f"/api/v1/workflows/{workflow.pk}/runs", {"inputs": {"topic": "tides"}})
    assert launched.status_code == 201, launched.text
    run = launched.json()
    assert run["inputs"] == {"topic": "tides"} and run["launched_via"] == "api"
    finished = wait_for(
        lambda: (
            (answer := api("GET", f"/api/v1/runs/{run['id']}").json())["status"]
            in ("succeeded", "failed")
            and answer
        ),
        timeout=60,
        interval=0.1,
        what="the run to finish",
    )
    assert finished["status"] == "succeeded", finished
    events = api("GET", f"/api/v1/runs/{run['id']}/events", params={"after": 0}).json()
    assert events["status"] == "succeeded"
    assert events["last_seq"] == finished["last_seq"]
    assert [event["seq"] for event in events["events"]] == list(range(1, finished["last_seq"] + 1))

    # Cancelling a finished run changes nothing and says so by its status.
    cancelled = api("POST", f"/api/v1/runs/{run['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "succeeded"


def test_events_are_read_after_a_seq_one_page_at_a_time(
    server: str, openapi: dict[str, Any], personas: Personas, transactional_db: None
) -> None:
    from tests.a2a_site.test_url_permissions import _run
    from workflows.models import Run, RunEvent

    run = Run.objects.get(pk=_run(personas)["run_id"])
    for seq in range(1, 6):
        RunEvent.objects.create(run=run, seq=seq, kind="message", data={"text": f"part {seq}"})
    Run.objects.filter(pk=run.pk).update(last_seq=5)
    api = Api(server, make_token(personas.viewer, "read"), openapi)
    path = f"/api/v1/runs/{run.pk}/events"
    first = api("GET", path, params={"after": 0, "limit": 2}).json()
    assert [event["seq"] for event in first["events"]] == [1, 2]
    assert first["has_more"] is True and first["last_seq"] == 2
    rest = api("GET", path, params={"after": first["last_seq"]}).json()
    assert [event["data"]["text"] for event in rest["events"]] == ["part 3", "part 4", "part 5"]
    assert rest["has_more"] is False
    assert api("GET", path, params={"after": 5}).json()["events"] == []
    assert api("GET", path, params={"after": -1}).status_code == 422


def test_the_run_list_filters_like_the_history_and_pages_by_cursor(
    server: str, openapi: dict[str, Any], personas: Personas, transactional_db: None
) -> None:
    from tests.a2a_site.test_url_permissions import _published
    from workflows.models import Run

    workflow = _published(personas)
    version = workflow.versions.get()
    made = [
        Run.objects.create(
            workspace=personas.workspace, workflow=workflow, version=version, status=status
        ).pk
        for status in ["succeeded", "failed", "succeeded", "queued", "succeeded"]
    ]
    api = Api(server, make_token(personas.viewer, "read"), openapi)
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api("GET", "/api/v1/runs", params=params).json()
        seen += [run["id"] for run in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(str(pk) for pk in made)
    assert len(seen) == len(set(seen))
    failed = api("GET", "/api/v1/runs", params={"status": "failed"}).json()["items"]
    assert [run["status"] for run in failed] == ["failed"]
    both = api("GET", "/api/v1/runs", params=[("status", "failed"), ("status", "queued")]).json()
    assert sorted(run["status"] for run in both["items"]) == ["failed", "queued"]
    wrong = api("GET", "/api/v1/runs", params={"from": "2026-13-01"})
    assert wrong.status_code == 422
    assert wrong.json()["errors"][0]["field"] == "from"
    damaged = api("GET", "/api/v1/runs", params={"cursor": "not-a-cursor"})
    assert damaged.status_code == 422


def test_refusals_come_in_one_shape_with_the_right_status(
    server: str, openapi: dict[str, Any], personas: Personas, transactional_db: None
) -> None:
    from tests.a2a_site.test_url_permissions import _run
    from workflows.models import Run

    run_id = _run(personas)["run_id"]
    workflow = Run.objects.get(pk=run_id).workflow
    launch = f"/api/v1/workflows/{workflow.pk}/runs"
    editor = Api(server, make_token(personas.editor, "run"), openapi)
    reader = Api(server, make_token(personas.editor, "read"), openapi)
    outsider = Api(server, make_token(personas.outsider, "admin"), openapi)
    anonymous = Api(server, None, openapi)

    def kind(response: httpx.Response) -> tuple[int, str]:
        return response.status_code, response.json()["type"].rsplit(":", 1)[1]

    malformed = editor(
        "POST", launch, content=b'{"inputs": ', headers={"Content-Type": "application/json"}
    )
    assert kind(malformed) == (400, "malformed")
    assert "not valid JSON" in malformed.json()["detail"]
    invalid = editor("POST", launch, {"inputs": [1, 2]})
    assert kind(invalid) == (422, "validation")
    assert invalid.json()["errors"][0]["field"] == "inputs"
    assert kind(anonymous("GET", "/api/v1/me")) == (401, "unauthenticated")
    assert kind(reader("POST", launch, {"inputs": {}})) == (403, "scope")
    assert kind(outsider("GET", f"/api/v1/runs/{run_id}")) == (404, "not-found")
    assert kind(outsider("POST", launch, {"inputs": {}})) == (404, "not-found")
    assert kind(editor("GET", "/api/v1/no-such-thing")) == (404, "not-found")
    wrong_method = editor("DELETE", launch)
    assert kind(wrong_method) == (405, "method")
    assert wrong_method.headers["allow"] == "POST"
    too_large = editor(
        "POST", launch, content=b" " * 3_000_000, headers={"Content-Type": "application/json"}
    )
    assert kind(too_large) == (413, "too-large")
    deep = editor(
        "POST",
        launch,
        content=b"[" * 100 + b"]" * 100,
        headers={"Content-Type": "application/json"},
    )
    assert kind(deep) == (400, "malformed")


def test_twenty_simultaneous_launches_over_http_start_one_run(
    server: str, openapi: dict[str, Any], personas: Personas, transactional_db: None
) -> None:
    from tests.a2a_site.test_url_permissions import _published
    from workflows.models import Run

    workflow = _published(personas)
    token = make_token(personas.editor, "run")
    start = threading.Barrier(20)
    answers: list[tuple[int, str]] = []

    def launch() -> None:
        with httpx.Client(base_url=server, timeout=60) as http:
            start.wait(timeout=30)
            response = http.post(
                f"/api/v1/workflows/{workflow.pk}/runs",
                json={"inputs": {}},
                headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "ci-build-7"},
            )
            answers.append((response.status_code, json.loads(response.content)["id"]))

    threads = [threading.Thread(target=launch) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    assert len(answers) == 20
    assert {status for status, _ in answers} == {201}
    assert len({run_id for _, run_id in answers}) == 1
    assert Run.objects.filter(workflow=workflow).count() == 1


@pytest.fixture(scope="module")
def limited_server(django_db_setup: None, django_db_blocker: Any) -> Iterator[str]:
    with django_db_blocker.unblock():
        process, url = start_daphne(
            "daphne-api-limited",
            REDIS_URL="",
            A2A_EXECUTION_MODE="embedded",
            A2A_API_RATE_LIMIT="5",
            A2A_API_RATE_WINDOW_SECONDS="3600",
        )
    yield url
    process.stop()


def test_a_token_over_its_rate_gets_429_with_retry_after(
    limited_server: str, personas: Personas, transactional_db: None
) -> None:
    token = make_token(personas.viewer, "read")
    with httpx.Client(
        base_url=limited_server, headers={"Authorization": f"Bearer {token}"}
    ) as http:
        statuses = [http.get("/api/v1/me").status_code for _ in range(6)]
        refused = http.get("/api/v1/me")
    assert statuses == [200] * 5 + [429]
    assert refused.headers["content-type"] == "application/problem+json"
    assert 1 <= int(refused.headers["retry-after"]) <= 3600


def test_providers_and_agents_over_http(
    server: str, openapi: dict[str, Any], personas: Personas, transactional_db: None
) -> None:
    api = Api(server, make_token(personas.owner, "admin"), openapi)
    provider = api("POST", "/api/v1/providers", {"kind": "demo", "name": "Local demo"})
    assert provider.status_code == 201, provider.text
    provider_id = provider.json()["id"]
    config = {"role": "a summarizer", "model": {"provider_id": provider_id, "model": "demo"}}
    agent = api("POST", "/api/v1/agents", {"name": "Summarizer", "config": config})
    assert agent.status_code == 201, agent.text
    assert api("GET", f"/api/v1/agents/{agent.json()['id']}").json()["name"] == "Summarizer"
    refused = api("DELETE", f"/api/v1/providers/{provider_id}")
    assert refused.status_code == 409  # the agent calls it
    assert "Summarizer" in refused.json()["detail"]
    assert api("DELETE", f"/api/v1/agents/{agent.json()['id']}").status_code == 204
    assert api("DELETE", f"/api/v1/providers/{provider_id}").status_code == 204


def test_the_workflow_pages_snippets_run_as_pasted(
    server: str, personas: Personas, transactional_db: None
) -> None:
    import os
    import subprocess
    import sys

    from workflows.api_snippets import api_snippets
    from workflows.graph import graph_load
    from workflows.services.workflows import workflow_create, workflow_publish

    workflow = workflow_create(
        workspace=personas.workspace, user=personas.owner, name="Pasted", graph=GRAPH
    )
    version = workflow_publish(workflow=workflow, user=personas.owner)
    snippets = api_snippets(
        base_url=server, workflow_id=workflow.pk, fields=graph_load(version.graph).inputs.fields
    )
    env = {**os.environ, "A2A_TOKEN": make_token(personas.editor, "run")}
    shell = subprocess.run(
        ["bash", "-c", snippets["curl"]], env=env, capture_output=True, text=True, timeout=90
    )
    assert shell.returncode == 0, shell.stderr
    assert "event: status" in shell.stdout and '"status": "succeeded"' in shell.stdout
    python = subprocess.run(
        [sys.executable, "-c", snippets["python"]],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert python.returncode == 0, python.stderr
    assert python.stdout.strip().endswith("status: succeeded"), python.stdout
    assert workflow.runs.count() == 2


def test_webhook_subscriptions_over_http(
    server: str, openapi: dict[str, Any], personas: Personas, transactional_db: None
) -> None:
    from workflows.services.workflows import workflow_create

    workflow = workflow_create(workspace=personas.workspace, user=personas.owner, name="Digest")
    admin = Api(server, make_token(personas.editor, "admin", workspace=personas.workspace), openapi)
    body = {
        "name": "Deploy bot",
        "url": "https://hooks.example.com/a2a",
        "events": ["run.succeeded", "alert.fired"],
        "workflow_id": str(workflow.pk),
    }
    created = admin("POST", "/api/v1/webhooks", body, headers={"Idempotency-Key": "hook-1"})
    assert created.status_code == 201, created.text
    assert created.json()["secret"].startswith("whsec_")
    hook = created.json()["subscription"]
    # A retried create replays the first answer: one subscription, the same secret.
    replay = admin("POST", "/api/v1/webhooks", body, headers={"Idempotency-Key": "hook-1"})
    assert replay.json() == created.json() and replay.headers["idempotent-replayed"] == "true"
    path = f"/api/v1/webhooks/{hook['id']}"
    assert [item["id"] for item in admin("GET", "/api/v1/webhooks").json()["items"]] == [hook["id"]]
    assert admin("GET", path).json()["workflow_id"] == str(workflow.pk)
    patched = admin("PATCH", path, {"workflow_id": None})
    assert patched.status_code == 200 and patched.json()["workflow_id"] is None
    sent = admin("POST", f"{path}/test")
    assert sent.status_code == 202 and sent.json()["event"] == "webhook.test"
    log = admin("GET", f"{path}/deliveries").json()["items"]
    assert [item["id"] for item in log] == [sent.json()["id"]]
    again = admin("POST", f"{path}/deliveries/{sent.json()['id']}/redeliver")
    assert again.status_code == 202 and again.json()["event_id"] == sent.json()["event_id"]
    assert admin("POST", f"{path}/secret").json()["secret"].startswith("whsec_")

    writer = Api(server, make_token(personas.editor, "write"), openapi)
    refused = writer("DELETE", path)
    assert refused.status_code == 403 and refused.json()["type"].endswith(":scope")
    outsider = Api(server, make_token(personas.outsider, "admin"), openapi)
    assert outsider("GET", path).status_code == 404
    assert outsider("GET", f"{path}/deliveries").status_code == 404
    private = admin("POST", "/api/v1/webhooks", {**body, "url": "http://192.168.1.10/hook"})
    assert private.status_code == 422 and private.json()["errors"][0]["field"] == "url"
    assert admin("DELETE", path).status_code == 204
    assert admin("GET", path).status_code == 404
