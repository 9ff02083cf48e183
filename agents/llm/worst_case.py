"""The most a call can cost, known before it is made: what a budget reserves for it.

The prompt is the gateway's estimate with a quarter added (the estimate counts characters, a
tokenizer may count more); the answer is the request's `max_tokens`, else the model's own
output cap from the price list, else `DEFAULT_MAX_OUTPUT`. The same prices as the call's own
pricing are used, so the reservation and the charge agree on what a token costs.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from .pricing import price_call, price_map
from .types import Deployment, Usage

DEFAULT_MAX_OUTPUT: Final = 4096


def model_max_output(dep: Deployment) -> int | None:
    """The model's own output cap from the price list, if it has one."""
    entry = price_map().get(dep.model)
    cap = entry.get("max_output_tokens") if isinstance(entry, dict) else None
    return cap if isinstance(cap, int) and cap > 0 else None


def _max_output(dep: Deployment, max_tokens: int | None) -> int:
    if max_tokens:
        return max_tokens
    return model_max_output(dep) or DEFAULT_MAX_OUTPUT


def worst_case_cost(
    dep: Deployment, prompt_estimate: int, max_tokens: int | None
) -> Decimal | None:
    """The call's highest possible cost in USD, or None when its price is not known."""
    prompt = prompt_estimate + prompt_estimate // 4 + 16
    completion = _max_output(dep, max_tokens)
    cost, source = price_call(dep, Usage(prompt, completion, prompt + completion))
    return None if source == "unknown" else cost
