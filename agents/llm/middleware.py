"""Gateway middleware: a workspace's ordered hooks around every model call it makes.

Hooks are data, never code: redact a pattern from prompts and/or outputs, add a system preamble,
block calls whose prompt or output holds a keyword, and log what the hooks did to the trace. The
gateway applies them once per `complete()`, in their order, whoever calls: runs, the playground,
classifiers, peers. Where a hook must see the whole output (a redaction or a block of outputs),
the answer is not streamed to the caller: a half-written secret must not reach a viewer first.

Patterns are regular expressions run by the `regex` module with a time limit, so a pattern that
backtracks without end cannot stall a worker: a redaction that runs out of time blocks the call
(a prompt that could not be redacted is not sent; an output is not handed on).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any, Final, Literal

import regex
from pydantic import BaseModel, ConfigDict, Field, field_validator

from .errors import LLMError
from .types import LLMRequest, LLMResult

MAX_HOOKS: Final = 30
# Per pattern and text: enough for megabytes of ordinary text, far too little to hang on.
PATTERN_TIMEOUT_S: Final = 0.25
BLOCKED: Final = "blocked"

Target = Literal["prompts", "outputs", "both"]


class _Hook(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RedactHook(_Hook):
    kind: Literal["redact"]
    pattern: str = Field(min_length=1, max_length=500)
    replacement: str = Field(default="[redacted]", max_length=100)
    apply_to: Target = "both"
    ignore_case: bool = True

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            regex.compile(value)
        except regex.error as error:
            raise ValueError(f"not a valid pattern: {error}") from None
        return value

    def compiled(self) -> Any:
        return regex.compile(self.pattern, regex.IGNORECASE if self.ignore_case else 0)


class PreambleHook(_Hook):
    kind: Literal["preamble"]
    text: str = Field(min_length=1, max_length=4000)


class BlockHook(_Hook):
    kind: Literal["block"]
    keywords: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        min_length=1, max_length=50
    )
    apply_to: Target = "prompts"


class LogHook(_Hook):
    kind: Literal["log"]


Hook = Annotated[RedactHook | PreambleHook | BlockHook | LogHook, Field(discriminator="kind")]


class Middleware(BaseModel):
    """A workspace's hooks, in the order they apply."""

    model_config = ConfigDict(extra="forbid")

    hooks: list[Hook] = Field(default_factory=list, max_length=MAX_HOOKS)

    @property
    def logs(self) -> bool:
        return any(isinstance(hook, LogHook) for hook in self.hooks)

    @property
    def sees_whole_output(self) -> bool:
        """Whether a hook needs the whole answer before anyone sees it (no streaming then)."""
        return any(
            isinstance(hook, RedactHook | BlockHook) and hook.apply_to != "prompts"
            for hook in self.hooks
        )

    def before(self, request: LLMRequest) -> LLMRequest:
        """The request as the hooks change it; LLMError("blocked") when one refuses it."""
        messages = [dict(message) for message in request.messages]
        notes: list[str] = []
        for index, hook in enumerate(self.hooks, start=1):
            if isinstance(hook, PreambleHook):
                messages = _with_preamble(messages, hook.text)
                notes.append(f"hook {index}: preamble added")
            elif isinstance(hook, RedactHook) and hook.apply_to != "outputs":
                count = 0
                for message in messages:
                    message["content"], found = _redact_content(message.get("content"), hook)
                    count += found
                notes.append(f"hook {index}: {count} redacted from the prompt")
            elif isinstance(hook, BlockHook) and hook.apply_to != "outputs":
                word = _keyword_in(hook, " ".join(_texts(messages)))
                if word is not None:
                    raise _blocked(f"the prompt contains the blocked keyword “{word}”", index)
        metadata: Mapping[str, Any] = request.metadata
        if self.logs:
            outputs = [
                f"hook {index}: outputs checked"
                for index, hook in enumerate(self.hooks, start=1)
                if isinstance(hook, RedactHook | BlockHook) and hook.apply_to != "prompts"
            ]
            metadata = {**metadata, "middleware": "; ".join(notes + outputs) or "no changes"}
        return dataclasses.replace(request, messages=messages, metadata=metadata)

    def after(self, result: LLMResult) -> LLMResult:
        """The answer as the hooks change it; LLMError("blocked") when one refuses it."""
        text = result.text
        for index, hook in enumerate(self.hooks, start=1):
            if isinstance(hook, RedactHook) and hook.apply_to != "prompts":
                text, _ = _redact(text, hook)
            elif isinstance(hook, BlockHook) and hook.apply_to != "prompts":
                word = _keyword_in(hook, text)
                if word is not None:
                    raise _blocked(f"the answer contains the blocked keyword “{word}”", index)
        return result if text == result.text else dataclasses.replace(result, text=text)


MiddlewareSource = Callable[[str], Awaitable[Middleware | None]]


def _blocked(why: str, index: int) -> LLMError:
    return LLMError(
        BLOCKED, f"The workspace's gateway middleware (hook {index}) blocked the call: {why}."
    )


def _texts(messages: list[dict[str, Any]]) -> list[str]:
    found = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            found.append(content)
        elif isinstance(content, list):
            found += [str(p.get("text", "")) for p in content if isinstance(p, Mapping)]
    return found


def _with_preamble(messages: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    if (
        messages
        and messages[0].get("role") == "system"
        and isinstance(messages[0].get("content"), str)
    ):
        first = {**messages[0], "content": f"{text}\n\n{messages[0]['content']}"}
        return [first, *messages[1:]]
    return [{"role": "system", "content": text}, *messages]


def _redact(text: str, hook: RedactHook) -> tuple[str, int]:
    try:
        redacted, count = hook.compiled().subn(hook.replacement, text, timeout=PATTERN_TIMEOUT_S)
    except TimeoutError:
        raise LLMError(
            BLOCKED,
            "The workspace's gateway middleware blocked the call: a redaction pattern took "
            "too long on this text, so it could not be redacted.",
        ) from None
    return str(redacted), int(count)


def _redact_content(content: Any, hook: RedactHook) -> tuple[Any, int]:
    if isinstance(content, str):
        return _redact(content, hook)
    if isinstance(content, list):
        parts, total = [], 0
        for part in content:
            if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                text, count = _redact(part["text"], hook)
                parts.append({**part, "text": text})
                total += count
            else:
                parts.append(part)
        return parts, total
    return content, 0


def _keyword_in(hook: BlockHook, text: str) -> str | None:
    lowered = text.lower()
    return next((word for word in hook.keywords if word.lower() in lowered), None)
