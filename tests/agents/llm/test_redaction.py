"""Key-like strings are redacted by their shape, not only when they equal the stored key."""

from __future__ import annotations

import logging

import pytest

from agents.fakellm.server import openai_key_echo
from agents.llm.errors import classify_http_error, make_error
from agents.llm.redaction import RedactSecretsFilter, redact_secrets
from tests.support.canary import CANARY, canary_parts


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Incorrect API key provided: sk-CANAR********1e55.",
            "Incorrect API key provided: ****.",
        ),
        ("Incorrect API key provided: ****1e55.", "Incorrect API key provided: ****."),
        ("Authorization: Bearer abcdefghijklmnop", "Authorization: Bearer ****"),
        ("Bearer eyJhbGciOi.eyJzdWIi.c2lnbmF0dXJl.", "Bearer ****."),
        ("x-api-key: sk-ant-api03-AbCdEf123456", "x-api-key: ****"),
        (
            "GET /v1beta/models?key=AIzaSyA-0123456789abcdefghij&alt=sse",
            "GET /v1beta/models?key=****&alt=sse",
        ),
        ('{"api_key": "0123456789abcdef0123"}', '{"api_key": "****"}'),
        ("token=deadbeefdeadbeefdeadbeef", "token=****"),
        ("use AIzaSyA-0123456789abcdefghij here", "use **** here"),
        ("sk-proj-AbCdEf12GhIjKlMnOpQrStUvWx", "****"),
        ("sk-ant-" + "AbCdEfGhIj" * 4, "****"),
    ],
)
def test_key_shapes_are_redacted(text: str, expected: str) -> None:
    assert redact_secrets(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "The task-force used sk-learn and Bearer auth.",
        "monkey=banana, max_tokens: 512, run 6f1c2d3e-8c0e-4a5b-9c7d-0e1f2a3b4c5d",
        "Node 'research' failed: The provider did not answer in time.",
        "Unknown variable key: customer_name; token: expired_session",
        "Install sk-learn-pipelines-extra first.",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact_secrets(text) == text


def test_the_exact_key_is_redacted_whatever_its_shape() -> None:
    assert redact_secrets("the key is plainword42 here", "plainword42") == "the key is **** here"


def test_an_openai_style_echo_of_the_canary_leaves_no_part_of_it() -> None:
    echo = f"Incorrect API key provided: {openai_key_echo(CANARY)}."
    assert canary_parts(echo)  # the echo does give part of the key away
    error = classify_http_error(401, {"error": {"message": echo}}, deployment_id="p:gpt")
    assert error.kind == "auth"
    assert canary_parts(error.message) == []
    assert "Incorrect API key provided: ****" in error.message


def test_a_key_cut_by_the_length_limit_is_still_redacted() -> None:
    detail = "x" * 290 + " " + CANARY
    assert canary_parts(make_error("auth", detail).message) == []


def test_the_logging_filter_redacts_messages_and_tracebacks() -> None:
    record = logging.LogRecord(
        "agents", logging.ERROR, __file__, 1, "call failed: %s", (CANARY,), None
    )
    try:
        raise RuntimeError(f"Bearer {CANARY}")
    except RuntimeError:
        import sys

        record.exc_info = sys.exc_info()
    assert RedactSecretsFilter().filter(record)
    formatted = logging.Formatter().format(record)
    assert canary_parts(formatted) == []
    assert "call failed: ****" in formatted


def test_the_console_handler_redacts() -> None:
    from django.conf import settings

    assert "redact_secrets" in settings.LOGGING["handlers"]["console"]["filters"]


def test_celery_workers_handlers_redact_too() -> None:
    from a2a_site.celery import _redact_worker_logs

    logger = logging.getLogger("tests.celery-like")
    handler = logging.StreamHandler()
    logger.addHandler(handler)
    try:
        _redact_worker_logs(logger=logger)
        _redact_worker_logs(logger=logger)  # set up twice (worker and task loggers): one filter
        assert [type(f) for f in handler.filters] == [RedactSecretsFilter]
    finally:
        logger.removeHandler(handler)
