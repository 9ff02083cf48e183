"""Redaction of key-like strings, by shape as well as by value.

Removing only the exact key is not enough: providers echo a partly masked key in their errors
(OpenAI writes `Incorrect API key provided: sk-abcde***…***1e55`), and that echo, stored in a
run's reason or a step's error, would show every member of a workspace part of the key. So every
text that comes from a provider error and is stored, shown or logged passes through
`redact_secrets`, which also removes whatever *looks* like a key: `sk-…` and `sk-ant-…` keys,
Google `AIza…` keys, this studio's own API tokens (`a2a_…`), bearer tokens, masked echoes
(anything with `***` in it) and long tokens after `key=`, `token=`, `api_key:` and the like.
"""

from __future__ import annotations

import logging
import re
from typing import Final

MASK: Final = "****"

_SHAPES: Final = re.compile(
    r"""
    (?P<bearer>\bbearer\s+)[\w~+/=*.-]{7,}[\w~+/=*-]
    | (?P<named>
        \b(?:api[_-]?key|access[_-]?token|auth[_-]?token|token|secret|password|key)
        ["']?\s*[=:]\s*["']?
      )(?P<value>[\w~+/*.-]{7,}[\w~+/*-])
    | (?P<sk>\bsk-[\w*-]{8,})
    | \ba2a_[\w-]{20,}
    | \bAIza[\w-]{20,}
    | (?<![\w-])[\w-]*\*{3,}[\w*-]*
    """,
    re.VERBOSE | re.IGNORECASE,
)
# The masked-echo branch starts only where a word starts: tried inside a long word at every
# position it would backtrack over the rest of the word each time (quadratic in its length;
# seconds for a model's 100 kB base64 answer). Its leftmost match is the same either way.
_DIGIT: Final = re.compile(r"[\d*]")


def _replace(match: re.Match[str]) -> str:
    named = match.group("named")
    if named is not None:
        # `key: customer_name` is a message, `key=3f9c…` or a long token is a secret.
        value = match.group("value")
        if len(value) < 24 and not (len(value) >= 12 and _DIGIT.search(value)):
            return match.group(0)
        return named + MASK
    sk = match.group("sk")
    if sk is not None and len(sk) < 40 and not _DIGIT.search(sk):
        return sk  # words such as sk-learn-pipelines; keys and masked echoes hold digits or *
    return (match.group("bearer") or "") + MASK


def redact_secrets(text: str, secret: str | None = None) -> str:
    """`text` without `secret` and without anything shaped like a key or a masked key."""
    if not text:
        return text
    if secret and secret in text:
        text = text.replace(secret, MASK)
    return _SHAPES.sub(_replace, text)


class RedactSecretsFilter(logging.Filter):
    """A logging filter that redacts key-like strings from a record's message and traceback.

    Installed on the console handler (settings.LOGGING) and on Celery's handlers; a safety net,
    since provider errors are redacted where they are made.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is logged as it is
            return True
        redacted = redact_secrets(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_secrets(record.exc_text)
        return True
