"""Re-encrypting stored credentials with the first configured key (after a key rotation)."""

from __future__ import annotations

from collections.abc import Callable

from django.db import transaction

from agents.crypto import credential_rotate_token
from agents.models import McpServer, Provider, RemoteAgent

# Other apps keep secrets encrypted with the same keys (alert webhooks' signing secrets); they
# register here, since this app cannot import them, and rotate in the same transaction.
CredentialRotator = Callable[[], int]
_rotators: list[CredentialRotator] = []


def credential_rotator_register(rotator: CredentialRotator) -> None:
    if rotator not in _rotators:
        _rotators.append(rotator)


def credentials_rotate() -> int:
    """Re-encrypts every stored key with the first key of A2A_CREDENTIAL_KEYS.

    All rows change in one transaction, so a key that cannot be decrypted (fail closed) leaves
    everything as it was, and the old key can be dropped only after this succeeded.
    """
    rotated = 0
    with transaction.atomic():
        for provider in Provider.objects.select_for_update().exclude(credential_ciphertext=""):
            provider.credential_ciphertext = credential_rotate_token(provider.credential_ciphertext)
            provider.save(update_fields=["credential_ciphertext"])
            rotated += 1
        remote_agents = RemoteAgent.objects.select_for_update().exclude(credential_ciphertext="")
        for remote in remote_agents:
            remote.credential_ciphertext = credential_rotate_token(remote.credential_ciphertext)
            remote.save(update_fields=["credential_ciphertext"])
            rotated += 1
        for server in McpServer.objects.select_for_update().exclude(headers_ciphertext=""):
            server.headers_ciphertext = credential_rotate_token(server.headers_ciphertext)
            server.save(update_fields=["headers_ciphertext"])
            rotated += 1
        for rotator in _rotators:
            rotated += rotator()
    return rotated
