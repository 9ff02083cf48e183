"""Re-encrypting stored credentials with the first configured key (after a key rotation)."""

from __future__ import annotations

from django.db import transaction

from agents.crypto import credential_rotate_token
from agents.models import Provider


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
    return rotated
