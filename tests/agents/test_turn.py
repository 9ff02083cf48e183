"""The context-window policy: system messages stay, the most recent others fill the budget."""

from __future__ import annotations

import pytest

from agents.services.turn import context_window, count_tokens

pytestmark = pytest.mark.slow  # imports LiteLLM for its token counter

SYSTEM = {"role": "system", "content": "You are a careful researcher."}


def _turns(count: int) -> list[dict]:
    return [
        {"role": "user" if i % 2 == 0 else "assistant", "content": f"message number {i} " * 20}
        for i in range(count)
    ]


def test_without_a_budget_everything_is_kept() -> None:
    messages = [SYSTEM, *_turns(6)]
    assert context_window(messages, None) == messages


def test_the_most_recent_messages_that_fit_are_kept_with_the_system_message() -> None:
    turns = _turns(10)
    each = count_tokens(turns[-1], model="gpt-4o-mini")
    system = count_tokens(SYSTEM, model="gpt-4o-mini")
    kept = context_window([SYSTEM, *turns], system + 3 * each + 1, model="gpt-4o-mini")
    assert kept == [SYSTEM, *turns[-3:]]


def test_a_tool_result_never_loses_the_call_it_answers() -> None:
    call = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "calculator", "arguments": '{"expression": "1+1"}'},
            }
        ],
    }
    result = {"role": "tool", "tool_call_id": "c1", "content": "2"}
    last = {"role": "user", "content": "and then?"}
    budget = (
        count_tokens(SYSTEM, model="gpt-4o-mini")
        + count_tokens(result, model="gpt-4o-mini")
        + count_tokens(last, model="gpt-4o-mini")
    )
    kept = context_window([SYSTEM, call, result, last], budget, model="gpt-4o-mini")
    assert kept == [SYSTEM, last]


def test_the_counter_is_litellms() -> None:
    from litellm import token_counter

    message = {"role": "user", "content": "hello there, how are you?"}
    assert count_tokens(message, model="gpt-4o-mini") == token_counter(
        model="gpt-4o-mini", messages=[message]
    )


def test_open_models_are_counted_without_downloading_a_tokenizer() -> None:
    message = {"role": "user", "content": "hello there, how are you?"}
    # Ollama model names would otherwise make LiteLLM fetch a tokenizer over the network.
    assert 3 < count_tokens(message, model="llama3.2") < 20
