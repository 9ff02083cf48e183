"""Per-deployment health kept in process memory: circuit breaker, 429 cooldown, RPM/TPM limits,
in-flight counts and a latency EWMA. Plain data touched from event loops; no locks needed.

Breaker: closed -> open after `threshold` consecutive failures (transient ones and auth) -> after
`cooldown_s` half-open, letting one trial call through -> closed on success, open on failure.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Final

from .errors import LLMError
from .types import Deployment

logger = logging.getLogger(__name__)

CLOSED: Final = "closed"
OPEN: Final = "open"
HALF_OPEN: Final = "half_open"
WINDOW_S: Final = 60.0
EWMA_ALPHA: Final = 0.3
# How many of a deployment's last answers tell how long its answers take at worst.
RECENT_ANSWERS: Final = 16
# Failures that say the deployment (not the request) is in trouble.
BREAKER_KINDS: Final = frozenset(
    {"rate_limit", "timeout", "provider_error", "unreachable", "malformed_response", "auth"}
)

BreakerListener = Callable[[str, str], object]


class DeploymentState:
    __slots__ = (
        "breaker",
        "failures",
        "opened_at",
        "trial_in_flight",
        "cooldown_until",
        "inflight",
        "ewma_ms",
        "requests",
        "tokens",
        "tokens_sum",
        "recent_ms",
    )

    def __init__(self) -> None:
        self.breaker = CLOSED
        self.failures = 0
        self.opened_at = 0.0
        self.trial_in_flight = False
        self.cooldown_until = 0.0
        self.inflight = 0
        self.ewma_ms: float | None = None
        self.requests: deque[float] = deque()
        self.tokens: deque[tuple[float, int]] = deque()
        self.tokens_sum = 0
        # The latencies of the last few answers, whole (see Gateway._plain_call_holds).
        self.recent_ms: deque[float] = deque(maxlen=RECENT_ANSWERS)


class Resilience:
    """The health of every deployment seen by this process (or this gateway)."""

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        threshold: int = 5,
        cooldown_s: float = 30.0,
        listener: BreakerListener | None = None,
        window_s: float = WINDOW_S,
    ) -> None:
        self.clock = clock
        # The length of a "minute" of rpm/tpm (shortened only by tests and benchmarks).
        self.window_s = window_s
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self.listener = listener
        self._states: dict[str, DeploymentState] = {}

    def state(self, deployment_id: str) -> DeploymentState:
        state = self._states.get(deployment_id)
        if state is None:
            state = self._states[deployment_id] = DeploymentState()
        return state

    def breaker_state(self, deployment_id: str) -> str:
        state = self._states.get(deployment_id)
        if state is None:
            return CLOSED
        if state.breaker == OPEN and self.clock() >= state.opened_at + self.cooldown_s:
            return HALF_OPEN
        return state.breaker

    def _transition(self, deployment_id: str, state: DeploymentState, new: str) -> None:
        if state.breaker == new:
            return
        state.breaker = new
        if self.listener is not None:
            try:
                self.listener(deployment_id, new)
            except Exception:  # noqa: BLE001 - a listener must not break calls
                logger.warning("breaker listener failed for deployment %s", deployment_id)

    # Availability

    def wait_needed(self, dep: Deployment, tokens: int, now: float) -> float:
        """0 if the deployment can take a call now, else seconds until it may (inf: not soon)."""
        state = self._states.get(dep.id)
        if state is None:
            return 0.0
        wait = 0.0
        if state.breaker != CLOSED:
            if state.breaker == OPEN:
                reopen = state.opened_at + self.cooldown_s
                if now < reopen:
                    return reopen - now
            elif state.trial_in_flight:
                return self.cooldown_s
        if state.cooldown_until > now:
            wait = state.cooldown_until - now
        if dep.max_parallel is not None and state.inflight >= dep.max_parallel:
            wait = max(wait, 0.05)
        if dep.rpm is not None:
            requests = state.requests
            horizon = now - self.window_s
            while requests and requests[0] <= horizon:
                requests.popleft()
            if len(requests) >= dep.rpm:
                wait = max(wait, requests[len(requests) - dep.rpm] + self.window_s - now)
        if dep.tpm is not None:
            self._prune_tokens(state, now, self.window_s)
            if state.tokens_sum + tokens > dep.tpm and state.tokens:
                need = state.tokens_sum + tokens - dep.tpm
                freed = 0
                until = now
                for at, count in state.tokens:
                    freed += count
                    until = at + self.window_s
                    if freed >= need:
                        break
                wait = max(wait, until - now if freed >= need else self.window_s)
        return wait

    @staticmethod
    def _prune_tokens(state: DeploymentState, now: float, window_s: float = WINDOW_S) -> None:
        horizon = now - window_s
        tokens = state.tokens
        while tokens and tokens[0][0] <= horizon:
            state.tokens_sum -= tokens.popleft()[1]

    # Bookkeeping around one call

    def begin(self, dep: Deployment, tokens: int, now: float) -> DeploymentState:
        state = self.state(dep.id)
        if state.breaker == OPEN:
            # Cooldown over (checked by wait_needed): this call is the trial.
            self._transition(dep.id, state, HALF_OPEN)
        if state.breaker == HALF_OPEN:
            state.trial_in_flight = True
        state.inflight += 1
        if dep.rpm is not None:
            state.requests.append(now)
        if dep.tpm is not None:
            state.tokens.append((now, tokens))
            state.tokens_sum += tokens
        return state

    def succeeded(
        self, dep: Deployment, state: DeploymentState, latency_ms: float, extra_tokens: int
    ) -> None:
        state.inflight -= 1
        state.failures = 0
        state.trial_in_flight = False
        ewma = state.ewma_ms
        state.ewma_ms = latency_ms if ewma is None else ewma + EWMA_ALPHA * (latency_ms - ewma)
        state.recent_ms.append(latency_ms)
        if extra_tokens and dep.tpm is not None:
            # The estimate reserved at the start, corrected by what the provider counted.
            state.tokens.append((self.clock(), extra_tokens))
            state.tokens_sum += extra_tokens
        if state.breaker != CLOSED:
            self._transition(dep.id, state, CLOSED)

    def failed(self, dep: Deployment, state: DeploymentState, error: LLMError) -> None:
        state.inflight -= 1
        state.trial_in_flight = False
        now = self.clock()
        if error.kind == "rate_limit":
            cooldown = error.retry_after if error.retry_after is not None else 1.0
            state.cooldown_until = max(state.cooldown_until, now + cooldown)
        if error.kind not in BREAKER_KINDS:
            return
        state.failures += 1
        if state.breaker == HALF_OPEN or (
            state.breaker == CLOSED and state.failures >= self.threshold
        ):
            state.opened_at = now
            self._transition(dep.id, state, OPEN)

    def released(self, state: DeploymentState) -> None:
        """A call that ended without a verdict on the deployment (cancelled)."""
        state.inflight -= 1
        state.trial_in_flight = False

    def inflight(self, deployment_id: str) -> int:
        state = self._states.get(deployment_id)
        return 0 if state is None else state.inflight

    def slowest_recent_ms(self, deployment_id: str) -> float | None:
        """The slowest of the deployment's last few answers here; None before its first."""
        state = self._states.get(deployment_id)
        return None if state is None or not state.recent_ms else max(state.recent_ms)

    def latency(self, deployment_id: str) -> float:
        state = self._states.get(deployment_id)
        return 0.0 if state is None or state.ewma_ms is None else state.ewma_ms
