"""Encryption of provider credentials at rest.

Keys come from A2A_CREDENTIAL_KEYS: the first encrypts, every one decrypts, so a new key can be put
first while old ciphertexts stay readable until they are rotated. No message raised here ever
contains key material, plaintext or ciphertext.
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

MASK = "••••"
MASK_MIN_LENGTH = 8


class CredentialKeyError(Exception):
    """No usable credential key is configured."""


class CredentialDecryptError(Exception):
    """A stored credential cannot be decrypted with the configured keys."""


DECRYPT_FAILURE = (
    "A stored credential cannot be decrypted with the configured keys; "
    "was A2A_CREDENTIAL_KEYS changed without keeping the old key?"
)


def credential_keys() -> list[str]:
    keys = list(settings.CREDENTIAL_KEYS or [])
    if keys:
        return keys
    if settings.DEBUG:
        return [credential_key_file_read_or_create(path=Path(settings.CREDENTIAL_KEY_FILE))]
    raise CredentialKeyError(
        "A2A_CREDENTIAL_KEYS is not set, so provider credentials cannot be encrypted. Generate a "
        "key with `python manage.py generate_credential_key` and set A2A_CREDENTIAL_KEYS to it."
    )


def credential_key_file_read_or_create(*, path: Path) -> str:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        credential_key_file_publish(path=path, key=Fernet.generate_key().decode())
    # Read back rather than trusting our own key: a racing process may have published first.
    key = path.read_text().strip()
    if not key:
        raise CredentialKeyError(f"The development credential key file {path} is empty.")
    return key


def credential_key_file_publish(*, path: Path, key: str) -> None:
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        # mkstemp already creates the file 0o600; chmod makes it explicit whatever the platform.
        os.fchmod(descriptor, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(key + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            # A hard link publishes atomically without clobbering a key another process
            # published (and maybe already used to encrypt) in the meantime.
            os.link(temporary, path)
        except FileExistsError:
            pass
        except OSError:
            # Filesystems without hard links: still atomic, last writer wins.
            os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


@functools.lru_cache(maxsize=8)
def credential_fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key.encode()) for key in keys])


def credential_cipher() -> MultiFernet:
    return credential_fernet(tuple(credential_keys()))


def credential_encrypt(plaintext: str) -> str:
    return credential_cipher().encrypt(plaintext.encode()).decode()


def credential_decrypt(token: str) -> str:
    try:
        return credential_cipher().decrypt(token.encode()).decode()
    except (InvalidToken, UnicodeError):
        # `from None`: the cause chain would otherwise carry the token into logs and tracebacks.
        raise CredentialDecryptError(DECRYPT_FAILURE) from None


def credential_rotate_token(token: str) -> str:
    try:
        return credential_cipher().rotate(token.encode()).decode()
    except (InvalidToken, UnicodeError):
        raise CredentialDecryptError(DECRYPT_FAILURE) from None


def credential_mask(plaintext: str) -> str:
    if len(plaintext) < MASK_MIN_LENGTH:
        return MASK
    return MASK + plaintext[-4:]
