"""The registry turns every mistake in a call into an error result the model can read."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from agents.tools import (
    ToolContext,
    ToolError,
    ToolRegistry,
    ToolResult,
    ToolSpec,
    builtin_registry,
    schema_errors,
)

CONTEXT = ToolContext(workspace_id=1, run_id="run-1", step_id="step-1")


class EchoTool:
    spec = ToolSpec(
        name="echo",
        description="Echo the text back.",
        parameters={
            "type": "object",
            "properties": {
                "text": {"type": "string", "maxLength": 10},
                "times": {"type": "integer"},
                "mode": {"type": "string", "enum": ["loud", "quiet"]},
                "tags": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["text"],
            "additionalProperties": False,
        },
    )

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        return ToolResult(content=arguments["text"] * arguments.get("times", 1))


class HangingTool:
    def __init__(self) -> None:
        self.never = asyncio.Event()
        self.cancelled = False

    spec = ToolSpec(
        name="hang", description="Never answers.", parameters={"type": "object"}, timeout_s=0.05
    )

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        try:
            await self.never.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return ToolResult(content="unreachable")


class BrokenTool:
    spec = ToolSpec(name="broken", description="Fails.", parameters={"type": "object"})

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        raise RuntimeError("secret internal detail /etc/shadow")


class RefusingTool:
    spec = ToolSpec(name="refusing", description="Refuses.", parameters={"type": "object"})

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        raise ToolError("Not today.")


def registry() -> ToolRegistry:
    return ToolRegistry([EchoTool()])


@pytest.mark.asyncio
async def test_a_valid_call_runs_the_tool() -> None:
    result = await registry().call("echo", '{"text": "ab", "times": 2}', CONTEXT)

    assert result == ToolResult(content="abab")


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        ('{"text": ', "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('"text"', "must be a JSON object"),
        ("{}", "text is required"),
        ('{"text": 5}', "text must be a string"),
        ('{"text": "12345678901"}', "text must be at most 10 characters"),
        ('{"text": "a", "times": 1.5}', "times must be an integer"),
        ('{"text": "a", "times": true}', "times must be an integer"),
        ('{"text": "a", "mode": "angry"}', "mode must be one of 'loud', 'quiet'"),
        ('{"text": "a", "tags": ["x", 2]}', "tags[1] must be a string"),
        ('{"text": "a", "colour": "red"}', "colour is not allowed"),
    ],
)
async def test_bad_arguments_come_back_as_errors_naming_the_field(
    arguments: str, words: str
) -> None:
    result = await registry().call("echo", arguments, CONTEXT)

    assert result.is_error
    assert words in result.content


@pytest.mark.asyncio
async def test_empty_arguments_mean_an_empty_object() -> None:
    result = await ToolRegistry([RefusingTool()]).call("refusing", "", CONTEXT)

    assert result == ToolResult(content="Not today.", is_error=True)


@pytest.mark.asyncio
async def test_an_unknown_tool_lists_the_available_ones() -> None:
    result = await builtin_registry().call("rm_rf", "{}", CONTEXT)

    assert result.is_error
    assert "'rm_rf'" in result.content
    assert "calculator, current_time, get_variable, http_get" in result.content


@pytest.mark.asyncio
async def test_a_tool_that_never_answers_times_out_and_is_cancelled() -> None:
    tool = HangingTool()

    result = await ToolRegistry([tool]).call("hang", "{}", CONTEXT)

    assert result.is_error
    assert "timed out" in result.content
    assert tool.cancelled


@pytest.mark.asyncio
async def test_an_unexpected_exception_shows_only_its_class(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="agents.tools.registry"):
        result = await ToolRegistry([BrokenTool()]).call("broken", "{}", CONTEXT)

    assert result.is_error
    assert "RuntimeError" in result.content
    assert "shadow" not in result.content
    assert "secret internal detail" in caplog.text


def test_specs_use_the_openai_tools_format() -> None:
    specs = builtin_registry().specs(["calculator", "get_variable"])

    assert [spec["function"]["name"] for spec in specs] == ["calculator", "get_variable"]
    for spec in specs:
        assert spec["type"] == "function"
        assert set(spec["function"]) == {"name", "description", "parameters"}
        assert spec["function"]["parameters"]["type"] == "object"
    assert specs[0]["function"]["parameters"]["required"] == ["expression"]


def test_all_specs_and_unknown_names() -> None:
    assert len(builtin_registry().specs()) == 4
    with pytest.raises(KeyError, match="nope"):
        builtin_registry().specs(["nope"])


def test_builtin_registry_is_shared_and_names_are_unique() -> None:
    assert builtin_registry() is builtin_registry()
    with pytest.raises(ValueError, match="already registered"):
        ToolRegistry([EchoTool(), EchoTool()])


def test_the_context_is_a_read_only_snapshot() -> None:
    variables = {"a": 1}
    context = ToolContext(variables=variables)
    variables["a"] = 2

    assert context.variables["a"] == 1
    with pytest.raises(TypeError):
        context.variables["b"] = 3  # type: ignore[index]


def test_schema_errors_accepts_a_valid_value() -> None:
    assert schema_errors(EchoTool.spec.parameters, {"text": "hi", "tags": ["a"]}) == []
