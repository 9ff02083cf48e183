"""Scripts: which reply, tool call, timing or fault a request gets.

A script is a JSON object::

    {
      "models": ["demo", "gpt-4o-mini"],
      "api_key": "sk-test-1234",
      "rules": [
        {"last_role": "tool", "reply": "It is 21 degrees in Paris."},
        {"model": "demo*", "has_tools": true, "last_message_contains": "weather",
         "tool_call": {"name": "get_weather", "arguments": {"city": "Paris"}}},
        {"model": "flaky", "fault": "429x2"},
        {"system_regex": "(?i)researcher", "chunks": 5, "chunk_delay_ms": 20}
      ]
    }

Rules are tried in order and the first match wins. `*_contains` compare case-insensitively;
`*_regex` use Python syntax (add `(?i)` to ignore case) and search anywhere in the text.
Everything is validated and compiled once, when the script loads.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from .protocols.base import ChatRequest

DEFAULT_MODELS: Final = ("demo", "demo-fast", "gpt-4o-mini", "claude-3-5-haiku-latest", "llama3.2")
PROTOCOLS: Final = ("openai", "anthropic", "ollama")
FAULTS: Final = (
    "429",
    "500",
    "503",
    "overloaded",
    "hang",
    "malformed",
    "cut",
    "no_usage",
    "context_length",
    "auth",
)
# Faults answered with an error status instead of a reply.
ERROR_FAULTS: Final = frozenset({"429", "500", "503", "overloaded", "context_length", "auth"})
# A hung request must not pin a connection forever if the client never gives up.
MAX_DELAY_MS: Final = 600_000

_FAULT_RE = re.compile(rf"({'|'.join(FAULTS)})(?:x([1-9][0-9]*))?")


class ScriptError(ValueError):
    """A script that cannot be used; the message names the rule index and the field."""


@dataclass(frozen=True, slots=True)
class Fault:
    spec: str
    name: str
    # Fail only the first `count` matching requests (per spec and model since reset).
    count: int | None = None


@lru_cache(maxsize=256)
def parse_fault(spec: str) -> Fault:
    match = _FAULT_RE.fullmatch(spec.strip())
    if match is None:
        raise ValueError(
            f"unknown fault {spec!r}; expected one of {', '.join(FAULTS)}, "
            "optionally followed by xN (e.g. 429x2)"
        )
    count = match.group(2)
    return Fault(spec.strip(), match.group(1), int(count) if count else None)


@dataclass(frozen=True, slots=True)
class ToolCallSpec:
    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)


def _glob(pattern: str) -> re.Pattern[str] | None:
    if "*" not in pattern:
        return None
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")))


@dataclass(slots=True)
class Rule:
    """One scripted behaviour. Unset matchers match anything."""

    model: str | None = None
    system_contains: str | None = None
    system_regex: str | None = None
    last_message_contains: str | None = None
    last_message_regex: str | None = None
    protocol: str | None = None
    has_tools: bool | None = None
    last_role: str | None = None

    reply: str | None = None
    tool_calls: tuple[ToolCallSpec, ...] = ()
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    delay_ms: float = 0
    chunk_delay_ms: float = 0
    chunks: int | None = None
    fault: Fault | None = None
    times: int | None = None
    # Answer in full whatever `max_tokens` says, as some servers do: what a client's own
    # limits must then stop.
    ignore_max_tokens: bool = False

    _model_re: re.Pattern[str] | None = field(default=None, init=False, repr=False)
    _system_re: re.Pattern[str] | None = field(default=None, init=False, repr=False)
    _last_re: re.Pattern[str] | None = field(default=None, init=False, repr=False)
    _system_needle: str | None = field(default=None, init=False, repr=False)
    _last_needle: str | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.model is not None:
            self._model_re = _glob(self.model)
        if self.system_regex is not None:
            self._system_re = _compile(self.system_regex, "system_regex")
        if self.last_message_regex is not None:
            self._last_re = _compile(self.last_message_regex, "last_message_regex")
        if self.system_contains is not None:
            self._system_needle = self.system_contains.lower()
        if self.last_message_contains is not None:
            self._last_needle = self.last_message_contains.lower()
        if self.protocol is not None and self.protocol not in PROTOCOLS:
            raise ScriptError(f"protocol: expected one of {', '.join(PROTOCOLS)}")

    def matches(self, req: ChatRequest) -> bool:
        if self.protocol is not None and req.protocol != self.protocol:
            return False
        if self.model is not None:
            if self._model_re is not None:
                if self._model_re.fullmatch(req.base_model) is None:
                    return False
            elif req.base_model != self.model:
                return False
        if self.has_tools is not None and req.has_tools != self.has_tools:
            return False
        if self.last_role is not None and req.last_role != self.last_role:
            return False
        if self._system_needle is not None and self._system_needle not in req.system_lower:
            return False
        if self._last_needle is not None and self._last_needle not in req.last_text_lower:
            return False
        if self._system_re is not None and self._system_re.search(req.system) is None:
            return False
        return self._last_re is None or self._last_re.search(req.last_text) is not None


def _compile(pattern: str, name: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ScriptError(f"{name}: invalid regular expression: {exc}") from None


@dataclass(slots=True)
class Script:
    rules: tuple[Rule, ...] = ()
    models: tuple[str, ...] = DEFAULT_MODELS
    api_key: str | None = None

    def first_match(self, req: ChatRequest, hits: dict[int, int]) -> tuple[int, Rule] | None:
        """The winning rule; `hits` counts uses of rules that have `times` (mutated)."""
        for index, rule in enumerate(self.rules):
            if not rule.matches(req):
                continue
            if rule.times is not None:
                used = hits.get(index, 0)
                if used >= rule.times:
                    continue
                hits[index] = used + 1
            return index, rule
        return None

    @classmethod
    def from_dict(cls, data: Any) -> Script:
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise ScriptError(f"script: expected a JSON object, got {_kind(data)}")
        _reject_unknown(data, _SCRIPT_FIELDS, "script")
        models = data.get("models")
        if models is None:
            model_names = DEFAULT_MODELS
        else:
            if not isinstance(models, list) or not all(isinstance(m, str) and m for m in models):
                raise ScriptError("models: expected an array of non-empty strings")
            model_names = tuple(models)
        api_key = data.get("api_key")
        if api_key is not None and (not isinstance(api_key, str) or not api_key):
            raise ScriptError("api_key: expected a non-empty string or null")
        rules = data.get("rules", [])
        if not isinstance(rules, list):
            raise ScriptError(f"rules: expected an array, got {_kind(rules)}")
        parsed = tuple(_rule_from_dict(i, raw) for i, raw in enumerate(rules))
        return cls(rules=parsed, models=model_names, api_key=api_key)

    @classmethod
    def from_json(cls, text: str | bytes, source: str = "script") -> Script:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ScriptError(
                f"{source}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
            ) from None
        return cls.from_dict(data)


def load_script(path: str | Path) -> Script:
    """Reads and validates a script file; every problem is a ScriptError naming the file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScriptError(f"{path}: cannot read script: {exc}") from None
    try:
        return Script.from_json(text, str(path))
    except ScriptError as exc:
        message = str(exc)
        raise ScriptError(
            message if message.startswith(str(path)) else f"{path}: {message}"
        ) from None


def coerce_script(script: Script | Mapping[str, Any] | None) -> Script:
    if isinstance(script, Script):
        return script
    return Script.from_dict(script)


_SCRIPT_FIELDS: Final = frozenset({"models", "api_key", "rules", "comment"})
_STRING_MATCHERS: Final = (
    "model",
    "system_contains",
    "system_regex",
    "last_message_contains",
    "last_message_regex",
    "protocol",
    "last_role",
)
_RULE_FIELDS: Final = frozenset(
    {
        *_STRING_MATCHERS,
        "has_tools",
        "reply",
        "tool_call",
        "tool_calls",
        "prompt_tokens",
        "completion_tokens",
        "delay_ms",
        "chunk_delay_ms",
        "chunks",
        "fault",
        "times",
        "ignore_max_tokens",
        "comment",
    }
)


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), "null" if value is None else "a number"
    )


def _reject_unknown(data: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ScriptError(
            f"{where}: unknown field {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})"
        )


def _int(where: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ScriptError(f"{where}: expected an integer >= {minimum}, got {value!r}")
    return value


def _ms(where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ScriptError(f"{where}: expected a number of milliseconds >= 0, got {value!r}")
    if value > MAX_DELAY_MS:
        raise ScriptError(f"{where}: at most {MAX_DELAY_MS} ms, got {value!r}")
    return float(value)


def _tool_calls(where: str, value: Any) -> tuple[ToolCallSpec, ...]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise ScriptError(f"{where}: expected at least one tool call")
    calls = []
    for n, item in enumerate(items):
        at = f"{where}[{n}]" if isinstance(value, list) else where
        if not isinstance(item, Mapping):
            raise ScriptError(f"{at}: expected an object with 'name' and 'arguments'")
        _reject_unknown(item, frozenset({"name", "arguments"}), at)
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise ScriptError(f"{at}.name: expected a non-empty string")
        arguments = item.get("arguments", {})
        if not isinstance(arguments, Mapping):
            raise ScriptError(f"{at}.arguments: expected an object, got {_kind(arguments)}")
        calls.append(ToolCallSpec(name, dict(arguments)))
    return tuple(calls)


def _rule_from_dict(index: int, raw: Any) -> Rule:
    where = f"rules[{index}]"
    if not isinstance(raw, Mapping):
        raise ScriptError(f"{where}: expected an object, got {_kind(raw)}")
    _reject_unknown(raw, _RULE_FIELDS, where)
    kwargs: dict[str, Any] = {}
    for key in (*_STRING_MATCHERS, "reply"):
        if key in raw:
            value = raw[key]
            if not isinstance(value, str):
                raise ScriptError(f"{where}.{key}: expected a string, got {_kind(value)}")
            kwargs[key] = value
    for flag in ("has_tools", "ignore_max_tokens"):
        if flag in raw:
            if not isinstance(raw[flag], bool):
                raise ScriptError(f"{where}.{flag}: expected true or false")
            kwargs[flag] = raw[flag]
    if "tool_call" in raw and "tool_calls" in raw:
        raise ScriptError(f"{where}: give either 'tool_call' or 'tool_calls', not both")
    for key in ("tool_call", "tool_calls"):
        if key in raw:
            kwargs["tool_calls"] = _tool_calls(f"{where}.{key}", raw[key])
    for key, minimum in (("prompt_tokens", 0), ("completion_tokens", 0), ("chunks", 1)):
        if key in raw:
            kwargs[key] = _int(f"{where}.{key}", raw[key], minimum)
    if "times" in raw:
        kwargs["times"] = _int(f"{where}.times", raw["times"], 1)
    for key in ("delay_ms", "chunk_delay_ms"):
        if key in raw:
            kwargs[key] = _ms(f"{where}.{key}", raw[key])
    if "fault" in raw:
        if not isinstance(raw["fault"], str):
            raise ScriptError(f'{where}.fault: expected a string such as "429" or "cut"')
        try:
            kwargs["fault"] = parse_fault(raw["fault"])
        except ValueError as exc:
            raise ScriptError(f"{where}.fault: {exc}") from None
    try:
        return Rule(**kwargs)
    except ScriptError as exc:
        raise ScriptError(f"{where}.{exc}") from None


def rule_to_dict(rule: Rule) -> dict[str, Any]:
    """The JSON form of a rule, as `from_dict` reads it back."""
    out: dict[str, Any] = {}
    for key in (*_STRING_MATCHERS, "has_tools", "reply", "prompt_tokens", "completion_tokens"):
        value = getattr(rule, key)
        if value is not None:
            out[key] = value
    if rule.tool_calls:
        out["tool_calls"] = [
            {"name": c.name, "arguments": dict(c.arguments)} for c in rule.tool_calls
        ]
    for key in ("delay_ms", "chunk_delay_ms"):
        if getattr(rule, key):
            out[key] = getattr(rule, key)
    if rule.chunks is not None:
        out["chunks"] = rule.chunks
    if rule.fault is not None:
        out["fault"] = rule.fault.spec
    if rule.times is not None:
        out["times"] = rule.times
    return out


def script_to_dict(script: Script) -> dict[str, Any]:
    return {
        "models": list(script.models),
        "api_key": script.api_key,
        "rules": [rule_to_dict(rule) for rule in script.rules],
    }


__all__ = [
    "DEFAULT_MODELS",
    "ERROR_FAULTS",
    "FAULTS",
    "Fault",
    "Rule",
    "Script",
    "ScriptError",
    "ToolCallSpec",
    "coerce_script",
    "load_script",
    "parse_fault",
    "script_to_dict",
]
