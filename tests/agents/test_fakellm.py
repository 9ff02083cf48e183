"""fakellm over real loopback HTTP: wire shapes, scripting, faults and the control API."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest

from agents.fakellm import (
    DEFAULT_MODELS,
    Fault,
    RunningServer,
    Script,
    ScriptError,
    default_reply,
    estimate_tokens,
    load_script,
    parse_fault,
    start_in_thread,
)
from agents.fakellm.protocols import anthropic as anthropic_wire
from agents.fakellm.protocols import ollama as ollama_wire
from agents.fakellm.protocols import openai as openai_wire
from agents.fakellm.replies import json_reply, split_text, subject

REPO = Path(__file__).resolve().parents[2]
RESEARCHER = "You are a researcher. Cite evidence and stay neutral."
SOLAR = "Summarize recent findings about solar panels."
SOLAR_REPLY = (
    "I reviewed what is currently known about solar panels. Studies of solar panels agree on the "
    "overall trend but disagree on its size, mostly because they measure different things. I "
    "would confirm these points against primary sources before relying on them."
)
USER_HELLO = [{"role": "user", "content": "Say hello"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
TIME_TOOL = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}},
    },
}


@pytest.fixture
def server() -> Iterator[RunningServer]:
    with start_in_thread(name="node-a") as running:
        yield running


@pytest.fixture
def sdk(server: RunningServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_urls["openai"], api_key="sk-test-0000", max_retries=0)


async def call(
    server: RunningServer,
    path: str,
    body: Any = None,
    *,
    method: str = "POST",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, server.url + path, json=body, headers=headers) as resp,
    ):
        return resp.status, {k.lower(): v for k, v in resp.headers.items()}, await resp.read()


def sse(raw: bytes) -> list[tuple[str | None, str]]:
    """(event, data) pairs of an SSE body, checking the framing on the way."""
    text = raw.decode()
    assert text.endswith("\n\n")
    events = []
    for block in text[:-2].split("\n\n"):
        event = None
        data = []
        for line in block.split("\n"):
            field, _, value = line.partition(": ")
            if field == "event":
                event = value
            else:
                assert field == "data", line
                data.append(value)
        events.append((event, "\n".join(data)))
    return events


def openai_chunks(raw: bytes) -> list[dict[str, Any]]:
    events = sse(raw)
    assert events[-1] == (None, "[DONE]")
    return [json.loads(data) for _, data in events[:-1]]


def ndjson(raw: bytes) -> list[dict[str, Any]]:
    text = raw.decode()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


# Scripts


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ({"rules": [{"reply": "ok"}, {"delay_ms": -5}]}, "rules[1].delay_ms: expected a number"),
        (
            {"rules": [{"last_mesage_contains": "x"}]},
            "rules[0]: unknown field 'last_mesage_contains'",
        ),
        ({"rules": [{"system_regex": "("}]}, "rules[0].system_regex: invalid regular expression"),
        ({"rules": [{"fault": "418"}]}, "rules[0].fault: unknown fault '418'"),
        ({"rules": [{}, {}, {"chunks": 0}]}, "rules[2].chunks: expected an integer >= 1, got 0"),
        ({"rules": [{"times": True}]}, "rules[0].times: expected an integer >= 1, got True"),
        ({"rules": [{"has_tools": "yes"}]}, "rules[0].has_tools: expected true or false"),
        ({"rules": [{"protocol": "gemini"}]}, "rules[0].protocol: expected one of openai"),
        (
            {"rules": [{"tool_call": [{"name": "a"}, {"arguments": {}}]}]},
            "rules[0].tool_call[1].name",
        ),
        (
            {"rules": [{"tool_call": {"name": "a", "arguments": [1]}}]},
            "rules[0].tool_call.arguments",
        ),
        ({"rules": [{"reply": 3}]}, "rules[0].reply: expected a string, got a number"),
        ({"rules": {"reply": "x"}}, "rules: expected an array, got an object"),
        ({"models": ["ok", ""]}, "models: expected an array of non-empty strings"),
        ({"api_key": ""}, "api_key: expected a non-empty string"),
        ({"rule": []}, "script: unknown field 'rule'"),
        ([], "script: expected a JSON object, got an array"),
    ],
)
def test_script_validation_names_the_rule_and_field(script: Any, message: str) -> None:
    with pytest.raises(ScriptError) as caught:
        Script.from_dict(script)
    assert str(caught.value).startswith(message)


def test_load_script_reports_the_file_and_json_position(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"rules": [\n  {"reply": "x",}\n]}')
    with pytest.raises(ScriptError, match=r"broken\.json: invalid JSON at line 2 column 17"):
        load_script(broken)
    invalid = tmp_path / "invalid.json"
    invalid.write_text('{"rules": [{"chunks": "3"}]}')
    with pytest.raises(ScriptError, match=r"invalid\.json: rules\[0\]\.chunks: expected an int"):
        load_script(invalid)
    with pytest.raises(ScriptError, match=r"missing\.json: cannot read script"):
        load_script(tmp_path / "missing.json")
    good = tmp_path / "good.json"
    good.write_text('{"models": ["m1"], "rules": [{"model": "m*", "reply": "hi", "times": 2}]}')
    script = load_script(good)
    assert script.models == ("m1",)
    assert script.api_key is None
    assert script.rules[0].reply == "hi"
    assert script.rules[0].times == 2


def test_fault_specs() -> None:
    assert parse_fault("429x2") == Fault("429x2", "429", 2)
    assert parse_fault("hang") == Fault("hang", "hang", None)
    assert parse_fault("context_length") == Fault("context_length", "context_length", None)
    for bad in ("429x0", "x2", "timeout", "cutx"):
        with pytest.raises(ValueError, match="unknown fault"):
            parse_fault(bad)


def _openai_request(**body: Any) -> Any:
    return openai_wire.parse({"model": "demo", "messages": USER_HELLO} | body)


def test_rule_matchers_combine_and_first_match_wins() -> None:
    script = Script.from_dict(
        {
            "rules": [
                {"model": "gpt-*", "protocol": "anthropic", "reply": "never: wrong protocol"},
                {"model": "gpt-*", "has_tools": True, "reply": "glob+tools"},
                {"system_contains": "RESEARCHER", "last_message_regex": r"solar\s+panels"},
                {"last_role": "tool", "reply": "after tool"},
                {"last_message_contains": "hello", "times": 1, "reply": "once"},
                {"model": "demo", "reply": "exact"},
            ]
        }
    )
    hits: dict[int, int] = {}

    def winner(req: Any) -> int | None:
        match = script.first_match(req, hits)
        return None if match is None else match[0]

    assert winner(_openai_request(model="gpt-4o", tools=[WEATHER_TOOL])) == 1
    assert (
        winner(_openai_request(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}]))
        is None
    )
    solar = [{"role": "system", "content": RESEARCHER}, {"role": "user", "content": SOLAR}]
    assert winner(_openai_request(messages=solar)) == 2
    after_tool = [*USER_HELLO, {"role": "tool", "tool_call_id": "call_1", "content": "21C"}]
    assert winner(_openai_request(messages=after_tool)) == 3
    assert winner(_openai_request()) == 4
    assert winner(_openai_request()) == 5, "times: 1 lets later requests fall through"
    assert winner(_openai_request(model="demo@fault=500")) == 5, "the fault suffix is not matched"
    assert hits == {4: 1}


def test_default_reply_is_deterministic_and_about_the_prompt() -> None:
    messages = [("user", SOLAR)]
    assert default_reply(RESEARCHER, messages) == SOLAR_REPLY
    assert default_reply(RESEARCHER, messages) == SOLAR_REPLY
    writer = default_reply("You are a writer for a magazine.", messages)
    assert "solar panels" in writer
    assert writer != SOLAR_REPLY
    other = default_reply(RESEARCHER, [("user", "What are the benefits of heat pumps?")])
    assert "heat pumps" in other
    after_tool = default_reply(RESEARCHER, [*messages, ("tool", '{"efficiency": 0.22}')])
    # The role's answer about the subject, saying what the tool returned.
    assert after_tool.startswith("Here is a short research brief on solar panels.")
    assert after_tool.endswith('(The tool returned: {"efficiency": 0.22})')
    failed = default_reply(RESEARCHER, [*messages, ("tool", "Refused: a private address.")])
    assert "(A tool could not help: Refused: a private address." in failed


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Tell me about solar panels.", "solar panels"),
        ("What is the capital of France?", "France"),
        ("Please explain quantum computing in simple terms", "quantum computing in simple terms"),
        ("Write a haiku", "haiku"),
        ("", "this topic"),
        ('{"task": "green roofs"}', "green roofs"),
        ('{"count": 3, "topic": "Tell me about tidal power."}', "tidal power"),
        ("{not json", "not json"),
        ("Research offshore wind (sources).", "offshore wind"),
    ],
)
def test_subject_extraction(text: str, expected: str) -> None:
    assert subject(text) == expected


def test_tokens_and_chunking() -> None:
    assert estimate_tokens("") == 1
    assert estimate_tokens("abcd") == 1
    assert estimate_tokens("abcde") == 2
    assert split_text("  Hello brave  new world \n") == [
        "  Hello",
        " brave",
        "  new",
        " world",
        " \n",
    ]
    assert split_text("Hello brave new world", 3) == ["Hello b", "rave ne", "w world"]
    assert split_text("abc", 10) == ["a", "b", "c"]
    assert split_text("", 4) == []


def test_json_reply_follows_the_schema() -> None:
    schema = {
        "type": "object",
        "properties": {
            "title": {"type": "string"},
            "score": {"type": "integer", "minimum": 1},
            "tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}},
            "final": {"type": ["boolean", "null"]},
            "kind": {"enum": ["report", "note"]},
        },
        "$defs": {"tag": {"type": "string"}},
    }
    assert json.loads(json_reply(schema, "One. Two.")) == {
        "title": "One. Two.",
        "score": 1,
        "tags": ["One"],
        "final": False,
        "kind": "report",
    }
    assert json.loads(json_reply({}, "Hi.")) == {"answer": "Hi."}


# OpenAI protocol


@pytest.mark.asyncio
async def test_openai_plain_has_the_exact_shape(server: RunningServer) -> None:
    messages = [{"role": "system", "content": RESEARCHER}, {"role": "user", "content": SOLAR}]
    status, headers, raw = await call(
        server, "/v1/chat/completions", {"model": "demo", "messages": messages}
    )
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert headers["x-fakellm-node"] == "node-a"
    assert headers["x-fakellm-rule"] == "default"
    body = json.loads(raw)
    assert body["id"].startswith("chatcmpl-")
    assert isinstance(body["created"], int)
    prompt_tokens = estimate_tokens(len(RESEARCHER) + len(SOLAR))
    completion_tokens = estimate_tokens(SOLAR_REPLY)
    assert body == {
        "id": body["id"],
        "object": "chat.completion",
        "created": body["created"],
        "model": "demo",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": SOLAR_REPLY,
                    "refusal": None,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
        "system_fingerprint": "fp_fakellm",
    }


@pytest.mark.asyncio
async def test_openai_stream_chunks_usage_and_done(server: RunningServer) -> None:
    server.set_script({"rules": [{"reply": "Hello brave new world", "chunks": 3}]})
    status, headers, raw = await call(
        server,
        "/v1/chat/completions",
        {
            "model": "demo",
            "messages": USER_HELLO,
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    )
    assert status == 200
    assert headers["content-type"] == "text/event-stream; charset=utf-8"
    assert headers["x-fakellm-rule"] == "0"
    chunks = openai_chunks(raw)
    ids = {c["id"] for c in chunks}
    assert len(ids) == 1
    assert ids.pop().startswith("chatcmpl-")
    for chunk in chunks:
        assert chunk["object"] == "chat.completion.chunk"
        assert chunk["model"] == "demo"
    assert [c["choices"] for c in chunks] == [
        [
            {
                "index": 0,
                "delta": {"role": "assistant", "content": "", "refusal": None},
                "logprobs": None,
                "finish_reason": None,
            }
        ],
        *[
            [{"index": 0, "delta": {"content": p}, "logprobs": None, "finish_reason": None}]
            for p in ("Hello b", "rave ne", "w world")
        ],
        [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}],
        [],
    ]
    assert [c["usage"] for c in chunks[:-1]] == [None] * 5
    assert chunks[-1]["usage"] == {"prompt_tokens": 3, "completion_tokens": 6, "total_tokens": 9}


@pytest.mark.asyncio
async def test_openai_stream_without_include_usage_has_no_usage(server: RunningServer) -> None:
    _, _, raw = await call(
        server, "/v1/chat/completions", {"model": "demo", "messages": USER_HELLO, "stream": True}
    )
    chunks = openai_chunks(raw)
    assert all("usage" not in c for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert text == default_reply("", [("user", "Say hello")])


@pytest.mark.asyncio
async def test_openai_stream_tool_calls_are_incremental(server: RunningServer) -> None:
    arguments = {"city": "Paris", "detail": "hourly forecast with wind"}
    server.set_script(
        {
            "rules": [
                {
                    "tool_call": [
                        {"name": "get_weather", "arguments": arguments},
                        {"name": "get_time", "arguments": {"tz": "Europe/Paris"}},
                    ]
                }
            ]
        }
    )
    body = {"model": "demo", "messages": USER_HELLO, "tools": [WEATHER_TOOL, TIME_TOOL]}
    _, _, raw = await call(server, "/v1/chat/completions", body | {"stream": True})
    deltas = [c["choices"][0]["delta"] for c in openai_chunks(raw)]
    first = deltas[0]
    assert first["role"] == "assistant"
    assert first["content"] is None
    assert [d for d in deltas if "content" in d] == [first], "no text deltas for tool-only replies"
    calls = [call for d in deltas for call in d.get("tool_calls", [])]
    by_index: dict[int, list[dict[str, Any]]] = {0: [], 1: []}
    for item in calls:
        by_index[item["index"]].append(item)
    for index, name in ((0, "get_weather"), (1, "get_time")):
        head, *rest = by_index[index]
        assert head["id"].startswith("call_")
        assert head["type"] == "function"
        assert head["function"] == {"name": name, "arguments": ""}
        assert rest, "arguments arrive in later deltas"
        assert all(
            set(r) == {"index", "function"} and set(r["function"]) == {"arguments"} for r in rest
        )
    joined = ["".join(r["function"]["arguments"] for r in by_index[i][1:]) for i in (0, 1)]
    assert json.loads(joined[0]) == arguments
    assert json.loads(joined[1]) == {"tz": "Europe/Paris"}
    assert [i for i, d in enumerate(calls) if "id" in d] == [0, len(by_index[0])]
    assert deltas[-1] == {}

    _, _, plain = await call(server, "/v1/chat/completions", body)
    choice = json.loads(plain)["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    assert [(c["type"], c["function"]["name"]) for c in choice["message"]["tool_calls"]] == [
        ("function", "get_weather"),
        ("function", "get_time"),
    ]
    assert json.loads(choice["message"]["tool_calls"][0]["function"]["arguments"]) == arguments


@pytest.mark.asyncio
async def test_openai_max_tokens_truncates_with_length(server: RunningServer) -> None:
    server.set_script({"rules": [{"reply": "x" * 100, "tool_call": {"name": "t"}}]})
    body = {"model": "demo", "messages": USER_HELLO, "max_completion_tokens": 5}
    _, _, raw = await call(server, "/v1/chat/completions", body)
    plain = json.loads(raw)
    assert plain["choices"][0]["finish_reason"] == "length"
    assert plain["choices"][0]["message"]["content"] == "x" * 20
    assert "tool_calls" not in plain["choices"][0]["message"]
    assert plain["usage"]["completion_tokens"] == 5
    _, _, raw = await call(server, "/v1/chat/completions", body | {"stream": True, "max_tokens": 9})
    chunks = openai_chunks(raw)
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "x" * 20


@pytest.mark.asyncio
async def test_model_lists(server: RunningServer) -> None:
    _, _, raw = await call(server, "/v1/models", method="GET")
    listed = json.loads(raw)
    assert listed["object"] == "list"
    assert [m["id"] for m in listed["data"]] == list(DEFAULT_MODELS)
    assert {"demo", "demo-fast", "gpt-4o-mini", "claude-3-5-haiku-latest", "llama3.2"} <= {
        m["id"] for m in listed["data"]
    }
    assert listed["data"][0] == {
        "id": "demo",
        "object": "model",
        "created": listed["data"][0]["created"],
        "owned_by": "fakellm",
    }
    server.set_script({"models": ["one", "two"]})
    _, _, raw = await call(
        server, "/v1/models", method="GET", headers={"anthropic-version": "2023-06-01"}
    )
    assert json.loads(raw) == {
        "data": [
            {"type": "model", "id": n, "display_name": n, "created_at": "2025-01-01T00:00:00Z"}
            for n in ("one", "two")
        ],
        "has_more": False,
        "first_id": "one",
        "last_id": "two",
    }


def test_openai_sdk_plain_and_stream(sdk: openai.OpenAI) -> None:
    messages: Any = [{"role": "system", "content": RESEARCHER}, {"role": "user", "content": SOLAR}]
    completion = sdk.chat.completions.create(model="demo", messages=messages)
    assert completion.choices[0].message.content == SOLAR_REPLY
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == estimate_tokens(SOLAR_REPLY)

    stream = sdk.chat.completions.create(
        model="demo", messages=messages, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == SOLAR_REPLY
    assert len(chunks) == len(split_text(SOLAR_REPLY)) + 3
    assert chunks[-1].choices == []
    assert chunks[-1].usage == completion.usage


def test_openai_sdk_tool_calls_plain_and_streamed(
    server: RunningServer, sdk: openai.OpenAI
) -> None:
    server.set_script(
        {
            "rules": [
                {"last_role": "tool", "reply": "It is 21 degrees in Paris."},
                {
                    "has_tools": True,
                    "reply": "Let me check.",
                    "tool_call": [
                        {"name": "get_weather", "arguments": {"city": "Paris"}},
                        {"name": "get_time", "arguments": {"tz": "Europe/Paris"}},
                    ],
                },
            ]
        }
    )
    messages: Any = [{"role": "user", "content": "Weather and time in Paris?"}]
    tools: Any = [WEATHER_TOOL, TIME_TOOL]
    plain = sdk.chat.completions.create(model="demo", messages=messages, tools=tools)
    message = plain.choices[0].message
    assert plain.choices[0].finish_reason == "tool_calls"
    assert message.content == "Let me check."
    assert message.tool_calls is not None
    calls = [(c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls]  # type: ignore[union-attr]
    assert calls == [("get_weather", {"city": "Paris"}), ("get_time", {"tz": "Europe/Paris"})]

    with sdk.chat.completions.stream(model="demo", messages=messages, tools=tools) as stream:
        events = [event.type for event in stream]
        final = stream.get_final_completion()
    assert events.count("tool_calls.function.arguments.done") == 2
    assert final.choices[0].message.content == "Let me check."
    streamed = final.choices[0].message.tool_calls or []
    assert [(c.function.name, json.loads(c.function.arguments)) for c in streamed] == calls
    ids = [c.id for c in [*streamed, *message.tool_calls]]
    assert all(i.startswith("call_") for i in ids)
    assert len(set(ids)) == 4, "every response gets its own call ids"

    follow_up: Any = [
        *messages,
        message.model_dump(exclude_none=True),
        *[{"role": "tool", "tool_call_id": c.id, "content": "21C"} for c in message.tool_calls],
    ]
    answer = sdk.chat.completions.create(model="demo", messages=follow_up, tools=tools)
    assert answer.choices[0].message.content == "It is 21 degrees in Paris."


def test_openai_sdk_maps_fault_errors(server: RunningServer, sdk: openai.OpenAI) -> None:
    messages: Any = USER_HELLO
    with pytest.raises(openai.RateLimitError) as rate:
        sdk.chat.completions.create(model="demo@fault=429", messages=messages)
    assert rate.value.response.headers["retry-after"] == "1"
    assert rate.value.response.headers["retry-after-ms"] == "1000"
    assert rate.value.code == "rate_limit_exceeded"
    with pytest.raises(openai.BadRequestError) as too_long:
        sdk.chat.completions.create(model="demo@fault=context_length", messages=messages)
    assert too_long.value.code == "context_length_exceeded"
    with pytest.raises(openai.InternalServerError) as server_error:
        sdk.chat.completions.create(model="demo@fault=503", messages=messages)
    assert server_error.value.status_code == 503
    with pytest.raises(openai.APIConnectionError):
        list(sdk.chat.completions.create(model="demo@fault=cut", messages=messages, stream=True))
    with pytest.raises(json.JSONDecodeError):
        sdk.chat.completions.create(model="demo@fault=malformed", messages=messages)
    with pytest.raises(openai.APITimeoutError):
        sdk.with_options(timeout=0.3).chat.completions.create(
            model="demo@fault=hang", messages=messages
        )
    assert server.wait_for(inflight=0, timeout=5), "the hung request is released with its client"
    assert [r["fault"] for r in server.requests] == [
        "429",
        "context_length",
        "503",
        "cut",
        "malformed",
        "hang",
    ]


def test_openai_sdk_authentication(server: RunningServer) -> None:
    server.set_script({"api_key": "sk-right-key-9876"})
    wrong = openai.OpenAI(
        base_url=server.base_urls["openai"], api_key="sk-wrong-1234", max_retries=0
    )
    with pytest.raises(openai.AuthenticationError) as caught:
        wrong.chat.completions.create(model="demo", messages=USER_HELLO)  # type: ignore[arg-type]
    assert caught.value.body == {
        "message": "Incorrect API key provided: sk-wrong****1234. You can find your API key "
        "at https://platform.openai.com/account/api-keys.",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_api_key",
    }
    with pytest.raises(openai.AuthenticationError):
        wrong.models.list()
    right = openai.OpenAI(base_url=server.base_urls["openai"], api_key="sk-right-key-9876")
    assert right.chat.completions.create(model="demo", messages=USER_HELLO).choices  # type: ignore[arg-type]
    assert [m.id for m in right.models.list()] == list(DEFAULT_MODELS)
    logged = server.requests
    assert [r["headers"]["authorization"] for r in logged] == [
        "Bearer ****1234",
        "Bearer ****1234",
        "Bearer ****9876",
        "Bearer ****9876",
    ]
    assert "sk-right" not in json.dumps(logged)


# Anthropic protocol


@pytest.mark.asyncio
async def test_anthropic_plain_has_the_exact_shape(server: RunningServer) -> None:
    server.set_script({"rules": [{"system_contains": "pirate", "reply": "Arr, hello."}]})
    status, headers, raw = await call(
        server,
        "/v1/messages",
        {
            "model": "claude-3-5-haiku-latest",
            "max_tokens": 100,
            "system": [
                {
                    "type": "text",
                    "text": "You are a PIRATE.",
                    "cache_control": {"type": "ephemeral"},
                }
            ],
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Say hello"}]}],
        },
        headers={"x-api-key": "anything", "anthropic-version": "2023-06-01"},
    )
    assert status == 200
    assert headers["x-fakellm-rule"] == "0"
    body = json.loads(raw)
    assert body["id"].startswith("msg_")
    assert body == {
        "id": body["id"],
        "type": "message",
        "role": "assistant",
        "model": "claude-3-5-haiku-latest",
        "content": [{"type": "text", "text": "Arr, hello."}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": estimate_tokens(len("You are a PIRATE.") + len("Say hello")),
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": estimate_tokens("Arr, hello."),
        },
    }


@pytest.mark.asyncio
async def test_anthropic_stream_event_sequence(server: RunningServer) -> None:
    arguments = {"city": "Paris", "units": "metric", "days": 3}
    server.set_script(
        {
            "rules": [
                {
                    "reply": "Checking the weather.",
                    "chunks": 2,
                    "tool_call": {"name": "get_weather", "arguments": arguments},
                    "prompt_tokens": 40,
                    "completion_tokens": 25,
                }
            ]
        }
    )
    status, headers, raw = await call(
        server,
        "/v1/messages",
        {
            "model": "claude-3-5-haiku-latest",
            "max_tokens": 1024,
            "stream": True,
            "messages": [{"role": "user", "content": "Weather in Paris?"}],
            "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}],
        },
    )
    assert status == 200
    assert headers["content-type"] == "text/event-stream; charset=utf-8"
    events = sse(raw)
    data = [json.loads(d) for _, d in events]
    assert [name for name, _ in events] == [d["type"] for d in data]
    assert [name for name, _ in events] == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        *["content_block_delta"] * (len(data) - 10),
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start = data[0]["message"]
    assert start["id"].startswith("msg_")
    assert start == {
        "id": start["id"],
        "type": "message",
        "role": "assistant",
        "model": "claude-3-5-haiku-latest",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {
            "input_tokens": 40,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": 1,
        },
    }
    assert data[1] == {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    assert data[3:5] == [
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}}
        for t in ("Checking th", "e weather.")
    ]
    assert data[5] == {"type": "content_block_stop", "index": 0}
    tool_block = data[6]["content_block"]
    assert data[6]["index"] == 1
    assert tool_block["id"].startswith("toolu_")
    assert tool_block == {
        "type": "tool_use",
        "id": tool_block["id"],
        "name": "get_weather",
        "input": {},
    }
    deltas = data[7:-3]
    assert all(d["index"] == 1 and d["delta"]["type"] == "input_json_delta" for d in deltas)
    assert deltas[0]["delta"]["partial_json"] == ""
    assert json.loads("".join(d["delta"]["partial_json"] for d in deltas)) == arguments
    assert data[-3] == {"type": "content_block_stop", "index": 1}
    assert data[-2] == {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {"output_tokens": 25},
    }
    assert data[-1] == {"type": "message_stop"}


@pytest.mark.asyncio
async def test_anthropic_tool_result_counts_as_tool_turn(server: RunningServer) -> None:
    server.set_script(
        {
            "rules": [
                {"last_role": "tool", "protocol": "anthropic", "reply": "It is sunny."},
                {"tool_call": {"name": "get_weather", "arguments": {"city": "Paris"}}},
            ]
        }
    )
    question = {"role": "user", "content": "Weather?"}
    first = {"model": "claude-3-5-haiku-latest", "max_tokens": 50, "messages": [question]}
    _, _, raw = await call(server, "/v1/messages", first)
    reply = json.loads(raw)
    assert reply["stop_reason"] == "tool_use"
    tool_use = reply["content"][0]
    assert tool_use["type"] == "tool_use"
    assert tool_use["input"] == {"city": "Paris"}
    second = first | {
        "messages": [
            question,
            {"role": "assistant", "content": reply["content"]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": tool_use["id"], "content": "sunny"}
                ],
            },
        ]
    }
    _, headers, raw = await call(server, "/v1/messages", second)
    assert headers["x-fakellm-rule"] == "0"
    assert json.loads(raw)["content"] == [{"type": "text", "text": "It is sunny."}]


@pytest.mark.asyncio
async def test_anthropic_max_tokens_and_errors(server: RunningServer) -> None:
    body = {"model": "claude", "max_tokens": 2, "messages": [{"role": "user", "content": "Hi"}]}
    _, _, raw = await call(server, "/v1/messages", body)
    reply = json.loads(raw)
    assert reply["stop_reason"] == "max_tokens"
    assert reply["usage"]["output_tokens"] == 2
    assert len(reply["content"][0]["text"]) == 8

    expected = {
        "429": (429, "rate_limit_error"),
        "500": (500, "api_error"),
        "503": (503, "overloaded_error"),
        "overloaded": (529, "overloaded_error"),
        "context_length": (400, "invalid_request_error"),
        "auth": (401, "authentication_error"),
    }
    messages = {}
    for fault, (status_code, error_type) in expected.items():
        status, headers, raw = await call(
            server, "/v1/messages", body, headers={"x-fakellm-fault": fault}
        )
        error = json.loads(raw)
        assert (status, error["type"], error["error"]["type"]) == (status_code, "error", error_type)
        assert set(error["error"]) == {"type", "message"}
        assert ("retry-after" in headers) == (fault == "429")
        messages[fault] = error["error"]["message"]
    assert messages["context_length"].startswith("prompt is too long: ")
    assert messages["context_length"].endswith(" tokens > 200000 maximum")
    assert messages["overloaded"] == "Overloaded"

    server.set_script({"api_key": "sk-ant-secret"})
    status, _, raw = await call(server, "/v1/messages", body)
    assert status == 401
    assert json.loads(raw) == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "x-api-key header is required"},
    }
    status, _, raw = await call(server, "/v1/messages", body, headers={"x-api-key": "nope"})
    assert (status, json.loads(raw)["error"]["message"]) == (401, "invalid x-api-key")
    status, _, _ = await call(server, "/v1/messages", body, headers={"x-api-key": "sk-ant-secret"})
    assert status == 200
    assert server.requests[-1]["headers"]["x-api-key"] == "****cret"


# Ollama protocol


@pytest.mark.asyncio
async def test_ollama_chat_streams_ndjson_by_default(server: RunningServer) -> None:
    server.set_script({"rules": [{"reply": "Hi there friend", "prompt_tokens": 12}]})
    status, headers, raw = await call(
        server, "/api/chat", {"model": "llama3.2", "messages": USER_HELLO}
    )
    assert status == 200
    assert headers["content-type"] == "application/x-ndjson"
    lines = ndjson(raw)
    assert [line["message"] for line in lines[:-1]] == [
        {"role": "assistant", "content": piece} for piece in ("Hi", " there", " friend")
    ]
    assert all(line["done"] is False and line["model"] == "llama3.2" for line in lines[:-1])
    assert all(line["created_at"].endswith("Z") for line in lines)
    final = lines[-1]
    assert set(final) == {
        "model",
        "created_at",
        "message",
        "done_reason",
        "done",
        "total_duration",
        "load_duration",
        "prompt_eval_count",
        "prompt_eval_duration",
        "eval_count",
        "eval_duration",
    }
    assert final["message"] == {"role": "assistant", "content": ""}
    assert (final["done"], final["done_reason"]) == (True, "stop")
    assert (final["prompt_eval_count"], final["eval_count"]) == (
        12,
        estimate_tokens("Hi there friend"),
    )
    assert final["total_duration"] >= (
        final["load_duration"] + final["prompt_eval_duration"] + final["eval_duration"]
    )


@pytest.mark.asyncio
async def test_ollama_chat_plain_tool_calls_and_num_predict(server: RunningServer) -> None:
    server.set_script(
        {
            "rules": [
                {
                    "has_tools": True,
                    "tool_call": {"name": "get_weather", "arguments": {"city": "Oslo"}},
                }
            ]
        }
    )
    body = {"model": "llama3.2", "messages": USER_HELLO, "stream": False}
    _, headers, raw = await call(server, "/api/chat", body | {"tools": [WEATHER_TOOL]})
    reply = json.loads(raw)
    assert headers["content-type"] == "application/json"
    assert reply["message"] == {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}],
    }
    assert (reply["done"], reply["done_reason"]) == (True, "stop")

    _, _, raw = await call(server, "/api/chat", body | {"tools": [WEATHER_TOOL], "stream": True})
    lines = ndjson(raw)
    assert [line["done"] for line in lines] == [False, True]
    assert lines[0]["message"]["tool_calls"] == reply["message"]["tool_calls"]

    _, _, raw = await call(server, "/api/chat", body | {"options": {"num_predict": 3}})
    limited = json.loads(raw)
    assert (limited["done_reason"], limited["eval_count"]) == ("length", 3)
    assert limited["message"]["content"] == default_reply("", [("user", "Say hello")])[:12]


@pytest.mark.asyncio
async def test_ollama_tags_ps_version_and_pull(server: RunningServer) -> None:
    server.set_script({"models": ["llama3.2", "qwen2.5:7b"], "api_key": "ignored-by-ollama"})
    _, headers, raw = await call(server, "/api/tags", method="GET")
    tags = json.loads(raw)["models"]
    assert headers["x-fakellm-node"] == "node-a"
    assert [m["name"] for m in tags] == ["llama3.2:latest", "qwen2.5:7b"]
    assert set(tags[0]) == {"name", "model", "modified_at", "size", "digest", "details"}
    assert tags[0]["details"]["family"] == "llama"
    assert len(tags[0]["digest"]) == 64

    _, _, raw = await call(server, "/api/ps", method="GET")
    assert json.loads(raw) == {"models": []}
    status, _, _ = await call(
        server, "/api/chat", {"model": "llama3.2", "messages": USER_HELLO, "stream": False}
    )
    assert status == 200, "Ollama has no authentication"
    _, _, raw = await call(server, "/api/ps", method="GET")
    (loaded,) = json.loads(raw)["models"]
    assert loaded["name"] == "llama3.2:latest"
    assert {"name", "model", "size", "digest", "expires_at", "size_vram"} <= set(loaded)

    _, _, raw = await call(server, "/api/version", method="GET")
    assert json.loads(raw) == {"version": "0.12.0"}
    status, _, raw = await call(server, "/", method="GET")
    assert (status, raw) == (200, b"Ollama is running")

    status, headers, raw = await call(server, "/api/pull", {"model": "mistral"})
    assert headers["content-type"] == "application/x-ndjson"
    progress = ndjson(raw)
    assert progress[0] == {"status": "pulling manifest"}
    downloads = [p for p in progress if p["status"] == "downloading"]
    assert len(downloads) >= 2
    assert all(p["digest"].startswith("sha256:") and p["total"] > 0 for p in downloads)
    assert [p["completed"] for p in downloads] == sorted(p["completed"] for p in downloads)
    assert downloads[-1]["completed"] == downloads[-1]["total"]
    assert progress[-1] == {"status": "success"}
    _, _, raw = await call(server, "/api/pull", {"model": "phi3:mini", "stream": False})
    assert json.loads(raw) == {"status": "success"}
    _, _, raw = await call(server, "/api/tags", method="GET")
    assert [m["name"] for m in json.loads(raw)["models"]] == [
        "llama3.2:latest",
        "qwen2.5:7b",
        "mistral:latest",
        "phi3:mini",
    ]
    status, _, raw = await call(server, "/api/pull", {"stream": False})
    assert (status, json.loads(raw)) == (400, {"error": "model is required"})


# Faults


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("path", "body", "status", "error"),
    [
        (
            "/v1/chat/completions",
            {"model": "demo", "messages": USER_HELLO},
            429,
            {
                "error": {
                    "message": (
                        "Rate limit reached for requests per min (RPM). Please try again in 1s."
                    ),
                    "type": "requests",
                    "param": None,
                    "code": "rate_limit_exceeded",
                }
            },
        ),
        (
            "/v1/messages",
            {"model": "claude", "max_tokens": 9, "messages": USER_HELLO},
            429,
            {
                "type": "error",
                "error": {
                    "type": "rate_limit_error",
                    "message": (
                        "Number of requests has exceeded your rate limit. Please try again later."
                    ),
                },
            },
        ),
        (
            "/api/chat",
            {"model": "llama3.2", "messages": USER_HELLO},
            429,
            {"error": "too many requests, please try again later"},
        ),
    ],
)
async def test_rate_limit_fault_by_header_model_and_rule(
    server: RunningServer, path: str, body: dict[str, Any], status: int, error: Any
) -> None:
    model = body["model"]
    by_header = await call(server, path, body, headers={"x-fakellm-fault": "429"})
    by_model = await call(server, path, body | {"model": f"{model}@fault=429"})
    server.set_script({"rules": [{"model": model, "fault": "429"}]})
    by_rule = await call(server, path, body)
    for got_status, headers, raw in (by_header, by_model, by_rule):
        assert got_status == status
        assert json.loads(raw) == error
        assert (headers["retry-after"], headers["retry-after-ms"]) == ("1", "1000")
    assert [r["fault"] for r in server.requests] == ["429", "429", "429"]
    assert [r["rule"] for r in server.requests] == ["default", "default", 0]


@pytest.mark.asyncio
async def test_counted_fault_fails_the_first_n_then_succeeds(server: RunningServer) -> None:
    body = {"model": "demo@fault=500x2", "messages": USER_HELLO}
    statuses = [(await call(server, "/v1/chat/completions", body))[0] for _ in range(4)]
    assert statuses == [500, 500, 200, 200]
    other_model = {"model": "demo-fast@fault=500x2", "messages": USER_HELLO}
    assert (await call(server, "/v1/chat/completions", other_model))[0] == 500
    server.reset()
    assert (await call(server, "/v1/chat/completions", body))[0] == 500


@pytest.mark.asyncio
async def test_rule_times_lets_a_test_fail_twice_then_succeed(server: RunningServer) -> None:
    server.set_script({"rules": [{"fault": "503", "times": 2}, {"reply": "recovered"}]})
    results = [
        await call(server, "/api/chat", {"model": "m", "messages": USER_HELLO, "stream": False})
        for _ in range(3)
    ]
    assert [status for status, _, _ in results] == [503, 503, 200]
    assert [h["x-fakellm-rule"] for _, h, _ in results] == ["0", "0", "1"]
    assert json.loads(results[2][2])["message"]["content"] == "recovered"


@pytest.mark.asyncio
async def test_unknown_fault_is_a_clear_400(server: RunningServer) -> None:
    status, _, raw = await call(
        server,
        "/v1/chat/completions",
        {"model": "demo", "messages": USER_HELLO},
        headers={"x-fakellm-fault": "teapot"},
    )
    assert status == 400
    assert json.loads(raw)["error"]["message"].startswith("x-fakellm-fault: unknown fault 'teapot'")


@pytest.mark.asyncio
async def test_hang_holds_until_the_client_leaves(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as session:
        hung = asyncio.create_task(
            session.post(
                server.url + "/v1/messages",
                json={"model": "claude@fault=hang", "max_tokens": 5, "messages": USER_HELLO},
            )
        )
        wait = server.url + "/_fakellm/wait"
        async with session.get(
            wait, params={"requests": "1", "inflight": "1", "timeout": "10"}
        ) as r:
            assert r.status == 200
        assert not hung.done()
        hung.cancel()
        with pytest.raises(asyncio.CancelledError):
            await hung
        async with session.get(wait, params={"inflight": "0", "timeout": "10"}) as r:
            assert r.status == 200
            assert await r.json() == {"ok": True, "requests": 1, "inflight": 0}


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("path", "body", "marker"),
    [
        ("/v1/chat/completions", {"model": "demo", "stream": True}, b"[DONE]"),
        ("/v1/messages", {"model": "claude", "max_tokens": 500, "stream": True}, b"message_stop"),
        ("/api/chat", {"model": "llama3.2"}, b'"done":true'),
    ],
)
async def test_cut_stream_ends_the_connection_mid_answer(
    server: RunningServer, path: str, body: dict[str, Any], marker: bytes
) -> None:
    server.set_script({"rules": [{"reply": "one two three four five six", "fault": "cut"}]})
    received = b""
    async with (
        aiohttp.ClientSession() as session,
        session.post(server.url + path, json=body | {"messages": USER_HELLO}) as resp,
    ):
        assert resp.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            async for data in resp.content.iter_any():
                received += data
    assert marker not in received
    assert received.count(b'"one"') == 1, "the first half of the words was sent"
    assert received.count(b'" three"') == 1
    assert b"four" not in received


@pytest.mark.asyncio
async def test_malformed_fault(server: RunningServer) -> None:
    status, _, raw = await call(
        server, "/v1/chat/completions", {"model": "demo@fault=malformed", "messages": USER_HELLO}
    )
    assert status == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(raw)
    assert raw.startswith(b'{"id":"chatcmpl-')

    _, _, raw = await call(
        server,
        "/v1/messages",
        {"model": "c@fault=malformed", "max_tokens": 99, "stream": True, "messages": USER_HELLO},
    )
    events = sse(raw)
    broken = []
    for name, data in events:
        try:
            json.loads(data)
        except json.JSONDecodeError:
            broken.append(name)
    assert broken == ["content_block_delta"]
    assert events[-1][0] == "message_stop", "the stream goes on after the broken event"

    _, _, raw = await call(
        server,
        "/api/chat",
        {"model": "llama3.2", "messages": USER_HELLO},
        headers={"x-fakellm-fault": "malformed"},
    )
    lines = raw.decode().splitlines()
    bad = [line for line in lines if not line.startswith("{") or not line.endswith("}")]
    assert len(bad) == 1
    assert json.loads(lines[-1])["done"] is True


@pytest.mark.asyncio
async def test_no_usage_fault(server: RunningServer) -> None:
    headers = {"x-fakellm-fault": "no_usage"}
    _, _, raw = await call(
        server,
        "/v1/chat/completions",
        {
            "model": "demo",
            "messages": USER_HELLO,
            "stream": True,
            "stream_options": {"include_usage": True},
        },
        headers=headers,
    )
    chunks = openai_chunks(raw)
    assert all(c["choices"] for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    _, _, raw = await call(
        server, "/v1/chat/completions", {"model": "demo", "messages": USER_HELLO}, headers=headers
    )
    assert "usage" not in json.loads(raw)

    _, _, raw = await call(
        server,
        "/v1/messages",
        {"model": "claude", "max_tokens": 99, "stream": True, "messages": USER_HELLO},
        headers=headers,
    )
    message_delta = [json.loads(d) for name, d in sse(raw) if name == "message_delta"]
    assert message_delta == [
        {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}}
    ]
    _, _, raw = await call(
        server, "/api/chat", {"model": "llama3.2", "messages": USER_HELLO}, headers=headers
    )
    final = ndjson(raw)[-1]
    assert final["done"] is True
    assert not {"prompt_eval_count", "eval_count"} & set(final)


@pytest.mark.asyncio
async def test_delays_before_first_byte_and_between_chunks(server: RunningServer) -> None:
    server.set_script({"rules": [{"reply": "a b c d", "delay_ms": 150, "chunk_delay_ms": 40}]})
    async with aiohttp.ClientSession() as session:
        started = time.perf_counter()
        async with session.post(
            server.url + "/api/chat", json={"model": "m", "messages": USER_HELLO}
        ) as resp:
            first_line = await resp.content.readline()
            first_byte = time.perf_counter() - started
            rest = await resp.read()
            total = time.perf_counter() - started
    assert json.loads(first_line)["message"]["content"] == "a"
    assert first_byte >= 0.15
    assert total - first_byte >= 4 * 0.04 * 0.9, "4 more lines, each after a chunk delay"
    assert json.loads(rest.splitlines()[-1])["done"] is True


# Control API and runners


@pytest.mark.asyncio
async def test_request_log_records_and_masks(server: RunningServer) -> None:
    body = {"model": "demo", "messages": USER_HELLO}
    await call(
        server,
        "/v1/chat/completions",
        body,
        headers={"Authorization": "Bearer sk-proj-abcdefgh", "X-Trace": "t-1"},
    )
    await call(
        server, "/v1/messages", body | {"max_tokens": 5}, headers={"x-api-key": "sk-ant-wxyz1234"}
    )
    status, _, raw = await call(server, "/_fakellm/requests", method="GET")
    assert status == 200
    first, second = json.loads(raw)["requests"]
    assert first["protocol"] == "openai"
    assert (first["method"], first["path"], first["model"]) == (
        "POST",
        "/v1/chat/completions",
        "demo",
    )
    assert first["headers"]["authorization"] == "Bearer ****efgh"
    assert first["headers"]["x-trace"] == "t-1"
    assert first["body"] == body
    assert (first["rule"], first["fault"]) == ("default", None)
    assert isinstance(first["time"], float)
    assert second["protocol"] == "anthropic"
    assert second["headers"]["x-api-key"] == "****1234"
    assert "sk-proj" not in raw.decode() and "sk-ant" not in raw.decode()
    assert second["seq"] == first["seq"] + 1

    await call(server, "/_fakellm/reset")
    _, _, raw = await call(server, "/_fakellm/requests", method="GET")
    assert json.loads(raw) == {"requests": []}


@pytest.mark.asyncio
async def test_script_endpoint_replaces_and_validates(server: RunningServer) -> None:
    status, _, raw = await call(
        server, "/_fakellm/script", {"rules": [{"reply": "ok"}, {"chunks": "many"}]}
    )
    assert status == 400
    assert json.loads(raw) == {"error": "rules[1].chunks: expected an integer >= 1, got 'many'"}
    status, _, raw = await call(
        server,
        "/_fakellm/script",
        {"models": ["m"], "rules": [{"model": "m", "reply": "scripted"}]},
    )
    assert (status, json.loads(raw)) == (200, {"status": "ok", "rules": 1})
    _, _, raw = await call(server, "/_fakellm/script", method="GET")
    assert json.loads(raw) == {
        "models": ["m"],
        "api_key": None,
        "rules": [{"model": "m", "reply": "scripted"}],
    }
    _, _, raw = await call(
        server, "/api/chat", {"model": "m", "messages": USER_HELLO, "stream": False}
    )
    assert json.loads(raw)["message"]["content"] == "scripted"
    status, _, raw = await call(server, "/_fakellm/health", method="GET")
    assert json.loads(raw) == {
        "status": "ok",
        "name": "node-a",
        "rules": 1,
        "requests": 1,
        "inflight": 0,
    }


@pytest.mark.asyncio
async def test_bad_requests_get_protocol_errors(server: RunningServer) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(server.url + "/v1/chat/completions", data=b"{nope") as resp,
    ):
        assert resp.status == 400
        assert (await resp.json())["error"]["type"] == "invalid_request_error"
    status, _, raw = await call(server, "/v1/messages", {"model": "claude"})
    assert status == 400
    assert json.loads(raw)["error"] == {
        "type": "invalid_request_error",
        "message": "'messages' is required and must be an array",
    }
    status, _, raw = await call(server, "/api/chat", {"messages": []})
    assert (status, json.loads(raw)) == (
        400,
        {"error": "'model' is required and must be a non-empty string"},
    )
    status, headers, _ = await call(server, "/v1/unknown", method="GET")
    assert (status, headers["x-fakellm-node"]) == (404, "node-a")


def test_log_is_bounded_and_set_script_works_across_threads() -> None:
    with start_in_thread(log_size=3) as small:
        for _ in range(5):
            urllib.request.urlopen(small.url + "/api/version").read()
        assert [r["seq"] for r in small.requests] == [3, 4, 5]
        small.set_script(Script.from_dict({"models": ["x"]}))
        tags = json.load(urllib.request.urlopen(small.url + "/api/tags"))
        assert [m["name"] for m in tags["models"]] == ["x:latest"]
        url = small.url
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url + "/_fakellm/health", timeout=2)


def test_start_in_thread_refuses_remote_hosts() -> None:
    with pytest.raises(ValueError, match="refusing to listen on '0.0.0.0'.*--allow-remote"):
        start_in_thread(host="0.0.0.0")


@pytest.mark.asyncio
async def test_concurrent_requests(server: RunningServer) -> None:
    server.set_script({"rules": [{"model": "stream", "chunks": 20}]})
    async with aiohttp.ClientSession() as session:

        async def one(n: int) -> str:
            model = "stream" if n % 2 else "demo"
            messages = [{"role": "user", "content": f"Tell me about topic {n}"}]
            body = {"model": model, "messages": messages, "stream": model == "stream"}
            async with session.post(server.url + "/v1/chat/completions", json=body) as resp:
                assert resp.status == 200
                raw = await resp.read()
            if model == "stream":
                chunks = openai_chunks(raw)
                assert len(chunks) == 22
                return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
            return json.loads(raw)["choices"][0]["message"]["content"]

        texts = await asyncio.gather(*(one(n) for n in range(50)))
    for n, text in enumerate(texts):
        assert text == default_reply("", [("user", f"Tell me about topic {n}")])
    assert len(server.requests) == 50
    assert server.wait_for(inflight=0, timeout=5)


def test_module_entry_point_serves_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"rules": [{"reply": "from the script"}]}))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agents.fakellm",
            "--port",
            "0",
            "--name",
            "cli",
            "--script",
            str(script),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("fakellm listening on http://127.0.0.1:")
        url = first.split()[-1]
        assert proc.stdout.readline().split() == ["OpenAI", "base", "URL:", f"{url}/v1"]
        request = urllib.request.Request(
            url + "/v1/chat/completions",
            data=json.dumps({"model": "demo", "messages": USER_HELLO}).encode(),
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request) as resp:
            assert resp.headers["x-fakellm-node"] == "cli"
            assert json.load(resp)["choices"][0]["message"]["content"] == "from the script"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert "Traceback" not in err


def test_module_entry_point_rejects_bad_input(tmp_path: Path) -> None:
    remote = subprocess.run(
        [sys.executable, "-m", "agents.fakellm", "--host", "0.0.0.0"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert remote.returncode == 2
    assert "refusing to listen on '0.0.0.0'" in remote.stderr
    bad = tmp_path / "bad.json"
    bad.write_text('{"rules": [{"fault": "429x"}]}')
    broken = subprocess.run(
        [sys.executable, "-m", "agents.fakellm", "--script", str(bad)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert broken.returncode == 2
    assert "bad.json: rules[0].fault: unknown fault '429x'" in broken.stderr


def test_anthropic_wire_module_helpers() -> None:
    req = anthropic_wire.parse(
        {
            "model": "claude",
            "system": "sys",
            "messages": [
                {"role": "user", "content": "q"},
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {"a": 1}}],
                },
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "t",
                            "content": [{"type": "text", "text": "r"}],
                        }
                    ],
                },
            ],
        }
    )
    assert [m.role for m in req.messages] == ["user", "assistant", "tool"]
    assert req.messages[1].text == 'f({"a":1})'
    assert req.last_text == "r"
    assert (req.stream, req.max_tokens, req.system) == (False, None, "sys")
    ollama_req = ollama_wire.parse({"model": "llama3.2", "messages": USER_HELLO})
    assert ollama_req.stream is True
    assert ollama_wire.tagged("llama3.2") == "llama3.2:latest"
    assert ollama_wire.tagged("registry.local/x/llama3.2:8b") == "registry.local/x/llama3.2:8b"


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("Research this topic: tidal power", "tidal power"),
        (
            "Analyse these findings:\nHere is a short research brief on tidal power. More.",
            "tidal power",
        ),
        ("Write a report from:\nAnalysis of tidal power: promising.", "tidal power"),
        ("Tell me about solar panels.", "solar panels"),
        ("Write a report from:\nResearch notes on tidal power follow. More.", "tidal power"),
        (
            "Write a report from:\nHere is how the numbers on tidal power look. It supports "
            "a cautious conclusion: the effect is real.",
            "tidal power",
        ),
    ],
)
def test_default_replies_stay_on_the_subject_down_a_pipeline(prompt: str, expected: str) -> None:
    from agents.fakellm.replies import subject

    assert subject(prompt) == expected


def test_an_agent_told_to_say_terminate_does() -> None:
    from agents.fakellm.replies import default_reply

    system = "You are a moderator. Summarise, then say TERMINATE."
    heard = [("user", "Go"), ("assistant", "For."), ("assistant", "Against."), ("user", "More")]
    told = default_reply(system, [*heard, ("assistant", "Both sides spoke.")])
    first_turn = default_reply(system, [("user", "Go"), ("assistant", "For.")])
    plain = default_reply("You are a moderator.", [*heard, ("assistant", "Both sides spoke.")])
    assert told.endswith("TERMINATE")
    assert "TERMINATE" not in first_turn, "a moderator hears both sides before ending the chat"
    assert "TERMINATE" not in plain


@pytest.mark.asyncio
async def test_ollama_show_describes_a_model_the_node_has(server: RunningServer) -> None:
    server.set_script({"models": ["llama3.1:8b"]})
    status, _, raw = await call(server, "/api/show", {"model": "llama3.1:8b"})
    assert status == 200
    shown = json.loads(raw)
    assert shown["details"]["parameter_size"] == "8.0B"
    assert shown["details"]["quantization_level"] == "Q4_K_M"
    info = shown["model_info"]
    assert info["general.architecture"] == "llama"
    assert info["llama.block_count"] == 32 and info["llama.attention.head_count_kv"] == 8
    status, _, raw = await call(server, "/api/show", {"model": "qwen2.5:7b"})
    assert status == 404 and json.loads(raw) == {"error": "model 'qwen2.5:7b' not found"}
    status, _, _ = await call(server, "/api/show", {})
    assert status == 400


# --- what the demo model does unscripted (agents/fakellm/demo.py) --------------------------------


def test_the_demo_hands_off_to_the_colleague_the_request_points_to() -> None:
    from agents.fakellm import demo

    tools = ["transfer_to_billing_support", "transfer_to_technical_support", "transfer_to_user"]
    charged = [("user", "I was charged twice for my subscription")]
    crashed = [("user", "The app crashes with an error when I log in")]
    assert demo.handoff_target(tools, charged) == "transfer_to_billing_support"
    assert demo.handoff_target(tools, crashed) == "transfer_to_technical_support"
    # Nothing points anywhere: the first colleague; never the person (that is a person's call).
    assert demo.handoff_target(tools, [("user", "hello")]) == "transfer_to_billing_support"
    # The agent the conversation was handed to answers rather than handing it on.
    handed = [*charged, ("assistant", ""), ("tool", "Transferred to Billing support.")]
    assert demo.handoff_target(tools, handed) is None


def test_the_demo_calls_built_in_tools_with_sensible_arguments() -> None:
    from agents.fakellm import demo

    asked = [("user", "Research this topic: tidal power")]
    assert demo.builtin_calls(
        ["http_get", "current_time", "get_variable"], asked, "tidal power"
    ) == [
        ("http_get", {"url": "https://en.wikipedia.org/wiki/Tidal_power"}),
        ("current_time", {"timezone": "UTC"}),
    ]
    # A sum in the request goes to the calculator alone.
    sum_asked = [("user", "estimate 17 x 23 please")]
    assert demo.builtin_calls(["calculator", "http_get"], sum_asked, "x") == [
        ("calculator", {"expression": "17 * 23"})
    ]
    # Dates are not sums; two figures are averaged; no figure at all: words per sentence.
    dated = "Checked on 2026-12-07T02:12:01+00:00: costs fell from 120 to 80."
    assert demo.builtin_calls(["calculator"], [("user", dated)], "x") == [
        ("calculator", {"expression": "(120 + 80) / 2"})
    ]
    assert demo.builtin_calls(["calculator"], [("user", "One. Two words.")], "x") == [
        ("calculator", {"expression": "3 / 2"})
    ]
    # After the results come back it answers instead of calling again.
    assert demo.builtin_calls(["calculator"], [*sum_asked, ("tool", "391")], "x") == []


def test_the_demo_answers_routers_and_selectors_with_a_valid_choice() -> None:
    from agents.fakellm import demo

    router = (
        "You route tickets.\n\nChoose where this goes next. Answer with exactly one of: "
        "sales, billing, technical."
    )
    assert demo.choice(router, [("user", "My invoice is wrong")]) == "billing"
    assert demo.choice(router, [("user", "It crashed with an error")]) == "technical"
    unclear = demo.choice(router, [("user", "hello there")])
    assert unclear in ("sales", "billing", "technical")
    assert demo.choice(router, [("user", "hello there")]) == unclear, "the same every time"
    selector = "Who should speak next? Answer with exactly one of: Planner, Engineer, Reviewer"
    chat = [("user", "Task: add 2 and 2"), ("user", "Planner: first add them")]
    assert demo.choice(selector, chat) == "Engineer"
    chat += [("user", "Engineer: 4"), ("user", "Reviewer: fine")]
    assert demo.choice(selector, chat) == "Planner"
    assert demo.choice("You are a writer.", [("user", "Write.")]) is None
