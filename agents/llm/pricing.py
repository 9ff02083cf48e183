"""What a call cost, in USD as a Decimal, and how that was known.

A model's own prices on its provider (per 1M tokens, with a cached-input price) win, then the
provider's per-1k prices; models on the user's own hardware are free; otherwise LiteLLM's bundled
price map, by the model name the provider reports and then the configured one, read with plain
`json` from the installed package (found without importing litellm, which costs seconds and
hundreds of MB). Anything else is unknown — recorded as such, never passed off as free.
"""

from __future__ import annotations

import importlib.util
import json
import threading
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

from .kinds import KINDS
from .types import Deployment, Usage

PRICE_FILE: Final = "model_prices_and_context_window_backup.json"
ZERO: Final = Decimal(0)
THOUSAND: Final = Decimal(1000)
MILLION: Final = Decimal(1_000_000)
# Kinds that run on the user's own hardware (or nowhere): free unless prices are configured.
# An OpenAI-compatible endpoint is not among them: it may be a paid gateway serving gpt-4o-mini.
FREE_KINDS: Final = frozenset({"ollama", "demo", "cli"})
# Kinds whose model names are other vendors' (a gateway serving gpt-4o-mini or claude-3-5-haiku):
# a bare name is priced wherever the price list files it.
ANY_VENDOR_KINDS: Final = frozenset({"openai_compatible", "openrouter"})

PRICE_SOURCES: Final = ("configured", "price_list", "free", "unknown")

_lock = threading.Lock()
_prices: dict[str, Any] | None = None


def price_map_path() -> Path | None:
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = Path(location) / PRICE_FILE
        if path.is_file():
            return path
    return None


def price_map() -> dict[str, Any]:
    """LiteLLM's bundled price map, loaded once per process on first use."""
    global _prices
    if _prices is None:
        with _lock:
            if _prices is None:
                path = price_map_path()
                loaded: dict[str, Any] = {}
                if path is not None:
                    with path.open("rb") as f:
                        loaded = json.load(f)
                _prices = loaded
    return _prices


@lru_cache(maxsize=1024)
def model_prices(provider_kind: str, model: str) -> tuple[Decimal, Decimal, Decimal | None] | None:
    """(input, output, cached input or None) USD per token as LiteLLM prices the model, or
    None when unknown."""
    kind = KINDS.get(provider_kind)
    provider = kind.litellm_provider if kind is not None else provider_kind
    prices = price_map()
    entry = prices.get(f"{provider}/{model}")
    if not isinstance(entry, dict):
        entry = prices.get(model)
        # A bare name counts only if LiteLLM files it under the same provider (or the provider
        # serves other vendors' models under their own names).
        if not isinstance(entry, dict) or (
            entry.get("litellm_provider") != provider and provider_kind not in ANY_VENDOR_KINDS
        ):
            return None
    input_cost = entry.get("input_cost_per_token")
    output_cost = entry.get("output_cost_per_token")
    if input_cost is None and output_cost is None:
        return None
    cached_cost = entry.get("cache_read_input_token_cost")
    # str() first: Decimal(float) would carry the float's binary noise.
    return (
        Decimal(str(input_cost or 0)),
        Decimal(str(output_cost or 0)),
        None if cached_cost is None else Decimal(str(cached_cost)),
    )


def _cost(
    usage: Usage, input_rate: Decimal, output_rate: Decimal, cached: Decimal | None
) -> Decimal:
    """Prompt tokens read from the provider's cache cost `cached` each when it is known."""
    cached_tokens = min(usage.cached_tokens, usage.prompt_tokens) if cached is not None else 0
    return (
        (usage.prompt_tokens - cached_tokens) * input_rate
        + cached_tokens * (cached or ZERO)
        + usage.completion_tokens * output_rate
    )


def price_call(
    deployment: Deployment, usage: Usage, reported_model: str | None = None
) -> tuple[Decimal, str]:
    """(cost, how it was priced: one of PRICE_SOURCES). An unknown price costs 0 here and is
    recorded as unknown, so totals can say how much of them is unpriced."""
    own = deployment.model_prices
    if own is not None:
        per_million = _cost(usage, own.input, own.output, own.cached_input)
        return per_million / MILLION, "configured"
    if deployment.input_price_per_1k is not None or deployment.output_price_per_1k is not None:
        cost = (
            usage.prompt_tokens * (deployment.input_price_per_1k or ZERO)
            + usage.completion_tokens * (deployment.output_price_per_1k or ZERO)
        ) / THOUSAND
        return cost, "configured"
    if deployment.provider_kind in FREE_KINDS:
        return ZERO, "free"
    names = [reported_model] if reported_model and reported_model != deployment.model else []
    for name in [*names, deployment.model]:
        per_token = model_prices(deployment.provider_kind, name)
        if per_token is not None:
            return _cost(usage, *per_token), "price_list"
    return ZERO, "unknown"


def unit_prices(deployment: Deployment) -> tuple[Decimal, Decimal] | None:
    """(input, output) USD per token as `price_call` would charge them (cached input at the
    full input price: the worst case), or None when the price is not known."""
    input_cost, source = price_call(deployment, Usage(1_000_000, 0, 1_000_000))
    if source == "unknown":
        return None
    output_cost, _ = price_call(deployment, Usage(0, 1_000_000, 1_000_000))
    return input_cost / MILLION, output_cost / MILLION


def price_usage(deployment: Deployment, usage: Usage) -> tuple[Decimal, bool]:
    """(cost, estimated). `estimated` is True when the model's price is unknown."""
    cost, source = price_call(deployment, usage)
    return cost, source == "unknown"
