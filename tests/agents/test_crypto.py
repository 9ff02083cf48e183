"""Provider credentials are encrypted at rest, survive key rotation and fail closed."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from agents.crypto import (
    CredentialDecryptError,
    CredentialKeyError,
    credential_decrypt,
    credential_encrypt,
    credential_keys,
    credential_mask,
    credential_rotate_token,
)

SECRET = "sk-live-0123456789abcdef"


def new_key() -> str:
    return Fernet.generate_key().decode()


def test_a_credential_round_trips_and_is_not_stored_in_clear(settings) -> None:
    settings.CREDENTIAL_KEYS = [new_key()]

    token = credential_encrypt(SECRET)

    assert SECRET not in token
    assert credential_decrypt(token) == SECRET


def test_rotation_keeps_old_tokens_readable_and_rotate_moves_them_to_the_new_key(settings) -> None:
    old, new = new_key(), new_key()
    settings.CREDENTIAL_KEYS = [old]
    token = credential_encrypt(SECRET)

    settings.CREDENTIAL_KEYS = [new, old]
    assert credential_decrypt(token) == SECRET
    rotated = credential_rotate_token(token)

    settings.CREDENTIAL_KEYS = [new]
    assert credential_decrypt(rotated) == SECRET
    with pytest.raises(CredentialDecryptError):
        credential_decrypt(token)


def test_a_wrong_key_fails_closed_without_leaking_anything(settings) -> None:
    original = new_key()
    settings.CREDENTIAL_KEYS = [original]
    token = credential_encrypt(SECRET)
    wrong = new_key()
    settings.CREDENTIAL_KEYS = [wrong]

    with pytest.raises(CredentialDecryptError) as caught:
        credential_decrypt(token)

    error = caught.value
    assert "A2A_CREDENTIAL_KEYS" in str(error)
    for secret in (SECRET, token, original, wrong):
        assert secret not in str(error)
        assert secret not in repr(error)
    assert error.__cause__ is None
    assert error.__suppress_context__


def test_a_tampered_token_fails_closed(settings) -> None:
    settings.CREDENTIAL_KEYS = [new_key()]
    token = credential_encrypt(SECRET)
    tampered = token[:-6] + ("A" if token[-6] != "A" else "B") + token[-5:]

    with pytest.raises(CredentialDecryptError):
        credential_decrypt(tampered)
    with pytest.raises(CredentialDecryptError):
        credential_rotate_token(tampered)


def test_in_debug_without_keys_a_private_key_file_is_created_once_and_reused(
    settings, tmp_path: Path
) -> None:
    key_file = tmp_path / "var" / "nested" / "credential.key"
    settings.CREDENTIAL_KEYS = []
    settings.DEBUG = True
    settings.CREDENTIAL_KEY_FILE = key_file

    token = credential_encrypt(SECRET)

    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert credential_keys() == [key_file.read_text().strip()]
    assert credential_decrypt(token) == SECRET
    assert [path.name for path in key_file.parent.iterdir()] == ["credential.key"]


def test_an_existing_debug_key_file_is_used_as_is(settings, tmp_path: Path) -> None:
    key = new_key()
    key_file = tmp_path / "credential.key"
    key_file.write_text(key + "\n")
    settings.CREDENTIAL_KEYS = []
    settings.DEBUG = True
    settings.CREDENTIAL_KEY_FILE = key_file

    assert credential_keys() == [key]


def test_without_keys_outside_debug_there_is_no_fallback(settings, tmp_path: Path) -> None:
    settings.CREDENTIAL_KEYS = []
    settings.DEBUG = False
    settings.CREDENTIAL_KEY_FILE = tmp_path / "credential.key"

    with pytest.raises(CredentialKeyError, match="generate_credential_key"):
        credential_encrypt(SECRET)
    assert not settings.CREDENTIAL_KEY_FILE.exists()


@pytest.mark.parametrize(
    ("plaintext", "masked"),
    [(SECRET, "••••cdef"), ("12345678", "••••5678"), ("1234567", "••••"), ("", "••••")],
)
def test_masking_shows_at_most_the_last_four_characters(plaintext: str, masked: str) -> None:
    assert credential_mask(plaintext) == masked
