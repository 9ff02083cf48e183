from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command

from agents.crypto import credential_decrypt
from agents.models import Provider
from tests.agents.factories import make_provider
from tests.conftest import Personas


def test_rotation_re_encrypts_every_key_with_the_new_first_key(
    personas: Personas, settings, llm_server
) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.CREDENTIAL_KEYS = [old]
    provider = make_provider(
        personas.workspace,
        kind="openai_compatible",
        name="vLLM",
        base_url=f"{llm_server.url}/v1",
        api_key="sk-rotate-me-12345",
    )
    settings.CREDENTIAL_KEYS = [new, old]
    call_command("rotate_credential_keys", verbosity=0)
    settings.CREDENTIAL_KEYS = [new]
    provider.refresh_from_db()
    assert credential_decrypt(provider.credential_ciphertext) == "sk-rotate-me-12345"


def test_rotation_with_a_missing_old_key_changes_nothing(
    personas: Personas, settings, llm_server
) -> None:
    settings.CREDENTIAL_KEYS = [Fernet.generate_key().decode()]
    make_provider(
        personas.workspace,
        kind="openai_compatible",
        name="vLLM",
        base_url=f"{llm_server.url}/v1",
        api_key="sk-rotate-me-12345",
    )
    before = list(Provider.objects.values_list("credential_ciphertext", flat=True))
    settings.CREDENTIAL_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(CommandError, match="Nothing was changed"):
        call_command("rotate_credential_keys", verbosity=0)
    assert list(Provider.objects.values_list("credential_ciphertext", flat=True)) == before


def test_rotation_re_encrypts_remote_agents_tokens_too(personas: Personas, settings) -> None:
    from agents.crypto import credential_encrypt
    from agents.models import RemoteAgent

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.CREDENTIAL_KEYS = [old]
    remote = RemoteAgent.objects.create(
        workspace=personas.workspace,
        name="Desk",
        url="https://agents.example.com",
        credential_ciphertext=credential_encrypt("desk-token-rotate-1"),
        credential_origin="https://agents.example.com",
    )
    settings.CREDENTIAL_KEYS = [new, old]
    call_command("rotate_credential_keys", verbosity=0)
    settings.CREDENTIAL_KEYS = [new]
    remote.refresh_from_db()
    assert credential_decrypt(remote.credential_ciphertext) == "desk-token-rotate-1"


def test_rotation_re_encrypts_the_headers_of_mcp_servers(personas: Personas, settings) -> None:
    from agents.mcp.models import McpServer
    from agents.mcp.services import McpServerInput, mcp_server_create

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.CREDENTIAL_KEYS = [old]
    settings.TOOL_ALLOWED_HOSTS = []
    server = mcp_server_create(
        workspace=personas.workspace,
        user=personas.owner,
        data=McpServerInput(
            name="Docs",
            transport="http",
            url="https://93.184.215.14/mcp",
            headers={"Authorization": "Bearer mcp-rotate-me"},
        ),
    )
    settings.CREDENTIAL_KEYS = [new, old]
    call_command("rotate_credential_keys", verbosity=0)
    settings.CREDENTIAL_KEYS = [new]
    server = McpServer.objects.get(pk=server.pk)
    assert "mcp-rotate-me" in credential_decrypt(server.headers_ciphertext)
