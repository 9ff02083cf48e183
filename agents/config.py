"""An agent's configuration: validated, versioned JSON.

Every agent version stores one `AgentConfig` as JSON. `schema_version` lets later releases change
the shape: `agent_config_load` upgrades older versions before validating, so stored versions
never need rewriting.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

AGENT_CONFIG_SCHEMA_VERSION = 1
MAX_SYSTEM_MESSAGE = 20_000


class ModelChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider_id: str = Field(min_length=1)
    model: str = Field(min_length=1, max_length=200)


class PolicyRule(BaseModel):
    """One rule of a model policy: when its condition holds, the turn uses `use`."""

    model_config = ConfigDict(extra="forbid")

    when: Literal[
        "input_longer_than", "input_shorter_than", "input_contains", "variable_equals", "role_is"
    ]
    # Characters for the length rules; the text, the variable's value or the role otherwise.
    value: int | str
    variable: str | None = Field(default=None, min_length=1, max_length=100)
    use: ModelChoice

    @model_validator(mode="after")
    def _fits_condition(self) -> PolicyRule:
        if self.when in ("input_longer_than", "input_shorter_than"):
            if isinstance(self.value, bool) or not isinstance(self.value, int) or self.value < 0:
                raise ValueError(f"'{self.when}' needs a number of characters as its value")
        elif not isinstance(self.value, str) or not self.value.strip():
            raise ValueError(f"'{self.when}' needs a text value")
        if (self.when == "variable_equals") != (self.variable is not None):
            raise ValueError("a variable is named by, and only by, 'variable_equals'")
        return self


class ModelPolicy(BaseModel):
    """Chooses the model of each turn instead of one fixed model (the agent's `model` is the
    default): by rules over the input, a variable or the role the agent plays in the node, or
    by a cheap classifier model that sorts the input into simple or complex."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["rules", "classifier"]
    rules: list[PolicyRule] = Field(default_factory=list, max_length=20)
    # classifier: asks this model "simple or complex?"; complex turns use `complex_model`,
    # simple ones the agent's model.
    classifier: ModelChoice | None = None
    complex_model: ModelChoice | None = None

    @model_validator(mode="after")
    def _complete(self) -> ModelPolicy:
        if self.kind == "rules" and not self.rules:
            raise ValueError("a rules policy needs at least one rule")
        if self.kind == "classifier" and (self.classifier is None or self.complex_model is None):
            raise ValueError("a classifier policy needs a classifier model and a complex model")
        return self

    def choices(self) -> list[ModelChoice]:
        found = [rule.use for rule in self.rules]
        return found + [c for c in (self.classifier, self.complex_model) if c is not None]


class AgentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: int = AGENT_CONFIG_SCHEMA_VERSION
    # Persona: rendered into the system message unless a raw system message is given.
    role: str = Field(default="", max_length=200)
    goal: str = Field(default="", max_length=2000)
    backstory: str = Field(default="", max_length=4000)
    system_message: str = Field(default="", max_length=MAX_SYSTEM_MESSAGE)
    # Model and parameters.
    model: ModelChoice
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1, le=200_000)
    seed: int | None = None
    response_schema: dict[str, Any] | None = None
    fallbacks: list[ModelChoice] = Field(default_factory=list, max_length=5)
    model_policy: ModelPolicy | None = None
    # Abilities.
    tools: list[str] = Field(default_factory=list, max_length=50)
    handoff_targets: list[str] = Field(default_factory=list, max_length=20)
    # Limits.
    context_window_tokens: int | None = Field(default=None, ge=256, le=2_000_000)
    max_tool_iterations: int = Field(default=5, ge=0, le=50)
    timeout_s: int = Field(default=120, ge=1, le=3600)
    # One model call's limits, overriding the provider's (see agents/llm/timeouts.py).
    call_timeout_s: int | None = Field(default=None, ge=1, le=3600)
    first_byte_timeout_s: int | None = Field(default=None, ge=1, le=3600)
    chunk_timeout_s: int | None = Field(default=None, ge=1, le=3600)
    requests_per_minute: int | None = Field(default=None, ge=1)
    tokens_per_minute: int | None = Field(default=None, ge=1)
    cost_budget_usd: float | None = Field(default=None, ge=0)
    # How long a call waits in line for a deployment's capacity (rate limits, cool-down, max
    # parallel) before falling back to the next model or failing with the reason.
    max_queue_wait_s: int = Field(default=120, ge=0, le=3600)
    # Stream every answer, even when nobody watches the run (otherwise a run nobody watches
    # makes plain calls, and its messages show when complete).
    stream: bool = False

    @field_validator("tools", "handoff_targets")
    @classmethod
    def _no_duplicates(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("lists each entry once")
        return value

    @field_validator("response_schema")
    @classmethod
    def _schema_is_an_object(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and value.get("type") != "object":
            raise ValueError('a structured-output schema must have "type": "object"')
        return value

    @model_validator(mode="after")
    def _has_instructions(self) -> AgentConfig:
        if not (self.system_message.strip() or self.role.strip()):
            raise ValueError("give the agent a role or a system message")
        return self

    def system_prompt(self, *, name: str) -> str:
        if self.system_message.strip():
            return self.system_message.strip()
        parts = [f"You are {name}, {self.role.strip()}."]
        if self.goal.strip():
            parts.append(f"Your goal: {self.goal.strip()}")
        if self.backstory.strip():
            parts.append(self.backstory.strip())
        return "\n\n".join(parts)


def _upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """Brings stored configs of older schema versions to the current one (none exist yet)."""
    version = data.get("schema_version", AGENT_CONFIG_SCHEMA_VERSION)
    if version > AGENT_CONFIG_SCHEMA_VERSION:
        raise ValueError(
            f"This agent was saved by a newer A2A Studio (schema {version}); upgrade to open it."
        )
    return {**data, "schema_version": AGENT_CONFIG_SCHEMA_VERSION}


def agent_config_load(data: dict[str, Any]) -> AgentConfig:
    return AgentConfig.model_validate(_upgrade(dict(data)))


def config_errors(error: ValidationError) -> dict[str, list[str]]:
    """Pydantic errors as {field: [messages]}, for forms and API answers."""
    errors: dict[str, list[str]] = {}
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "__all__"
        message = item["msg"].removeprefix("Value error, ")
        errors.setdefault(field, []).append(message)
    return errors
