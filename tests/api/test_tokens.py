"""API tokens: shown once and stored hashed, scoped, expiring, revocable, limited in rate, and
never more than their creator's role; the settings page that manages them."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from a2a_site.accounts.models import Membership, Role, Workspace
from a2a_site.api.models import ApiToken
from a2a_site.api.tokens import token_create, token_revoke
from tests.a2a_site.test_url_permissions import _published
from tests.api.conftest import make_token
from tests.conftest import Personas


def test_a_token_is_shown_once_and_stored_as_its_digest(personas: Personas) -> None:
    created = token_create(user=personas.editor, name="CI", scope="run")
    stored = ApiToken.objects.get(pk=created.token.pk)
    assert created.secret.startswith("a2a_") and len(created.secret) > 40
    assert stored.digest == hashlib.sha256(created.secret.encode()).hexdigest()
    assert stored.prefix == created.secret[:12]
    values = [str(value) for value in ApiToken.objects.filter(pk=stored.pk).values().get().values()]
    assert created.secret not in values


def test_me_names_the_caller_and_the_token(personas: Personas, api_as: Any) -> None:
    secret = make_token(personas.editor, "run", name="Nightly")
    answer = api_as(secret).call("get", "/api/v1/me")
    assert answer.status == 200
    assert answer.body["user"]["username"] == "eddie"
    assert answer.body["token"]["name"] == "Nightly"
    assert answer.body["token"]["prefix"] == secret[:12]
    assert secret not in str(answer.body)


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("Bearer a2a_unknown", "not known"),
        ("Bearer sk-something-else", "not an A2A Studio API token"),
        ("Basic dXNlcjpwYXNz", "Authorization: Bearer"),
        ("Bearer ", "Authorization: Bearer"),
    ],
)
def test_a_wrong_token_is_refused_with_the_reason(
    personas: Personas, header: str, reason: str
) -> None:
    response = Client().get("/api/v1/me", headers={"Authorization": header})
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert reason in response.json()["detail"]
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_wrong_token_is_not_rescued_by_a_session(personas: Personas, client_for: Any) -> None:
    client = client_for(personas.owner)
    response = client.get("/api/v1/me", headers={"Authorization": "Bearer a2a_nope"})
    assert response.status_code == 401


def test_revoked_expired_and_deactivated_tokens_stop_working(
    personas: Personas, api_as: Any
) -> None:
    revoked, expired, deactivated = (make_token(user) for user in (personas.owner,) * 3)
    ApiToken.objects.filter(prefix=revoked[:12]).update(revoked_at=timezone.now())
    ApiToken.objects.filter(prefix=expired[:12]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert api_as(deactivated).call("get", "/api/v1/me").status == 200
    personas.owner.is_active = False
    personas.owner.save()
    for secret, reason in (
        (revoked, "revoked"),
        (expired, "expired"),
        (deactivated, "deactivated"),
    ):
        answer = api_as(secret).call("get", "/api/v1/me")
        assert answer.status == 401
        assert reason in answer.problem["detail"]


def test_last_use_is_written_once_a_minute_not_per_request(personas: Personas, api_as: Any) -> None:
    api = api_as(make_token(personas.viewer, "read"))
    api.call("get", "/api/v1/me")
    token = ApiToken.objects.get(user=personas.viewer)
    assert token.last_used_at is not None
    with CaptureQueriesContext(connection) as queries:
        for _ in range(5):
            assert api.call("get", "/api/v1/me").status == 200
    writes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
    assert writes == []
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now() - timedelta(hours=1))
    api.call("get", "/api/v1/me")
    token.refresh_from_db()
    assert timezone.now() - token.last_used_at < timedelta(minutes=1)


def test_a_scope_too_low_is_403_and_names_the_scope(personas: Personas, api_as: Any) -> None:
    workflow = _published(personas)
    answer = api_as(make_token(personas.editor, "read")).call(
        "post", f"/api/v1/workflows/{workflow.pk}/runs", {"inputs": {}}
    )
    assert answer.status == 403
    assert answer.problem["type"] == "urn:a2a-studio:problem:scope"
    assert "run scope" in answer.problem["detail"]


def test_a_token_never_exceeds_its_creators_role(personas: Personas, api_as: Any) -> None:
    workflow = _published(personas)
    answer = api_as(make_token(personas.viewer, "admin")).call(
        "post", f"/api/v1/workflows/{workflow.pk}/runs", {"inputs": {}}
    )
    assert answer.status == 403
    assert "editor role" in answer.problem["detail"]
    # Reading is what a viewer may do, whatever the scope.
    assert (
        api_as(make_token(personas.viewer, "admin"))
        .call("get", f"/api/v1/workflows/{workflow.pk}")
        .status
        == 200
    )


def test_another_workspaces_objects_are_404(personas: Personas, api_as: Any) -> None:
    workflow = _published(personas)
    answer = api_as(make_token(personas.outsider, "admin")).call(
        "get", f"/api/v1/workflows/{workflow.pk}"
    )
    assert answer.status == 404
    assert answer.problem["type"] == "urn:a2a-studio:problem:not-found"


def test_a_token_for_one_workspace_sees_nothing_of_the_others(
    personas: Personas, api_as: Any
) -> None:
    workflow = _published(personas)
    second = Workspace.objects.create(name="Second", created_by=personas.editor)
    Membership.objects.create(workspace=second, user=personas.editor, role=Role.OWNER)
    api = api_as(make_token(personas.editor, "run", workspace=second))
    assert [w["name"] for w in api.call("get", "/api/v1/workspaces").body["items"]] == ["Second"]
    assert api.call("get", f"/api/v1/workflows/{workflow.pk}").status == 404
    assert api.call("get", f"/api/v1/workspaces/{personas.workspace.pk}").status == 404
    assert (
        api.call("get", "/api/v1/workflows", query={"workspace": personas.workspace.pk}).status
        == 404
    )
    # The same person's token for every workspace sees both.
    everywhere = api_as(make_token(personas.editor, "run"))
    assert everywhere.call("get", f"/api/v1/workflows/{workflow.pk}").status == 200


def test_a_service_token_needs_an_owner_and_acts_with_the_creators_role(
    personas: Personas, api_as: Any
) -> None:
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        token_create(
            user=personas.editor,
            name="Bot",
            scope="run",
            kind=ApiToken.Kind.SERVICE,
            workspace=personas.workspace,
        )
    workflow = _published(personas)
    secret = make_token(
        personas.owner, "run", workspace=personas.workspace, kind=ApiToken.Kind.SERVICE
    )
    launch = ("post", f"/api/v1/workflows/{workflow.pk}/runs", {"inputs": {}})
    assert api_as(secret).call(*launch).status == 201
    # The creator becomes a viewer: so does the token.
    Membership.objects.filter(user=personas.owner).update(role=Role.VIEWER)
    assert api_as(secret).call(*launch).status == 403
    # The creator leaves: the token sees nothing.
    Membership.objects.filter(user=personas.owner).delete()
    assert api_as(secret).call("get", f"/api/v1/workflows/{workflow.pk}").status == 404


def test_too_many_requests_answer_429_with_retry_after(
    personas: Personas, api_as: Any, settings: Any
) -> None:
    settings.API_RATE_LIMIT = 3
    settings.API_RATE_WINDOW_SECONDS = 3600  # the window cannot turn over during the test
    busy, calm = api_as(make_token(personas.owner)), api_as(make_token(personas.owner))
    statuses = [busy.call("get", "/api/v1/me").status for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = busy.call("get", "/api/v1/me")
    assert refused.problem["type"] == "urn:a2a-studio:problem:rate-limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 3600
    assert calm.call("get", "/api/v1/me").status == 200  # per token


def test_a_browser_session_keeps_the_csrf_check(personas: Personas) -> None:
    workflow = _published(personas)
    client = Client(enforce_csrf_checks=True)
    client.force_login(personas.editor)
    url = f"/api/v1/workflows/{workflow.pk}/runs"
    refused = client.post(url, {"inputs": {}}, content_type="application/json")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    client.get("/settings/api-tokens/")  # sets the CSRF cookie, as any page does
    token = client.cookies["csrftoken"].value
    accepted = client.post(
        url, {"inputs": {}}, content_type="application/json", headers={"X-CSRFToken": token}
    )
    assert accepted.status_code == 201
    # A token needs no CSRF token: no browser sends it on its own.
    scripted = Client(enforce_csrf_checks=True).post(
        url,
        {"inputs": {}},
        content_type="application/json",
        headers={"Authorization": f"Bearer {make_token(personas.editor, 'run')}"},
    )
    assert scripted.status_code == 201


# --- The settings page ----------------------------------------------------------------------------


def _create(client: Client, **data: str) -> Any:
    form = {"name": "CI", "scope": "run", "reach": "workspace", "expires": "90", **data}
    return client.post("/settings/api-tokens/new/", form, headers={"HX-Request": "true"})


def test_the_page_shows_a_new_token_once(personas: Personas, client_for: Any) -> None:
    client = client_for(personas.editor)
    empty = client.get("/settings/api-tokens/")
    assert "No tokens yet" in empty.content.decode()
    created = _create(client)
    assert created.status_code == 200
    token = ApiToken.objects.get(user=personas.editor)
    page = created.content.decode()
    assert "will not be shown again" in page
    assert token.workspace == personas.workspace and token.scope == "run"
    assert token.expires_at is not None
    secret = page.split('<code class="secret-box">')[1].split("</code>")[0]
    assert hashlib.sha256(secret.encode()).hexdigest() == token.digest
    again = client.get("/settings/api-tokens/").content.decode()
    assert token.prefix in again and secret not in again


def test_a_refused_form_says_why(personas: Personas, client_for: Any) -> None:
    answer = _create(client_for(personas.editor), name="")
    assert answer.status_code == 400
    assert ApiToken.objects.count() == 0
    # Only owners are offered service tokens; one forged by an editor is refused.
    forged = _create(client_for(personas.editor), reach="service")
    assert forged.status_code == 400
    assert ApiToken.objects.count() == 0


def test_owners_manage_service_tokens_and_revoking_stops_them(
    personas: Personas, client_for: Any, api_as: Any
) -> None:
    owner = client_for(personas.owner)
    _create(owner, reach="service", name="Deploy bot")
    token = ApiToken.objects.get(kind=ApiToken.Kind.SERVICE)
    secret = make_token(personas.owner, "run", workspace=personas.workspace, kind="service")
    # Another owner of the workspace sees and may revoke it; an editor sees, cannot revoke.
    editor_page = client_for(personas.editor).get("/settings/api-tokens/").content.decode()
    assert "Deploy bot" in editor_page
    assert (
        client_for(personas.editor).post(f"/settings/api-tokens/{token.pk}/revoke/").status_code
        == 404
    )
    second = ApiToken.objects.get(prefix=secret[:12])
    assert api_as(secret).call("get", "/api/v1/me").status == 200
    revoked = owner.post(
        f"/settings/api-tokens/{second.pk}/revoke/", headers={"HX-Request": "true"}
    )
    assert revoked.status_code == 200
    assert "Revoked" in revoked.content.decode()
    assert api_as(secret).call("get", "/api/v1/me").status == 401


def test_a_token_never_reaches_a_log_line(personas: Personas) -> None:
    import logging

    from agents.llm.redaction import RedactSecretsFilter, redact_secrets

    secret = make_token(personas.owner)
    assert secret not in redact_secrets(f"calling with {secret} now")
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "token %s", (secret,), None)
    RedactSecretsFilter().filter(record)
    assert secret not in record.getMessage()


def test_a_process_trusts_a_verified_token_briefly_and_forgets_it_when_revoked(
    personas: Personas, api_as: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from a2a_site.api import tokens as token_module

    settings.API_TOKEN_CACHE_SECONDS = 1
    clock = [1000.0]
    monkeypatch.setattr(token_module.time, "monotonic", lambda: clock[0])
    kept, revoked_here = make_token(personas.owner), make_token(personas.owner)
    api, other = api_as(kept), api_as(revoked_here)
    assert api.call("get", "/api/v1/me").status == 200
    assert other.call("get", "/api/v1/me").status == 200
    with CaptureQueriesContext(connection) as queries:
        assert api.call("get", "/api/v1/me").status == 200
    assert not [q for q in queries.captured_queries if "api_apitoken" in q["sql"]]

    # Revoked through the page's service: refused at once in this process.
    token_revoke(token=ApiToken.objects.get(prefix=revoked_here[:12]))
    assert other.call("get", "/api/v1/me").status == 401
    # Revoked by another process: refused here once the second is over.
    ApiToken.objects.filter(prefix=kept[:12]).update(revoked_at=timezone.now())
    assert api.call("get", "/api/v1/me").status == 200
    clock[0] += 1.0
    answer = api.call("get", "/api/v1/me")
    assert answer.status == 401 and "revoked" in answer.problem["detail"]
