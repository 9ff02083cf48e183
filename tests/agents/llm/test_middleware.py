"""Gateway middleware: a workspace's hooks around every call, applied once in the gateway."""

from __future__ import annotations

import random
from typing import Any

import pytest
from pydantic import ValidationError

from agents.fakellm import RunningServer
from agents.llm import Gateway, InMemoryLedger, LLMError, LLMRequest, Route, RoutePlan
from agents.llm.middleware import Middleware

from .conftest import FakeTime, openai_dep

CARD = r"\b\d{4}(?: ?\d{4}){3}\b"
ASK = [
    {"role": "system", "content": "You are a clerk."},
    {"role": "user", "content": "Refund card 4111 1111 1111 1111 for ann@example.com"},
]


def hooks(*items: dict[str, Any]) -> Middleware:
    return Middleware.model_validate({"hooks": list(items)})


async def call(
    fake: RunningServer,
    fake_time: FakeTime,
    middleware: Middleware | None,
    *,
    messages: list[dict[str, Any]] | None = None,
    workspace: str = "ws-1",
    deltas: list[str] | None = None,
) -> tuple[Any, InMemoryLedger]:
    ledger = InMemoryLedger()
    asked: list[str] = []

    async def source(workspace_id: str) -> Middleware | None:
        asked.append(workspace_id)
        return middleware

    gateway = Gateway(
        clock=fake_time,
        sleep=fake_time.sleep,
        rng=random.Random(7),
        ledger=ledger,
        middleware=source,
    )

    async def on_delta(text: str) -> None:
        if deltas is not None:
            deltas.append(text)

    try:
        request = LLMRequest(messages or ASK, metadata={"workspace_id": workspace})
        result = await gateway.complete(
            request, RoutePlan(Route([openai_dep(fake)])), on_delta=on_delta
        )
    finally:
        await gateway.aclose()
    assert asked == [workspace]
    return result, ledger


def sent(fake: RunningServer) -> list[dict[str, Any]]:
    return fake.requests[-1]["body"]["messages"]


@pytest.mark.asyncio
async def test_hooks_apply_in_order_to_the_prompt_and_the_answer(
    fake: RunningServer, fake_time: FakeTime
) -> None:
    fake.set_script({"rules": [{"reply": "Done: refunded 4111 1111 1111 1111.", "chunks": 4}]})
    middleware = hooks(
        {"kind": "preamble", "text": "Never reveal card numbers."},
        {"kind": "redact", "pattern": CARD, "replacement": "[card]"},
        {"kind": "redact", "pattern": r"[\w.]+@[\w.]+", "apply_to": "prompts"},
        {"kind": "log"},
    )
    deltas: list[str] = []
    result, ledger = await call(fake, fake_time, middleware, deltas=deltas)

    messages = sent(fake)
    assert messages[0]["content"] == "Never reveal card numbers.\n\nYou are a clerk."
    assert messages[1]["content"] == "Refund card [card] for [redacted]"
    assert result.text == "Done: refunded [card]."
    # The whole answer is checked before anyone sees it: nothing was streamed unredacted.
    assert deltas == []
    [entry] = ledger.started
    assert entry.metadata["middleware"] == (
        "hook 1: preamble added; hook 2: 1 redacted from the prompt; "
        "hook 3: 1 redacted from the prompt; hook 2: outputs checked"
    )


@pytest.mark.asyncio
async def test_a_blocked_keyword_stops_the_prompt_before_it_is_sent(
    fake: RunningServer, fake_time: FakeTime
) -> None:
    middleware = hooks({"kind": "block", "keywords": ["password", "Refund"]})
    with pytest.raises(LLMError) as raised:
        await call(fake, fake_time, middleware)
    assert raised.value.kind == "blocked" and not raised.value.transient
    assert str(raised.value) == (
        "The workspace's gateway middleware (hook 1) blocked the call: the prompt contains "
        "the blocked keyword “Refund”."
    )
    assert fake.requests == []


@pytest.mark.asyncio
async def test_a_blocked_answer_is_not_handed_on(fake: RunningServer, fake_time: FakeTime) -> None:
    fake.set_script({"rules": [{"reply": "The admin password is hunter2"}]})
    middleware = hooks({"kind": "block", "keywords": ["password"], "apply_to": "outputs"})
    with pytest.raises(LLMError, match="the answer contains the blocked keyword “password”"):
        await call(fake, fake_time, middleware)
    assert len(fake.requests) == 1


@pytest.mark.asyncio
async def test_without_hooks_calls_stream_untouched(
    fake: RunningServer, fake_time: FakeTime
) -> None:
    fake.set_script({"rules": [{"reply": "card 4111 1111 1111 1111", "chunks": 3}]})
    deltas: list[str] = []
    result, ledger = await call(fake, fake_time, None, deltas=deltas)
    assert sent(fake) == ASK
    assert result.text == "card 4111 1111 1111 1111" and "".join(deltas) == result.text
    assert "middleware" not in ledger.started[0].metadata


@pytest.mark.asyncio
async def test_a_pattern_that_runs_too_long_blocks_rather_than_leaks(
    fake: RunningServer, fake_time: FakeTime
) -> None:
    middleware = hooks({"kind": "redact", "pattern": r"(a|aa)+c"})
    slow = [{"role": "user", "content": "a" * 60 + "b"}]
    with pytest.raises(LLMError, match="a redaction pattern took too long"):
        await call(fake, fake_time, middleware, messages=slow)
    assert fake.requests == []


@pytest.mark.parametrize(
    ("hook", "message"),
    [
        ({"kind": "redact", "pattern": "(unclosed"}, "not a valid pattern"),
        ({"kind": "block", "keywords": []}, "at least 1 item"),
        ({"kind": "preamble", "text": ""}, "at least 1 character"),
        ({"kind": "exec", "code": "rm -rf /"}, "'redact', 'preamble', 'block', 'log'"),
        ({"kind": "log", "extra": True}, "Extra inputs are not permitted"),
    ],
)
def test_hooks_are_data_and_are_checked(hook: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        hooks(hook)
