"""The gateway's value types: what to call (deployments, routes), what to ask, what came back."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

STRATEGIES: Final = ("priority", "round_robin", "least_busy", "lowest_latency")
_EMPTY: Final[Mapping[str, Any]] = {}


@dataclass(frozen=True, slots=True)
class ModelPrices:
    """One model's prices as its provider charges them, USD per 1M tokens.

    `cached_input` prices the prompt tokens the provider reports as read from its cache; None
    bills them as ordinary input.
    """

    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None


@dataclass(frozen=True, slots=True, eq=False)
class Deployment:
    """One callable endpoint of one model. `api_key` is never shown in its repr."""

    id: str
    provider_kind: str
    model: str
    base_url: str
    api_key: str | None = field(default=None, repr=False)
    api_version: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    input_price_per_1k: Decimal | None = None
    output_price_per_1k: Decimal | None = None
    # This model's own prices on its provider, USD per 1M tokens (`agents.prices`); they win
    # over the provider-wide per-1k prices above.
    model_prices: ModelPrices | None = None
    rpm: int | None = None
    tpm: int | None = None
    max_parallel: int | None = None
    # The call's limits (see timeouts.py): the whole call, its first byte, silence between
    # chunks; None leaves a limit to the total alone.
    timeout_s: float = 60.0
    first_byte_timeout_s: float | None = None
    chunk_timeout_s: float | None = None
    priority: int = 0


@dataclass(frozen=True, slots=True, eq=False)
class Route:
    """One model's interchangeable deployments, tried in `strategy` order."""

    deployments: Sequence[Deployment]
    strategy: str = "priority"
    # Identifies the route for round-robin counters, whatever object the caller rebuilt.
    key: tuple[str, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(
                f"unknown routing strategy {self.strategy!r}; expected one of "
                + ", ".join(STRATEGIES)
            )
        object.__setattr__(self, "key", tuple(d.id for d in self.deployments))


@dataclass(frozen=True, slots=True, eq=False)
class RoutePlan:
    """The primary route and the fallbacks tried in order when it fails."""

    primary: Route
    fallbacks: Sequence[Route] = ()


@dataclass(frozen=True, slots=True, eq=False)
class LLMRequest:
    """A chat request in OpenAI format; `metadata` is carried to the ledger."""

    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    response_format: dict[str, Any] | None = None
    stop: list[str] | None = None
    stream: bool = True
    # Nothing consumes this call's tokens as they come (nobody watches the run): the gateway
    # makes the plain call instead of streaming, unless a limit needs the stream to hold
    # (see `Gateway._plain_call_holds`). The answer is the same; it arrives all at once.
    quiet: bool = False
    metadata: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    # Of `prompt_tokens`, how many the provider read from its prompt cache (billed lower).
    cached_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Attempt:
    deployment_id: str
    outcome: str  # "completed" | "failed"
    error_kind: str | None
    latency_ms: float
    status: int | None


@dataclass(frozen=True, slots=True)
class LLMResult:
    text: str
    tool_calls: list[ToolCall]
    finish_reason: str | None
    usage: Usage
    cost: Decimal
    cost_estimated: bool
    latency_ms: float
    first_token_ms: float | None
    deployment_id: str
    model: str
    provider_kind: str
    attempts: list[Attempt]
    retries: int
    fallbacks: int
    call_id: str
    # How `cost` was priced: "configured", "price_list", "free" or "unknown" (then cost is 0
    # and means nothing: a price that is not known is not zero).
    price_source: str = "unknown"
    # Why the answer was cut short by a limit (a budget, a time limit), "" when it was not.
    stopped: str = ""


@dataclass(slots=True)
class LaneResult:
    """What a lane hands back to the gateway before pricing and bookkeeping."""

    text: str
    tool_calls: list[ToolCall]
    finish_reason: str | None
    usage: Usage | None
    first_token_ms: float | None
    status: int | None = 200
    cost: Decimal = Decimal(0)
    cost_estimated: bool = False
    model: str | None = None  # the model the provider says answered, when it says
    price_source: str = "unknown"
    stopped: str = ""  # see LLMResult.stopped
