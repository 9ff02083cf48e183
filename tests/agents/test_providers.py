"""Providers: saving them safely, testing their connection, and never showing their keys."""

from __future__ import annotations

import logging

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from agents.crypto import credential_decrypt
from agents.fakellm import RunningServer
from agents.models import Provider
from agents.services.providers import ProviderInput, provider_update
from tests.agents.factories import make_agent, make_provider
from tests.conftest import Personas
from tests.support.canary import CANARY


def _openai_compatible(personas: Personas, server: RunningServer, **extra) -> Provider:
    return make_provider(
        personas.workspace,
        kind="openai_compatible",
        name="Local vLLM",
        base_url=f"{server.url}/v1",
        **extra,
    )


def test_a_key_is_stored_encrypted_and_shown_masked(personas: Personas, llm_server) -> None:
    provider = _openai_compatible(personas, llm_server, api_key=CANARY)
    assert CANARY not in provider.credential_ciphertext
    assert credential_decrypt(provider.credential_ciphertext) == CANARY
    assert provider.credential_masked == "••••4f6a8c0e"[-8:] or provider.credential_masked.endswith(
        CANARY[-4:]
    )
    assert provider.credential_base_url == f"{llm_server.url}/v1"


def test_changing_the_base_url_requires_the_key_again(personas: Personas, llm_server) -> None:
    provider = _openai_compatible(personas, llm_server, api_key=CANARY)
    moved = ProviderInput(
        kind="openai_compatible", name="Local vLLM", base_url=f"{llm_server.url}/v2"
    )
    with pytest.raises(ValidationError, match="enter the API key again"):
        provider_update(provider=provider, data=moved)
    provider.refresh_from_db()
    assert provider.base_url == f"{llm_server.url}/v1", "nothing half-saved"
    provider_update(
        provider=provider,
        data=ProviderInput(
            kind="openai_compatible",
            name="Local vLLM",
            base_url=f"{llm_server.url}/v2",
            api_key="sk-new-key-123456",
        ),
    )
    provider.refresh_from_db()
    assert provider.credential_base_url == f"{llm_server.url}/v2"


def test_private_and_metadata_addresses_are_refused(personas: Personas, settings) -> None:
    settings.OUTBOUND_ALLOWED_HOSTS = []
    for url, words in (
        ("http://127.0.0.1:8000/v1", "loopback"),
        ("http://10.1.2.3/v1", "private"),
        ("http://169.254.169.254/latest", "metadata"),
    ):
        with pytest.raises(ValidationError, match=words):
            make_provider(personas.workspace, kind="openai_compatible", name=url, base_url=url)
    assert not Provider.objects.exists()


def test_hosted_providers_need_a_key(personas: Personas) -> None:
    with pytest.raises(ValidationError, match="needs an API key"):
        make_provider(personas.workspace, kind="anthropic", name="Claude")


def test_names_are_unique_per_workspace(personas: Personas) -> None:
    make_provider(personas.workspace, name="Demo")
    with pytest.raises(ValidationError, match="has this name"):
        make_provider(personas.workspace, name="Demo")
    make_provider(personas.other_workspace, name="Demo")


def test_connection_check_lists_models(personas: Personas, client_for, llm_server) -> None:
    provider = _openai_compatible(personas, llm_server)
    response = client_for(personas.editor).post(
        reverse("provider_check", args=[provider.pk]), headers={"HX-Request": "true"}
    )
    provider.refresh_from_db()
    assert response.status_code == 200
    assert provider.last_check_ok is True
    assert "demo" in provider.models_available
    page = response.content.decode()
    assert "models available" in page and "model(s)" not in page


@pytest.mark.parametrize(
    ("path", "key", "expected"),
    [
        ("/v1", "wrong-key-000000", "refused the API key"),
        ("/nope", "", "not as an LLM API"),
    ],
)
def test_connection_check_explains_what_is_wrong(
    personas: Personas, client_for, llm_server, path: str, key: str, expected: str
) -> None:
    llm_server.set_script({"api_key": "sk-right-key-99999"})
    provider = make_provider(
        personas.workspace,
        kind="openai_compatible",
        name="Endpoint",
        base_url=f"{llm_server.url}{path}",
        api_key=key or None,
    )
    client_for(personas.editor).post(reverse("provider_check", args=[provider.pk]))
    provider.refresh_from_db()
    assert provider.last_check_ok is False
    assert expected in provider.last_check_message
    assert "wrong-key" not in provider.last_check_message


def test_connection_check_reports_an_unreachable_server(personas: Personas, settings) -> None:
    from agents.services.providers import _run_check
    from tests.support.processes import free_port

    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    provider = make_provider(
        personas.workspace,
        kind="openai_compatible",
        name="Gone",
        base_url=f"http://127.0.0.1:{free_port()}/v1",
    )
    result = _run_check(provider)
    assert result.ok is False
    assert "Could not connect" in result.message


def test_the_demo_model_connects_without_a_key(personas: Personas, llm_server) -> None:
    from agents.services.providers import _run_check

    provider = make_provider(personas.workspace)
    result = _run_check(provider)
    assert result.ok, result.message
    assert "demo" in result.models


def test_a_provider_in_use_cannot_be_deleted(personas: Personas, client_for) -> None:
    provider = make_provider(personas.workspace)
    make_agent(personas.workspace, provider=provider)
    response = client_for(personas.editor).post(
        reverse("provider_delete", args=[provider.pk]), follow=True
    )
    assert "Agents use this provider (Researcher)" in response.content.decode()
    assert Provider.objects.filter(pk=provider.pk).exists()


def test_the_canary_key_never_leaves_the_database(
    personas: Personas, client_for, llm_server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    llm_server.set_script({"api_key": CANARY})
    client = client_for(personas.owner)
    response = client.post(
        reverse("provider_create") + "?kind=openai_compatible",
        {"name": "Canary", "base_url": f"{llm_server.url}/v1", "api_key": CANARY, "timeout_s": 60},
    )
    provider = Provider.objects.get(name="Canary")
    pages = [response]
    pages.append(client.post(reverse("provider_check", args=[provider.pk]), follow=True))
    provider.refresh_from_db()
    assert provider.last_check_ok, provider.last_check_message
    for name in ("provider_detail", "provider_edit"):
        pages.append(client.get(reverse(name, args=[provider.pk])))
    pages.append(client.get(reverse("provider_list")))
    # A failing call with the canary as a wrong key must not echo it either.
    llm_server.set_script({"api_key": "sk-something-else-0000"})
    pages.append(client.post(reverse("provider_check", args=[provider.pk]), follow=True))
    for page in pages:
        assert CANARY not in page.content.decode(), page.request["PATH_INFO"]
    assert (
        CANARY[-4:] in client.get(reverse("provider_detail", args=[provider.pk])).content.decode()
    )
    assert CANARY not in caplog.text
    assert all(CANARY not in str(entry) for entry in llm_server.requests)


# --- Testing settings before they are saved -------------------------------------------------------


def _test_new(client, kind: str, data: dict, *, htmx: bool = True):
    return client.post(
        reverse("provider_test_new") + f"?kind={kind}",
        {"timeout_s": 60, **data},
        headers={"HX-Request": "true"} if htmx else {},
    )


def test_unsaved_settings_are_tested_and_nothing_is_stored(
    personas: Personas, client_for, llm_server
) -> None:
    llm_server.set_script({"api_key": CANARY})
    client = client_for(personas.editor)
    response = _test_new(
        client,
        "openai_compatible",
        {"name": "vLLM", "base_url": f"{llm_server.url}/v1", "api_key": CANARY},
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "badge-ok" in page and "Connected in" in page
    assert "models available" in page and "model(s)" not in page
    assert "Nothing was saved" in page
    assert CANARY not in page
    assert not Provider.objects.exists()

    wrong = _test_new(
        client,
        "openai_compatible",
        {"name": "vLLM", "base_url": f"{llm_server.url}/v1", "api_key": "sk-wrong-key-0000"},
    ).content.decode()
    assert "refused the API key" in wrong and "sk-wrong-key" not in wrong


def test_unsaved_settings_go_through_the_outbound_policy(
    personas: Personas, client_for, settings, llm_server
) -> None:
    settings.OUTBOUND_ALLOWED_HOSTS = []
    page = _test_new(
        client_for(personas.editor),
        "openai_compatible",
        {"name": "Sneaky", "base_url": f"{llm_server.url}/v1"},
    ).content.decode()
    assert "badge-danger" in page and "loopback" in page
    assert not any(r["path"].endswith("/models") for r in llm_server.requests)


def test_the_edit_form_tests_with_the_stored_key_only_towards_its_url(
    personas: Personas, client_for, llm_server
) -> None:
    llm_server.set_script({"api_key": CANARY})
    provider = _openai_compatible(personas, llm_server, api_key=CANARY)
    client = client_for(personas.editor)
    url = reverse("provider_test", args=[provider.pk])
    same = client.post(
        url,
        {"name": "Local vLLM", "base_url": f"{llm_server.url}/v1", "timeout_s": 60},
        headers={"HX-Request": "true"},
    ).content.decode()
    assert "badge-ok" in same and CANARY not in same
    asked = len(llm_server.requests)
    moved = client.post(
        url,
        {"name": "Local vLLM", "base_url": f"{llm_server.url}/v2", "timeout_s": 60},
        headers={"HX-Request": "true"},
    ).content.decode()
    assert "enter the API key to test it" in moved
    assert len(llm_server.requests) == asked, "the stored key went nowhere"
    provider.refresh_from_db()
    assert provider.base_url == f"{llm_server.url}/v1" and provider.last_checked_at is None


def test_a_test_without_javascript_comes_back_on_the_form(
    personas: Personas, client_for, llm_server
) -> None:
    response = _test_new(
        client_for(personas.editor),
        "openai_compatible",
        {"name": "vLLM", "base_url": f"{llm_server.url}/v1", "api_key": CANARY},
        htmx=False,
    )
    page = response.content.decode()
    assert "Save provider" in page and "Connected in" in page
    assert CANARY not in page
    assert "enter it again." in page, "the emptied key field says so"


def test_after_a_refused_save_the_key_field_says_to_enter_the_key_again(
    personas: Personas, client_for, settings
) -> None:
    settings.OUTBOUND_ALLOWED_HOSTS = []
    client = client_for(personas.editor)
    response = client.post(
        reverse("provider_create") + "?kind=openai_compatible",
        {"name": "Local", "base_url": "http://127.0.0.1:9/v1", "api_key": CANARY, "timeout_s": 60},
    )
    page = response.content.decode()
    assert CANARY not in page
    assert "The key you entered was not saved" in page
    assert "keep the stored key" not in page
    fresh = client.get(reverse("provider_create") + "?kind=openai_compatible").content.decode()
    assert "keep the stored key" not in fresh


def test_a_saved_provider_points_on_to_an_agent(personas: Personas, client_for) -> None:
    provider = make_provider(personas.workspace, name="Demo")
    provider.models_available = ["demo"]
    provider.save()
    client = client_for(personas.editor)
    detail = client.get(reverse("provider_detail", args=[provider.pk])).content.decode()
    link = reverse("agent_create") + f"?provider={provider.pk}"
    assert link in detail and "Create an agent with this provider" in detail
    form = client.get(link).content.decode()
    assert f'<option value="{provider.pk}" selected>' in form
    assert 'value="demo"' in form


def test_a_fresh_check_says_just_now(personas: Personas, client_for, llm_server) -> None:
    provider = make_provider(personas.workspace)
    page = client_for(personas.editor).post(
        reverse("provider_check", args=[provider.pk]), headers={"HX-Request": "true"}
    )
    text = page.content.decode()
    assert "Tested just now" in text and "0 minutes" not in text
    assert "Connection <span" in text and ">working<" in text
    assert text.count("model available") + text.count("models available") == 1


def test_the_embedded_mode_lets_a_provider_on_this_machine_be_saved_and_called(
    personas: Personas, client_for, llm_server, settings
) -> None:
    # A newcomer's local Ollama or gateway on 127.0.0.1, with no allow-list set up.
    settings.OUTBOUND_ALLOWED_HOSTS = []
    settings.OUTBOUND_ALLOW_LOOPBACK = True
    provider = _openai_compatible(personas, llm_server)

    response = client_for(personas.editor).post(
        reverse("provider_check", args=[provider.pk]), headers={"HX-Request": "true"}
    )

    provider.refresh_from_db()
    assert response.status_code == 200
    assert provider.last_check_ok is True, provider.last_check_message
    # Only this machine: other private addresses and the metadata address stay refused.
    for url, words in (
        ("http://10.1.2.3/v1", "private"),
        ("http://169.254.169.254/latest", "metadata"),
    ):
        with pytest.raises(ValidationError, match=words):
            make_provider(personas.workspace, kind="openai_compatible", name=url, base_url=url)


def test_the_provider_form_says_which_local_addresses_are_allowed(
    personas: Personas, client_for, settings
) -> None:
    settings.OUTBOUND_ALLOW_LOOPBACK = True
    page = client_for(personas.editor).get(reverse("provider_create") + "?kind=ollama")
    assert "addresses on this machine" in page.content.decode()

    settings.OUTBOUND_ALLOW_LOOPBACK = False
    page = client_for(personas.editor).get(reverse("provider_create") + "?kind=ollama")
    assert "addresses on this machine" not in page.content.decode()
    assert "A2A_OUTBOUND_ALLOWED_HOSTS" in page.content.decode()
