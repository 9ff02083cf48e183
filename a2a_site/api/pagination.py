"""Opaque cursors for the API's lists ordered by a key and the id (keyset pagination)."""

import base64
import binascii
import json

from a2a_site.api.problems import ApiError, FieldError


def cursor_encode(*parts: str) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


def cursor_decode(text: str, size: int) -> list[str]:
    """The cursor's parts; a 422 naming `cursor` for anything this API did not give out."""
    try:
        parts = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError):
        parts = None
    well_formed = isinstance(parts, list) and len(parts) == size
    if not well_formed or not all(isinstance(part, str) for part in parts or ()):
        raise ApiError(
            "validation",
            "This cursor is damaged; start again from the first page.",
            errors=[FieldError("cursor", "Not a cursor this list gave.")],
        )
    return list(parts)
