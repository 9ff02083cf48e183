"""`/api/v1/webhooks`: subscriptions and their delivery log through the API — scopes (read to
see, admin to change), roles, another workspace's objects 404, problems naming the field."""

from __future__ import annotations

from typing import Any

from a2a_site.accounts.models import Workspace
from agents.crypto import credential_decrypt
from tests.api.conftest import make_token
from tests.conftest import Personas
from workflows.services.workflows import workflow_create
from workflows.webhooks.delivery import webhooks_send_due
from workflows.webhooks.models import WebhookDelivery, WebhookSubscription

HOOK = {
    "name": "Deploy bot",
    "url": "https://hooks.example.com/a2a",
    "events": ["run.succeeded", "run.failed"],
}


def test_an_admin_token_subscribes_and_gets_the_secret_once(
    personas: Personas, api_as: Any
) -> None:
    api = api_as(make_token(personas.owner, "admin", workspace=personas.workspace))
    created = api.call("post", "/api/v1/webhooks", HOOK)
    assert created.status == 201, created.body
    secret = created.body["secret"]
    assert secret.startswith("whsec_")
    subscription = WebhookSubscription.objects.get()
    assert secret not in subscription.secret_encrypted
    assert credential_decrypt(subscription.secret_encrypted) == secret
    assert created.body["subscription"]["events"] == ["run.succeeded", "run.failed"]
    assert created.body["subscription"]["workflow_id"] is None

    listed = api.call("get", "/api/v1/webhooks")
    assert listed.status == 200
    assert [item["name"] for item in listed.body["items"]] == ["Deploy bot"]
    assert "secret" not in listed.body["items"][0]
    one = api.call("get", f"/api/v1/webhooks/{subscription.pk}")
    assert one.status == 200 and "secret" not in one.body

    changed = api.call(
        "patch", f"/api/v1/webhooks/{subscription.pk}", {"enabled": False, "name": "Paused"}
    )
    assert changed.status == 200, changed.body
    assert changed.body["enabled"] is False and changed.body["name"] == "Paused"
    assert changed.body["url"] == HOOK["url"]  # what was not sent is kept

    rotated = api.call("post", f"/api/v1/webhooks/{subscription.pk}/secret")
    assert rotated.status == 200 and rotated.body["secret"] != secret
    assert api.call("delete", f"/api/v1/webhooks/{subscription.pk}").status == 204
    assert not WebhookSubscription.objects.exists()


def test_scopes_and_roles(personas: Personas, api_as: Any) -> None:
    writer = api_as(make_token(personas.owner, "write", workspace=personas.workspace))
    refused = writer.call("post", "/api/v1/webhooks", HOOK)
    assert refused.status == 403
    assert refused.problem["type"] == "urn:a2a-studio:problem:scope"
    assert "admin" in refused.problem["detail"]
    viewer = api_as(make_token(personas.viewer, "admin", workspace=personas.workspace))
    assert viewer.call("post", "/api/v1/webhooks", HOOK).status == 403  # the role
    editor = api_as(make_token(personas.editor, "admin", workspace=personas.workspace))
    made = editor.call("post", "/api/v1/webhooks", HOOK)
    assert made.status == 201
    hook_id = made.body["subscription"]["id"]
    # Reading needs only `read`; a viewer sees the subscriptions and their log.
    reader = api_as(make_token(personas.viewer, "read", workspace=personas.workspace))
    assert reader.call("get", f"/api/v1/webhooks/{hook_id}").status == 200
    assert reader.call("get", f"/api/v1/webhooks/{hook_id}/deliveries").status == 200
    assert reader.call("delete", f"/api/v1/webhooks/{hook_id}").status == 403


def test_another_workspaces_subscription_is_not_found(personas: Personas, api_as: Any) -> None:
    owner = api_as(make_token(personas.owner, "admin", workspace=personas.workspace))
    hook_id = owner.call("post", "/api/v1/webhooks", HOOK).body["subscription"]["id"]
    owner.call("post", f"/api/v1/webhooks/{hook_id}/test")
    delivery = WebhookDelivery.objects.get()
    outsider = api_as(make_token(personas.outsider, "admin"))
    for method, path in (
        ("get", f"/api/v1/webhooks/{hook_id}"),
        ("patch", f"/api/v1/webhooks/{hook_id}"),
        ("delete", f"/api/v1/webhooks/{hook_id}"),
        ("post", f"/api/v1/webhooks/{hook_id}/secret"),
        ("post", f"/api/v1/webhooks/{hook_id}/test"),
        ("get", f"/api/v1/webhooks/{hook_id}/deliveries"),
        ("post", f"/api/v1/webhooks/{hook_id}/deliveries/{delivery.pk}/redeliver"),
    ):
        answer = outsider.call(method, path, {} if method == "patch" else None)
        assert answer.status == 404, (method, path, answer.body)
        assert answer.problem["type"] == "urn:a2a-studio:problem:not-found"
    assert WebhookSubscription.objects.filter(pk=hook_id).exists()


def test_bad_subscriptions_are_refused_naming_the_field(personas: Personas, api_as: Any) -> None:
    api = api_as(make_token(personas.owner, "admin", workspace=personas.workspace))
    elsewhere = Workspace.objects.create(name="Elsewhere")
    foreign = workflow_create(workspace=elsewhere, user=personas.outsider, name="Theirs")
    for body, field in (
        ({**HOOK, "url": "http://127.0.0.1:9/hook"}, "url"),
        ({**HOOK, "url": "http://10.0.0.7/hook"}, "url"),
        ({**HOOK, "events": ["run.exploded"]}, "events"),
        ({**HOOK, "events": []}, "events"),
        ({**HOOK, "workflow_id": str(foreign.pk)}, "workflow"),
    ):
        answer = api.call("post", "/api/v1/webhooks", body)
        assert answer.status == 422, (body, answer.body)
        assert [error["field"] for error in answer.problem["errors"]] == [field]
    assert not WebhookSubscription.objects.exists()
    assert (
        "A2A_OUTBOUND_ALLOWED_HOSTS"
        in api.call("post", "/api/v1/webhooks", {**HOOK, "url": "http://127.0.0.1:9/hook"}).problem[
            "errors"
        ][0]["message"]
    )


def test_the_delivery_log_and_redeliver(personas: Personas, api_as: Any, settings: Any) -> None:
    api = api_as(make_token(personas.owner, "admin", workspace=personas.workspace))
    hook_id = api.call("post", "/api/v1/webhooks", HOOK).body["subscription"]["id"]
    sent = api.call("post", f"/api/v1/webhooks/{hook_id}/test")
    assert sent.status == 202
    assert sent.body["event"] == "webhook.test" and sent.body["status"] == "pending"
    # Nobody listens at hooks.example.com: the attempt fails and is retried later.
    settings.WEBHOOKS_TIMEOUT_SECONDS = 2
    webhooks_send_due()

    log = api.call("get", f"/api/v1/webhooks/{hook_id}/deliveries")
    assert log.status == 200
    (item,) = log.body["items"]
    assert item["attempts"] == 1 and item["status"] == "pending"
    assert item["next_attempt_at"] is not None and item["log"][0]["error"]
    assert item["payload"]["type"] == "webhook.test"
    assert item["event_id"].startswith("evt_")

    again = api.call("post", f"/api/v1/webhooks/{hook_id}/deliveries/{item['id']}/redeliver")
    assert again.status == 202, again.body
    assert again.body["attempts"] == 0 and again.body["event_id"] == item["event_id"]
    assert (
        api.call("get", f"/api/v1/webhooks/{hook_id}/deliveries", query={"status": "failed"}).body[
            "items"
        ]
        == []
    )
