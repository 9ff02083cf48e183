"""Providers and agents through the API: the same services and checks as the pages, keys
write-only, another workspace's objects 404."""

from __future__ import annotations

import json
from typing import Any

from agents.crypto import credential_decrypt
from agents.models import Agent, Provider
from tests.agents.factories import make_agent, make_provider
from tests.api.conftest import make_token
from tests.conftest import Personas
from tests.support.canary import CANARY, canary_parts

OPENAI = {"kind": "openai", "name": "OpenAI", "base_url": "https://api.openai.com/v1"}


def test_a_providers_key_is_written_never_read(personas: Personas, api_as: Any) -> None:
    api = api_as(make_token(personas.editor, "admin"))
    created = api.call("post", "/api/v1/providers", {**OPENAI, "api_key": CANARY})
    assert created.status == 201, created.body
    assert created.body["has_key"] is True and created.body["key_hint"].startswith("••••")
    provider = Provider.objects.get(pk=created.body["id"])
    assert credential_decrypt(provider.credential_ciphertext) == CANARY
    # Neither the answer nor any read shows the key, nor eight characters of it.
    for answer in (
        created,
        api.call("get", f"/api/v1/providers/{provider.pk}"),
        api.call("get", "/api/v1/providers"),
        api.call("get", "/api/v1/openapi.json"),
    ):
        text = json.dumps(answer.body)
        assert not [part for part in canary_parts(text) if "•" not in part], answer.body
    # A change without a key keeps it; a new base URL needs it again; removing it removes it.
    kept = api.call("put", f"/api/v1/providers/{provider.pk}", {**OPENAI, "name": "Main"})
    assert kept.status == 200 and kept.body["has_key"] is True and kept.body["name"] == "Main"
    moved = api.call(
        "put",
        f"/api/v1/providers/{provider.pk}",
        {**OPENAI, "base_url": "https://other.example/v1"},
    )
    assert moved.status == 422
    assert moved.problem["errors"][0]["field"] == "api_key"
    removed = api.call("put", f"/api/v1/providers/{provider.pk}", {**OPENAI, "remove_key": True})
    assert removed.status == 422  # OpenAI needs a key: refused, and nothing changed
    provider.refresh_from_db()
    assert provider.has_credential


def test_provider_writes_need_the_admin_scope_and_an_editor(
    personas: Personas, api_as: Any
) -> None:
    provider = make_provider(personas.workspace)
    path = f"/api/v1/providers/{provider.pk}"
    body = {"kind": "demo", "name": "Renamed"}
    assert api_as(make_token(personas.editor, "write")).call("put", path, body).status == 403
    assert api_as(make_token(personas.viewer, "admin")).call("put", path, body).status == 403
    assert api_as(make_token(personas.outsider, "admin")).call("put", path, body).status == 404
    assert api_as(make_token(personas.viewer, "read")).call("get", path).status == 200
    answer = api_as(make_token(personas.editor, "admin")).call("put", path, body)
    assert answer.status == 200 and answer.body["name"] == "Renamed"


def test_an_unknown_kind_is_refused_with_the_choices(personas: Personas, api_as: Any) -> None:
    answer = api_as(make_token(personas.owner)).call(
        "post", "/api/v1/providers", {"kind": "nonsense", "name": "X"}
    )
    assert answer.status == 422
    assert answer.problem["errors"][0]["field"] == "kind"
    assert not Provider.objects.exists()


def test_agents_are_created_changed_versioned_and_deleted(personas: Personas, api_as: Any) -> None:
    provider = make_provider(personas.workspace)
    api = api_as(make_token(personas.editor, "write"))
    config = {"role": "a tidy writer", "model": {"provider_id": str(provider.pk), "model": "demo"}}
    created = api.call("post", "/api/v1/agents", {"name": "Writer", "config": config})
    assert created.status == 201, created.body
    assert created.body["latest_version"] == 1 and created.body["config"]["role"] == "a tidy writer"
    agent_id = created.body["id"]
    changed = api.call(
        "put",
        f"/api/v1/agents/{agent_id}",
        {"name": "Writer", "config": {**config, "role": "a terse writer"}, "note": "shorter"},
    )
    assert changed.status == 200 and changed.body["latest_version"] == 2
    versions = api.call("get", f"/api/v1/agents/{agent_id}/versions").body["items"]
    assert [(v["number"], v["note"]) for v in versions] == [(2, "shorter"), (1, "Created")]
    listed = api.call("get", "/api/v1/agents").body["items"]
    assert [(a["name"], a["config"]["role"]) for a in listed] == [("Writer", "a terse writer")]
    assert api.call("delete", f"/api/v1/agents/{agent_id}").status == 204
    assert not Agent.objects.filter(pk=agent_id).exists()


def test_an_invalid_agent_names_the_field(personas: Personas, api_as: Any) -> None:
    api = api_as(make_token(personas.editor, "write"))
    other = make_provider(personas.other_workspace)
    answer = api.call(
        "post",
        "/api/v1/agents",
        {
            "name": "Spy",
            "config": {"role": "spy", "model": {"provider_id": str(other.pk), "model": "demo"}},
        },
    )
    assert answer.status == 422
    assert answer.problem["errors"][0]["field"] == "config.provider"
    nameless = api.call("post", "/api/v1/agents", {"name": " ", "config": {}})
    assert nameless.problem["errors"][0]["field"] == "name"
    assert not Agent.objects.filter(name="Spy").exists()


def test_agents_and_lists_page_by_cursor(personas: Personas, api_as: Any) -> None:
    for name in ("Alpha", "Bravo", "Charlie", "Delta", "Echo"):
        make_agent(personas.workspace, name=name)
    api = api_as(make_token(personas.viewer, "read"))
    names, cursor = [], None
    while True:
        page = api.call(
            "get", "/api/v1/agents", query={"limit": 2, **({"cursor": cursor} if cursor else {})}
        ).body
        names += [agent["name"] for agent in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert names == ["Alpha", "Bravo", "Charlie", "Delta", "Echo"]
    assert api.call("get", "/api/v1/agents", query={"cursor": "%%%"}).status == 422


def _run_in(personas: Personas, **fields: Any) -> Any:
    from tests.a2a_site.test_url_permissions import _published
    from workflows.models import Run

    workflow = _published(personas)
    return Run.objects.create(
        workspace=personas.workspace, workflow=workflow, version=workflow.versions.get(), **fields
    )


def test_a_waiting_run_is_answered_once(personas: Personas, api_as: Any) -> None:
    run = _run_in(
        personas, status="waiting", waiting_request={"step_key": "ask", "question": "Go on?"}
    )
    api = api_as(make_token(personas.editor, "run"))
    detail = api.call("get", f"/api/v1/runs/{run.pk}").body
    assert detail["waiting_for"]["step_key"] == "ask"
    path = f"/api/v1/runs/{run.pk}/answer"
    assert api.call("post", path, {"step_key": "ask", "answer": "  "}).status == 422
    answered = api.call("post", path, {"step_key": "ask", "answer": "Yes, go on."})
    assert answered.status == 200 and answered.body["status"] == "queued"
    run.refresh_from_db()
    assert run.answers == {"ask": "Yes, go on."} and run.answered_by == {"ask": "eddie"}
    again = api.call("post", path, {"step_key": "ask", "answer": "Twice"})
    assert again.status == 409
    viewer = api_as(make_token(personas.viewer, "admin"))
    assert viewer.call("post", path, {"step_key": "ask", "answer": "x"}).status == 403


def test_a_failed_run_is_retried_and_a_finished_one_is_not(personas: Personas, api_as: Any) -> None:
    failed = _run_in(personas, status="failed", reason="Provider error")
    api = api_as(make_token(personas.editor, "run"))
    retried = api.call("post", f"/api/v1/runs/{failed.pk}/retry")
    assert retried.status == 200 and retried.body["status"] == "queued"
    assert retried.body["reason"] == ""
    refused = api.call("post", f"/api/v1/runs/{failed.pk}/retry")
    assert refused.status == 409
    assert "Only a failed run" in refused.problem["detail"]


def test_a_workflow_is_created_exported_and_imported_elsewhere(
    personas: Personas, api_as: Any
) -> None:
    from tests.api.test_contract import GRAPH
    from workflows.models import Workflow

    api = api_as(make_token(personas.editor, "write"))
    created = api.call("post", "/api/v1/workflows", {"name": "Digest", "graph": GRAPH})
    assert created.status == 201 and created.body["latest_version"] == 0
    duplicate = api.call("post", "/api/v1/workflows", {"name": "Digest"})
    assert duplicate.status == 422 and duplicate.problem["errors"][0]["field"] == "name"
    workflow_id = created.body["id"]
    assert api.call("post", f"/api/v1/workflows/{workflow_id}/publish").status == 201
    document = api.call("get", f"/api/v1/workflows/{workflow_id}/export").body
    assert (
        api.call("get", f"/api/v1/workflows/{workflow_id}/export", query={"version": 9}).status
        == 404
    )
    # Oscar imports it into his own workspace.
    oscar = api_as(make_token(personas.outsider, "write"))
    imported = oscar.call("post", "/api/v1/workflows/import", {"document": document})
    assert imported.status == 201, imported.body
    copy = Workflow.objects.get(pk=imported.body["workflow"]["id"])
    assert copy.workspace == personas.other_workspace and copy.latest_version == 1
    assert [f["name"] for f in imported.body["workflow"]["inputs"]] == ["topic"]


def test_the_dashboards_metrics_query(personas: Personas, api_as: Any) -> None:
    api = api_as(make_token(personas.viewer, "read"))
    answer = api.call("get", "/api/v1/metrics", query={"measure": "cost", "range": "7d"})
    assert answer.status == 200, answer.body
    assert isinstance(answer.body, dict)
    refused = api.call("get", "/api/v1/metrics", query={"measure": "nonsense"})
    assert refused.status == 422
    assert refused.problem["errors"][0]["field"] == "measure"
    elsewhere = api.call(
        "get",
        "/api/v1/metrics",
        query={"measure": "cost", "workspace": personas.other_workspace.pk},
    )
    assert elsewhere.status == 404


def test_a_run_is_launched_with_a_priority(personas: Personas, api_as: Any) -> None:
    from tests.a2a_site.test_url_permissions import _published
    from workflows.models import Run, RunPriority

    workflow = _published(personas)
    api = api_as(make_token(personas.editor, "run"))
    path = f"/api/v1/workflows/{workflow.pk}/runs"
    launched = api.call("post", path, {"inputs": {}, "priority": "high"})
    assert launched.status == 201, launched.body
    assert launched.body["priority"] == "high"
    assert Run.objects.get(pk=launched.body["id"]).priority == RunPriority.HIGH
    plain = api.call("post", path, {"inputs": {}})
    assert plain.status == 201 and plain.body["priority"] == "normal", "the workflow's default"
    refused = api.call("post", path, {"inputs": {}, "priority": "urgent"})
    assert refused.status == 422
    assert refused.problem["errors"][0]["field"].endswith("priority")
    assert Run.objects.count() == 2, "nothing launched by the refused request"


def test_a_launch_records_its_token_and_says_who_launched(
    personas: Personas, api_as: Any, client_for: Any
) -> None:
    from tests.a2a_site.test_url_permissions import _published
    from workflows.models import Run

    workflow = _published(personas)
    api = api_as(make_token(personas.editor, "run", name="nightly build"))
    launched = api.call("post", f"/api/v1/workflows/{workflow.pk}/runs", {"inputs": {}})
    assert launched.status == 201, launched.body
    run = Run.objects.get(pk=launched.body["id"])
    assert run.api_token is not None and run.api_token.name == "nightly build"
    assert launched.body["launched_by"] == {
        "token_name": "nightly build",
        "token_prefix": run.api_token.prefix,
        "user": "eddie",
    }
    page = client_for(personas.viewer).get(f"/runs/{run.pk}/").content.decode()
    assert f"Launched over the API by nightly build ({run.api_token.prefix}…) (eddie)" in page
    history = client_for(personas.viewer).get("/runs/").content.decode()
    assert f"nightly build ({run.api_token.prefix}…)" in history


def test_a_workflow_is_renamed_and_deleted_unless_it_ran(personas: Personas, api_as: Any) -> None:
    from workflows.models import Run, Workflow
    from workflows.services.runs import run_start
    from workflows.services.workflows import EMPTY_GRAPH, workflow_create, workflow_publish

    api = api_as(make_token(personas.editor, "write", workspace=personas.workspace))
    made = api.call("post", "/api/v1/workflows", {"name": "Digest"})
    assert made.status == 201
    workflow_id = made.body["id"]
    renamed = api.call(
        "patch", f"/api/v1/workflows/{workflow_id}", {"name": "Daily digest", "description": "AM"}
    )
    assert renamed.status == 200, renamed.body
    assert renamed.body["name"] == "Daily digest" and renamed.body["description"] == "AM"
    workflow_create(workspace=personas.workspace, user=personas.owner, name="Taken")
    clash = api.call("patch", f"/api/v1/workflows/{workflow_id}", {"name": "Taken"})
    assert clash.status == 422 and clash.problem["errors"][0]["field"] == "name"

    # Scope and role: a `run` token, a viewer, and an outsider change nothing.
    runner = api_as(make_token(personas.editor, "run", workspace=personas.workspace))
    assert runner.call("delete", f"/api/v1/workflows/{workflow_id}").status == 403
    viewer = api_as(make_token(personas.viewer, "write", workspace=personas.workspace))
    assert viewer.call("delete", f"/api/v1/workflows/{workflow_id}").status == 403
    outsider = api_as(make_token(personas.outsider, "admin"))
    assert outsider.call("delete", f"/api/v1/workflows/{workflow_id}").status == 404
    assert api.call("delete", f"/api/v1/workflows/{workflow_id}").status == 204
    assert not Workflow.objects.filter(pk=workflow_id).exists()

    # One that ran keeps its history: refused, saying why.
    ran = workflow_create(
        workspace=personas.workspace, user=personas.owner, name="Ran", graph=EMPTY_GRAPH
    )
    workflow_publish(workflow=ran, user=personas.owner)
    run_start(workflow=ran, user=personas.owner, inputs={}, dispatch=False)
    refused = api.call("delete", f"/api/v1/workflows/{ran.pk}")
    assert refused.status == 422
    assert "1 run" in refused.problem["detail"]
    assert Run.objects.filter(workflow=ran).count() == 1
