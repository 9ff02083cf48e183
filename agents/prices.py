"""Prices of single models on a provider, USD per 1M tokens: reading them and setting them.

Any provider can carry them, for the models its account is billed at its own rates (a gateway
reselling gpt-4o-mini, a negotiated discount, a local model someone wants costed). They win over
the provider's per-1k prices and the public price list (see `agents.llm.pricing.price_call`).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction

from agents.llm.types import ModelPrices
from agents.models import Provider

MAX_PRICE_PER_MILLION = Decimal(100_000)


class PriceError(ValueError):
    """A price that cannot be saved, with a message for the person who typed it."""


def model_prices_of(provider: Provider | None, model: str) -> ModelPrices | None:
    """The prices set for `model` on `provider`, or None (then the usual order applies)."""
    if provider is None:
        return None
    entry = (provider.model_prices or {}).get(model)
    if not isinstance(entry, Mapping):
        return None
    try:
        cached = entry.get("cached_input")
        return ModelPrices(
            input=Decimal(str(entry["input"])),
            output=Decimal(str(entry["output"])),
            cached_input=None if cached in (None, "") else Decimal(str(cached)),
        )
    except (KeyError, InvalidOperation, TypeError):
        return None  # a hand-edited entry that does not parse prices nothing


def _price(label: str, raw: Any, *, required: bool) -> Decimal | None:
    text = "" if raw is None else str(raw).strip().lstrip("$")
    if not text:
        if required:
            raise PriceError(f"Enter the {label} price per 1M tokens (0 if it is free).")
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise PriceError(f"The {label} price must be a number of dollars, like 0.15.") from None
    if not value.is_finite() or value < 0:
        raise PriceError(f"The {label} price must be zero or more.")
    if value > MAX_PRICE_PER_MILLION:
        raise PriceError(f"The {label} price is per 1M tokens; {value} looks too high.")
    return value


def provider_model_price_set(
    *, provider: Provider, model: str, input: Any, output: Any, cached_input: Any = None
) -> ModelPrices:
    """Saves `model`'s prices on `provider` (replacing any), after checking each one."""
    name = (model or "").strip()
    if not name or len(name) > 200:
        raise PriceError("Enter the model's name as the provider knows it (up to 200 characters).")
    prices = ModelPrices(
        input=_price("input", input, required=True) or Decimal(0),
        output=_price("output", output, required=True) or Decimal(0),
        cached_input=_price("cached input", cached_input, required=False),
    )
    entry = {"input": str(prices.input), "output": str(prices.output)}
    if prices.cached_input is not None:
        entry["cached_input"] = str(prices.cached_input)
    with transaction.atomic():
        locked = Provider.objects.select_for_update().get(pk=provider.pk)
        locked.model_prices = {**(locked.model_prices or {}), name: entry}
        locked.save(update_fields=["model_prices", "updated_at"])
    provider.model_prices = locked.model_prices
    return prices


def provider_model_price_remove(*, provider: Provider, model: str) -> bool:
    with transaction.atomic():
        locked = Provider.objects.select_for_update().get(pk=provider.pk)
        prices = dict(locked.model_prices or {})
        removed = prices.pop(model, None) is not None
        if removed:
            locked.model_prices = prices
            locked.save(update_fields=["model_prices", "updated_at"])
    provider.model_prices = prices
    return removed


def model_price_rows(provider: Provider) -> list[dict[str, Any]]:
    """The provider's model prices for its page, by model name."""
    rows = []
    for model in sorted(provider.model_prices or {}):
        prices = model_prices_of(provider, model)
        if prices is not None:
            rows.append({"model": model, "prices": prices})
    return rows
