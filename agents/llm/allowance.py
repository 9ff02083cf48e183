"""What a call may still spend — tokens, dollars, time — enforced before and during the call.

A run's token and cost budgets, an agent's cost budget per run and a run's time limit each
give the calls made under them an `Allowance`. The gateway asks it before every attempt
(`Allowance.grant`) and the lanes meter the answer against the grant as it streams.

Rules where a choice had to be made:

* Before a call its worst case is checked: the prompt (the gateway's estimate with a quarter
  added) plus the most it may answer, at the deployment's price. When the prompt alone does
  not fit what is left the call is refused (`BudgetExceeded`); otherwise the answer is capped
  (`max_tokens`) to what is left, and the worst case is reserved until the call ends, so calls
  running side by side (parallel branches) cannot each take the same headroom.
* While an answer streams, its tokens (counted from its characters, as the gateway estimates
  them) are metered after each chunk; the chunk that reaches what is left stops the call.
  The overshoot is therefore at most one chunk. The partial answer is kept, its usage
  estimated (the provider's own count comes only at the end), and the result is marked
  `stopped`.
* A time limit stops a streamed call at the deadline with its partial answer kept and marked;
  a call that has nothing to keep (not streamed, or no text yet) is cancelled and raises a
  `timeout` error whose `limit` is "deadline" (never retried, never sent to a fallback).
* A cost limit over a call whose price is not known refuses it, saying so, as a workspace
  budget with a hard limit does (`agents.budgets`): a price that is not known cannot be
  bounded, and counting it as zero would let the limit be passed without notice. Token and
  time limits need no price and still apply.

Pure Python, no Django: the engine builds allowances, the gateway and the lanes enforce them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal
from typing import Final

from .errors import BudgetExceeded, LLMError
from .pricing import unit_prices
from .types import Deployment, Usage
from .worst_case import DEFAULT_MAX_OUTPUT, model_max_output

CHARS_PER_TOKEN: Final = 4


def prompt_worst_case(prompt_estimate: int) -> int:
    """The prompt's tokens at worst: a tokenizer may count a quarter more than the estimate."""
    return prompt_estimate + prompt_estimate // 4 + 16


def _money(amount: Decimal) -> str:
    text = f"{amount:,.6f}".rstrip("0").rstrip(".")
    return f"${text}"


@dataclass(eq=False)
class SpendLimit:
    """One limit over a set of calls (a run's budget, an agent's budget in a run).

    `tokens` / `cost`: what is left (None: not limited on that measure). `label` names it in
    reasons ("The run's token budget of 120"); `key` and `pause` are what a refusal carries to
    the engine (see `SpendStop`).
    """

    label: str
    tokens: int | None = None
    cost: Decimal | None = None
    key: str = ""
    pause: bool = False
    reserved_tokens: int = 0
    reserved_cost: Decimal = Decimal(0)

    def tokens_left(self) -> int | None:
        return None if self.tokens is None else self.tokens - self.reserved_tokens

    def cost_left(self) -> Decimal | None:
        return None if self.cost is None else self.cost - self.reserved_cost

    def refuse(self, message: str) -> BudgetExceeded:
        return BudgetExceeded(f"{self.label}: {message}", key=self.key, pause=self.pause)


@dataclass(eq=False)
class Grant:
    """What one attempt was allowed: its answer's cap and what it reserved."""

    max_tokens: int | None  # None: the request's own (nothing capped it)
    capped: bool
    stop_after_tokens: int | None  # meter: stop the stream once the answer reaches this
    stop_label: str
    deadline: float | None  # loop time
    deadline_reason: str = ""
    reserved: list[tuple[SpendLimit, int, Decimal]] = field(default_factory=list)
    settled: bool = False

    def meter_chars(self) -> int | None:
        """The answer's length, in characters, at which the stream is stopped."""
        if self.stop_after_tokens is None:
            return None
        return self.stop_after_tokens * CHARS_PER_TOKEN

    def settle(self, usage: Usage | None, cost: Decimal) -> None:
        """Replaces the reservations by what the call used (usage None: it used nothing known
        — a refused or failed request; its prompt is not counted)."""
        if self.settled:
            return
        self.settled = True
        for limit, tokens, reserved_cost in self.reserved:
            limit.reserved_tokens -= tokens
            limit.reserved_cost -= reserved_cost
            if usage is not None and limit.tokens is not None:
                limit.tokens -= usage.total_tokens
            if limit.cost is not None:
                limit.cost -= cost


@dataclass(eq=False)
class Allowance:
    """The limits over one call; several callers may share a `SpendLimit` (a run's budget)."""

    limits: tuple[SpendLimit, ...] = ()
    deadline: float | None = None  # loop time (asyncio's clock)
    deadline_reason: str = "The run's time limit was reached"

    def with_limits(self, *extra: SpendLimit) -> Allowance:
        return Allowance((*self.limits, *extra), self.deadline, self.deadline_reason)

    def time_error(self, deployment_id: str | None = None) -> LLMError:
        # Said as the limit's own reason: it is the run's limit, not the provider's slowness.
        error = LLMError(
            "timeout", self.deadline_reason, deployment_id=deployment_id, transient=False
        )
        error.limit = "deadline"
        return error

    def grant(
        self, dep: Deployment, prompt_estimate: int, max_tokens: int | None, now: float
    ) -> Grant:
        """Checks the call's worst case against what is left and reserves it; raises
        BudgetExceeded (or the time limit's `timeout`) when the call may not be made."""
        if self.deadline is not None and now >= self.deadline:
            raise self.time_error(dep.id)
        prompt = prompt_worst_case(prompt_estimate)
        answer_cap = max_tokens or model_max_output(dep) or DEFAULT_MAX_OUTPUT
        cap: int | None = None
        label = ""
        prices = None
        priced = False
        for limit in self.limits:
            left = limit.tokens_left()
            if left is not None:
                if prompt >= left:
                    raise limit.refuse(
                        f"{max(left, 0)} tokens are left and the next call's prompt needs "
                        f"about {prompt}, so it was not made."
                    )
                if cap is None or left - prompt < cap:
                    cap, label = left - prompt, limit.label
            left_cost = limit.cost_left()
            if left_cost is None:
                continue
            if not priced:
                prices, priced = unit_prices(dep), True
            if prices is None:
                raise limit.refuse(
                    f"the price of {dep.model} is not known, so the call was not made: set "
                    "the model's price on its provider, or remove the cost limit."
                )
            input_price, output_price = prices
            prompt_cost = prompt * input_price
            if prompt_cost >= left_cost and (prompt_cost > 0 or left_cost <= 0):
                raise limit.refuse(
                    f"{_money(max(left_cost, Decimal(0)))} is left and the next call's "
                    f"prompt costs about {_money(prompt_cost)}, so it was not made."
                )
            if output_price > 0:
                affordable = int(
                    ((left_cost - prompt_cost) / output_price).to_integral_value(ROUND_FLOOR)
                )
                if cap is None or affordable < cap:
                    cap, label = affordable, limit.label
        capped = cap is not None and cap < answer_cap
        granted = max(1, cap) if capped and cap is not None else answer_cap
        grant = Grant(
            max_tokens=granted if capped else max_tokens,
            capped=capped,
            stop_after_tokens=max(1, cap) if cap is not None else None,
            stop_label=label,
            deadline=self.deadline,
            deadline_reason=self.deadline_reason,
        )
        for limit in self.limits:
            if limit.tokens is None and limit.cost is None:
                continue
            tokens = prompt + granted
            cost = Decimal(0)
            if limit.cost is not None and prices is not None:
                cost = prompt * prices[0] + granted * prices[1]
            limit.reserved_tokens += tokens
            limit.reserved_cost += cost
            grant.reserved.append((limit, tokens, cost))
        return grant
