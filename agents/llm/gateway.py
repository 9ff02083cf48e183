"""The gateway: routing, retries, fallbacks, breakers, limits and the ledger around the lanes.

For the primary route, then each fallback: pick a deployment in the route's strategy order,
skipping open breakers, 429 cooldowns and deployments over their limits; call it; on a transient
error retry within the route (another deployment if there is one) with exponential backoff and
jitter that never undercuts Retry-After; on a permanent error move to the next route, except
`context_length` and `bad_request`, which no other deployment will fix and are raised at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import logging
import random
import time
import uuid
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import aiohttp

from a2a_site.tracing import model_call_record

from .allowance import Allowance, Grant
from .capacity import LINE_POLL_S, LocalLines, RedisCapacity, Waiting, inflight_ttl
from .errors import LLMError, make_error
from .kinds import Lane, provider_kind
from .lean import DeltaCallback, call_lean, estimate_tokens, new_session, prompt_chars
from .ledger import LedgerOutcome, LedgerSink, LedgerStart
from .middleware import Middleware, MiddlewareSource
from .pricing import ZERO, price_call
from .resilience import BreakerListener, DeploymentState, Resilience
from .timeouts import CallClock, watched
from .types import Attempt, Deployment, LaneResult, LLMRequest, LLMResult, Route, RoutePlan, Usage
from .worst_case import worst_case_cost

logger = logging.getLogger(__name__)

# A budget's refusal too: another route would spend from the same budget (or dodge it).
RAISE_AT_ONCE: Final = frozenset({"context_length", "bad_request", "cancelled", "budget"})
# How long a call may queue for a deployment that is rate-limited or at max_parallel before the
# gateway moves on to the fallback instead.
DEFAULT_MAX_QUEUE_WAIT_S: Final = 2.0
_MAX_QUEUE_ROUNDS: Final = 1000

Sleep = Callable[[float], Awaitable[Any]]


class Gateway:
    """Talks to model providers. One per event loop (see `gateway_for_loop`)."""

    def __init__(
        self,
        *,
        ledger: LedgerSink | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        max_retries: int = 2,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 8.0,
        breaker_threshold: int = 5,
        breaker_cooldown_s: float = 30.0,
        breaker_listener: BreakerListener | None = None,
        coalesce_ms: float = 50,
        rng: random.Random | None = None,
        max_queue_wait_s: float = DEFAULT_MAX_QUEUE_WAIT_S,
        resilience: Resilience | None = None,
        capacity: RedisCapacity | None = None,
        rate_window_s: float = 60.0,
        middleware: MiddlewareSource | None = None,
    ) -> None:
        self.ledger = ledger
        # A workspace's hooks around every call it makes (see middleware.py).
        self.middleware = middleware
        self.clock = clock
        self.sleep = sleep
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.coalesce_s = coalesce_ms / 1000
        self.rng = rng or random.Random()
        self.max_queue_wait_s = max_queue_wait_s
        self.resilience = resilience or Resilience(
            clock=clock,
            threshold=breaker_threshold,
            cooldown_s=breaker_cooldown_s,
            listener=breaker_listener,
            window_s=rate_window_s,
        )
        # Limits shared with every other process (distributed mode); the process's own
        # `resilience` keeps its bookkeeping all along and decides whenever Redis cannot.
        self.capacity = capacity
        self._session: aiohttp.ClientSession | None = None
        self._litellm_client: tuple[aiohttp.ClientSession, Any] | None = None
        self._round_robin: dict[tuple[str, ...], int] = {}

    # Public API

    def breaker_state(self, deployment_id: str) -> str:
        return self.resilience.breaker_state(deployment_id)

    async def aclose(self) -> None:
        session, self._session = self._session, None
        self._litellm_client = None
        if session is not None and not session.closed:
            await session.close()

    async def complete(
        self,
        request: LLMRequest,
        plan: RoutePlan,
        *,
        on_delta: DeltaCallback | None = None,
        cancel: asyncio.Event | None = None,
        allowance: Allowance | None = None,
        waiting: Waiting | None = None,
    ) -> LLMResult:
        """`allowance`: the limits over this call (budgets, a time limit; see allowance.py).
        `waiting`: how long (and in which line) the call waits for a deployment's capacity;
        without it, up to `max_queue_wait_s`, out of line."""
        started = time.perf_counter()
        if cancel is not None and cancel.is_set():
            raise make_error("cancelled")
        hooks = await self._hooks(request)
        if hooks is not None:
            request = hooks.before(request)
            if hooks.sees_whole_output:
                on_delta = None
        attempts: list[Attempt] = []
        guarded = None if on_delta is None else _guarded_delta(on_delta)
        try:
            result = await self._run(
                request, plan, guarded, cancel, started, attempts, allowance, waiting
            )
        except LLMError as error:
            error.attempts = attempts
            raise
        return result if hooks is None else hooks.after(result)

    async def _hooks(self, request: LLMRequest) -> Middleware | None:
        """The calling workspace's middleware; a source that fails refuses the call rather
        than letting it through unredacted."""
        workspace_id = request.metadata.get("workspace_id")
        if self.middleware is None or not workspace_id:
            return None
        try:
            hooks = await self.middleware(str(workspace_id))
        except Exception:
            logger.exception("gateway middleware could not be read")
            raise LLMError(
                "blocked", "The workspace's gateway middleware could not be read; try again."
            ) from None
        return hooks if hooks is not None and hooks.hooks else None

    async def _run(
        self,
        request: LLMRequest,
        plan: RoutePlan,
        on_delta: DeltaCallback | None,
        cancel: asyncio.Event | None,
        started: float,
        attempts: list[Attempt],
        allowance: Allowance | None = None,
        waiting: Waiting | None = None,
    ) -> LLMResult:
        prompt_estimate = estimate_tokens(prompt_chars(request.messages))
        retries = 0
        last_error: LLMError | None = None
        routes = (plan.primary, *plan.fallbacks) if plan.fallbacks else (plan.primary,)
        for route_index, route in enumerate(routes):
            retries_here = 0
            avoid: str | None = None
            waited = 0.0
            rounds = 0
            line = _Line(self, route, waiting) if waiting is not None else None
            try:
                while True:
                    if line is not None and await line.behind_higher():
                        dep, wait, place = None, LINE_POLL_S, None
                    else:
                        dep, wait, place = await self._pick(route, prompt_estimate, avoid)
                    if dep is None:
                        rounds += 1
                        if line is not None:
                            if not await line.wait(wait, cancel, allowance):
                                last_error = line.gave_up()
                                break
                            continue
                        if waited + wait > self.max_queue_wait_s or rounds > _MAX_QUEUE_ROUNDS:
                            break
                        _check_deadline(allowance)
                        waited += wait
                        await self._sleep(wait, cancel)
                        continue
                    if line is not None:
                        await line.leave()
                    try:
                        lane, call_id = await self._attempt(
                            dep,
                            request,
                            len(attempts) + 1,
                            prompt_estimate,
                            attempts,
                            on_delta,
                            cancel,
                            allowance,
                            place,
                        )
                    except LLMError as error:
                        last_error = error
                        if error.kind in RAISE_AT_ONCE or error.limit == "deadline":
                            raise
                        if line is not None and error.kind == "rate_limit":
                            # The provider's own 429: its cool-down is recorded, and the call
                            # waits for it in line (up to its max wait) like for any limit.
                            continue
                        if not error.transient or retries_here >= self.max_retries:
                            break
                        delay = self._backoff(retries_here)
                        if error.retry_after is not None:
                            if error.retry_after > self.backoff_max_s:
                                break
                            delay = max(delay, error.retry_after)
                        retries_here += 1
                        retries += 1
                        avoid = dep.id
                        await self._sleep(delay, cancel)
                        continue
                    return self._result(
                        request, dep, lane, call_id, attempts, retries, route_index, started
                    )
            finally:
                if line is not None:
                    await line.leave()
        if last_error is None:
            last_error = make_error(
                "no_deployment",
                "every deployment is cooling down, over its limits or has an open breaker",
            )
        raise last_error

    # Internals

    async def _pick(
        self, route: Route, tokens: int, avoid: str | None
    ) -> tuple[Deployment | None, float, _Place | None]:
        """The first deployment that can take the call now (with its place in the shared
        limits, if taken there), or (None, shortest wait, None). The deployment just tried
        (`avoid`) comes last."""
        deployments = route.deployments
        if len(deployments) == 1:
            ordered: list[Deployment] = [deployments[0]]
        else:
            ordered = self._order(route)
            if avoid is not None:
                ordered.sort(key=lambda dep: dep.id == avoid)
        best_wait = float("inf")
        for dep in ordered:
            wait, place = await self._admit(dep, tokens)
            if place is not None:
                return dep, 0.0, place
            best_wait = min(best_wait, wait)
        return None, best_wait, None

    async def _admit(self, dep: Deployment, tokens: int) -> tuple[float, _Place | None]:
        """(0, its place) when `dep` takes the call now, else (seconds to wait, None).

        The place is taken in the same step as the check (in Redis by its script, here before
        the next await): calls checking side by side cannot all pass one last free place."""
        capacity = self.capacity
        slot: str | None = None
        if capacity is not None:
            slot = uuid.uuid4().hex
            wait = await capacity.acquire(
                dep.id,
                slot,
                tokens=tokens,
                rpm=dep.rpm,
                tpm=dep.tpm,
                max_parallel=dep.max_parallel,
                inflight_ttl_s=inflight_ttl(dep),
            )
            if wait is None:
                slot = None  # Redis cannot answer: this process's own limits decide
            elif wait > 0:
                return wait, None
        resilience = self.resilience
        if slot is None:
            wait = resilience.wait_needed(dep, tokens, self.clock())
            if wait > 0:
                return wait, None
        # This process's bookkeeping (kept even when Redis decides, for when it cannot).
        return 0.0, _Place(slot, resilience.begin(dep, tokens, self.clock()))

    async def _give_back(self, dep: Deployment, place: _Place | None) -> None:
        """A place taken for a call that was not made."""
        if place is not None:
            self.resilience.released(place.state)
            await self._release(dep, place.slot, "released")

    async def _release(
        self,
        dep: Deployment,
        slot: str | None,
        outcome: str,
        error: LLMError | None = None,
        extra_tokens: int = 0,
    ) -> None:
        """Gives a shared place back (never fails the call: the place expires by itself)."""
        if slot is None or self.capacity is None:
            return
        with contextlib.suppress(Exception):
            await asyncio.shield(
                self.capacity.end(dep.id, slot, outcome, error=error, extra_tokens=extra_tokens)
            )

    def _order(self, route: Route) -> list[Deployment]:
        deployments = list(route.deployments)
        strategy = route.strategy
        if strategy == "priority":
            deployments.sort(key=_priority)
        elif strategy == "round_robin":
            n = self._round_robin.get(route.key, 0)
            self._round_robin[route.key] = n + 1
            shift = n % len(deployments)
            deployments = deployments[shift:] + deployments[:shift]
        elif strategy == "least_busy":
            inflight = self.resilience.inflight
            deployments.sort(key=lambda d: (inflight(d.id), d.priority))
        else:  # lowest_latency; unmeasured deployments (0) get tried first
            latency = self.resilience.latency
            deployments.sort(key=lambda d: (latency(d.id), d.priority))
        return deployments

    def _backoff(self, retry: int) -> float:
        ceiling = min(self.backoff_max_s, self.backoff_base_s * (2**retry))
        # "Equal jitter": at least half the exponential step, never more than the cap.
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)

    async def _sleep(self, seconds: float, cancel: asyncio.Event | None) -> None:
        if cancel is None:
            await self.sleep(seconds)
            return
        if cancel.is_set():
            raise make_error("cancelled")
        await _race(self.sleep(seconds), cancel)

    def _session_for_loop(self) -> aiohttp.ClientSession:
        session = self._session
        if session is None or session.closed:
            session = self._session = new_session()
        return session

    def _full_client(self) -> Any:
        """litellm's HTTP client over this loop's session, so the full lane's connections pass
        the same resolver as the lean lane's."""
        session = self._session_for_loop()
        if self._litellm_client is None or self._litellm_client[0] is not session:
            from .full import litellm_http_client

            self._litellm_client = (session, litellm_http_client(session))
        return self._litellm_client[1]

    async def _attempt(
        self,
        dep: Deployment,
        request: LLMRequest,
        number: int,
        prompt_estimate: int,
        attempts: list[Attempt],
        on_delta: DeltaCallback | None,
        cancel: asyncio.Event | None,
        allowance: Allowance | None = None,
        place: _Place | None = None,
    ) -> tuple[LaneResult, str]:
        grant: Grant | None = None
        if allowance is not None:
            # Raises before any request (and any ledger row) when the call may not be made.
            try:
                grant = allowance.grant(
                    dep, prompt_estimate, request.max_tokens, asyncio.get_running_loop().time()
                )
            except BaseException:
                await self._give_back(dep, place)
                raise
            if grant.capped:
                request = dataclasses.replace(request, max_tokens=grant.max_tokens)
        if request.quiet and request.stream and self._plain_call_holds(grant, dep):
            request = dataclasses.replace(request, stream=False)
        try:
            result, call_id = await self._attempt_granted(
                dep, request, number, prompt_estimate, attempts, on_delta, cancel, grant, place
            )
        except BaseException:
            if grant is not None:
                grant.settle(None, ZERO)
            raise
        if grant is not None:
            grant.settle(result.usage, result.cost)
            if not result.stopped and grant.capped and result.finish_reason == "length":
                result.stopped = f"{grant.stop_label} was reached: the answer was cut short."
        return result, call_id

    def _plain_call_holds(self, grant: Grant | None, dep: Deployment) -> bool:
        """Whether a quiet call may be made plain (not streamed) and still be bound by every
        limit as it would be streamed.

        The stream is what lets a meter stop an answer at a budget within one chunk, and a
        run's deadline keep the text that came before it: a call under a meter, or one whose
        deadline may come before its own total limit, streams. And a plain answer's first byte
        comes with its last, so the first-byte limit then bounds the whole answer: plain only
        once this deployment's recent answers all came within half of that limit (its first
        calls here stream, and tell).
        """
        if grant is not None:
            if grant.stop_after_tokens is not None:
                return False
            if grant.deadline is not None:
                left = grant.deadline - asyncio.get_running_loop().time()
                if left <= dep.timeout_s:
                    return False
        first_byte = dep.first_byte_timeout_s
        if first_byte is None:
            return True
        slowest = self.resilience.slowest_recent_ms(dep.id)
        return slowest is not None and slowest * 2 <= first_byte * 1000

    async def _attempt_granted(
        self,
        dep: Deployment,
        request: LLMRequest,
        number: int,
        prompt_estimate: int,
        attempts: list[Attempt],
        on_delta: DeltaCallback | None,
        cancel: asyncio.Event | None,
        grant: Grant | None,
        place: _Place | None = None,
    ) -> tuple[LaneResult, str]:
        call_id = str(uuid.uuid4())
        ledger = self.ledger
        if ledger is not None:
            # Raises before any request is made: no provider call without a row.
            try:
                await self._ledger_start(ledger, call_id, dep, number, prompt_estimate, request)
            except BaseException:
                await self._give_back(dep, place)
                raise
        if place is None:  # a caller of its own (tests): the place is taken here
            place = _Place(None, self.resilience.begin(dep, prompt_estimate, self.clock()))
        return await self._call(
            call_id, dep, request, prompt_estimate, attempts, on_delta, cancel, grant, place
        )

    async def _ledger_start(
        self,
        ledger: LedgerSink,
        call_id: str,
        dep: Deployment,
        number: int,
        prompt_estimate: int,
        request: LLMRequest,
    ) -> None:
        await ledger.call_started(
            LedgerStart(
                call_id=call_id,
                deployment_id=dep.id,
                provider_kind=dep.provider_kind,
                model=dep.model,
                attempt=number,
                prompt_tokens_estimate=prompt_estimate,
                metadata=request.metadata,
                started_at=datetime.now(UTC),
                worst_case_cost=worst_case_cost(dep, prompt_estimate, request.max_tokens),
            )
        )

    async def _call(
        self,
        call_id: str,
        dep: Deployment,
        request: LLMRequest,
        prompt_estimate: int,
        attempts: list[Attempt],
        on_delta: DeltaCallback | None,
        cancel: asyncio.Event | None,
        grant: Grant | None,
        place: _Place,
    ) -> tuple[LaneResult, str]:
        slot = place.slot
        lane = provider_kind(dep.provider_kind).lane
        clock = CallClock(dep, asyncio.get_running_loop().time, grant)
        if lane is Lane.LEAN:
            call = call_lean(
                self._session_for_loop(), dep, request, on_delta, self.coalesce_s, clock
            )
        elif lane is Lane.FULL:
            from .full import call_full

            call = call_full(dep, request, on_delta, self.coalesce_s, self._full_client(), clock)
        else:
            await self._give_back(dep, place)
            raise make_error(
                "bad_request",
                f"provider kind {dep.provider_kind!r} is not served by the gateway",
                deployment_id=dep.id,
            )
        resilience = self.resilience
        state = place.state
        t0 = time.perf_counter()
        try:
            call = watched(call, clock, dep)
            result = await call if cancel is None else await _race(call, cancel)
        except LLMError as error:
            latency_ms = (time.perf_counter() - t0) * 1000
            error.scrubbed(dep.api_key)
            if error.deployment_id is None:
                error.deployment_id = dep.id
            if error.kind == "cancelled" or error.limit == "deadline":
                resilience.released(state)
                await self._release(dep, slot, "released")
            else:
                resilience.failed(dep, state, error)
                await self._release(dep, slot, "failed", error)
            attempts.append(Attempt(dep.id, "failed", error.kind, latency_ms, error.status))
            await self._finish(
                call_id, "failed", None, ZERO, False, latency_ms, error, request=request, dep=dep
            )
            raise
        except BaseException as exc:
            # Cancelled by our caller (a failing delta callback cannot get here: it is guarded).
            latency_ms = (time.perf_counter() - t0) * 1000
            resilience.released(state)
            kind = "cancelled" if isinstance(exc, asyncio.CancelledError) else "internal"
            with contextlib.suppress(BaseException):
                await self._release(dep, slot, "released")
            attempts.append(Attempt(dep.id, "failed", kind, latency_ms, None))
            with contextlib.suppress(BaseException):
                await asyncio.shield(
                    self._finish(
                        call_id,
                        "failed",
                        None,
                        ZERO,
                        False,
                        latency_ms,
                        None,
                        kind,
                        request=request,
                        dep=dep,
                    )
                )
            raise
        latency_ms = (time.perf_counter() - t0) * 1000
        usage = result.usage
        estimated = usage is None
        if usage is None:
            completion = estimate_tokens(
                len(result.text) + sum(len(c.name) + len(c.arguments) for c in result.tool_calls)
            )
            usage = result.usage = Usage(prompt_estimate, completion, prompt_estimate + completion)
        cost, price_source = price_call(dep, usage, result.model)
        cost_estimated = price_source == "unknown"
        result.cost = cost
        result.cost_estimated = cost_estimated or estimated
        result.price_source = price_source
        resilience.succeeded(dep, state, latency_ms, usage.total_tokens - prompt_estimate)
        await self._release(dep, slot, "ok", extra_tokens=usage.total_tokens - prompt_estimate)
        attempts.append(Attempt(dep.id, "completed", None, latency_ms, result.status))
        await self._finish(
            call_id,
            "completed",
            usage,
            cost,
            cost_estimated or estimated,
            latency_ms,
            None,
            price_source=price_source,
            request=request,
            response=result,
            # Time to first token is known only when the answer streamed: a plain answer (one
            # nobody watched, say) came all at once, and its latency is not a first token's.
            first_token_ms=result.first_token_ms if request.stream else None,
            dep=dep,
        )
        return result, call_id

    async def _finish(
        self,
        call_id: str,
        status: str,
        usage: Usage | None,
        cost: Any,
        cost_estimated: bool,
        latency_ms: float,
        error: LLMError | None,
        error_kind: str | None = None,
        *,
        price_source: str = "",
        request: LLMRequest | None = None,
        response: LaneResult | None = None,
        first_token_ms: float | None = None,
        dep: Deployment | None = None,
    ) -> None:
        if dep is not None:
            model_call_record(
                provider_kind=dep.provider_kind,
                model=dep.model,
                call_id=call_id,
                latency_ms=latency_ms,
                input_tokens=usage.prompt_tokens if usage is not None else None,
                output_tokens=usage.completion_tokens if usage is not None else None,
                finish_reason=response.finish_reason if response is not None else None,
                response_model=response.model if response is not None else None,
                error_kind=error.kind if error is not None else error_kind,
                cost=cost,
                price_source=price_source,
                temperature=request.temperature if request is not None else None,
                max_tokens=request.max_tokens if request is not None else None,
            )
        ledger = self.ledger
        if ledger is None:
            return
        outcome = LedgerOutcome(
            status=status,
            usage=usage,
            cost=cost,
            cost_estimated=cost_estimated,
            latency_ms=latency_ms,
            error_kind=error.kind if error is not None else error_kind,
            http_status=error.status if error is not None else (200 if usage else None),
            price_source=price_source,
            request=request,
            response=response,
            error_message=error.message if error is not None else "",
            first_token_ms=first_token_ms,
        )
        try:
            await ledger.call_finished(call_id, outcome)
        except Exception as exc:  # noqa: BLE001 - the answer must not be lost over a ledger row
            logger.warning("ledger could not record the end of call %s: %s", call_id, type(exc))

    def _result(
        self,
        request: LLMRequest,
        dep: Deployment,
        lane: LaneResult,
        call_id: str,
        attempts: list[Attempt],
        retries: int,
        fallbacks: int,
        started: float,
    ) -> LLMResult:
        usage = lane.usage
        assert usage is not None
        return LLMResult(
            text=lane.text,
            tool_calls=lane.tool_calls,
            finish_reason=lane.finish_reason,
            usage=usage,
            cost=lane.cost,
            cost_estimated=lane.cost_estimated,
            latency_ms=(time.perf_counter() - started) * 1000,
            first_token_ms=lane.first_token_ms,
            deployment_id=dep.id,
            model=dep.model,
            provider_kind=dep.provider_kind,
            attempts=attempts,
            retries=retries,
            fallbacks=fallbacks,
            call_id=call_id,
            price_source=lane.price_source,
            stopped=lane.stopped,
        )


@dataclass(slots=True)
class _Place:
    """A call's place at a deployment: in Redis (`slot`, None when this process decided) and in
    this process's own bookkeeping (`state`)."""

    slot: str | None
    state: DeploymentState


def _check_deadline(allowance: Allowance | None) -> None:
    deadline = allowance.deadline if allowance is not None else None
    if deadline is not None and asyncio.get_running_loop().time() >= deadline:
        assert allowance is not None
        raise allowance.time_error()


_local_lines = LocalLines()


class _Line:
    """One call's place in its route's line while it waits for capacity (capacity.py)."""

    def __init__(self, gateway: Gateway, route: Route, waiting: Waiting) -> None:
        self.gateway = gateway
        self.key = "|".join(route.key)
        self.label = route.deployments[0].id if route.deployments else ""
        self.deployments = route.deployments
        self.waiting = waiting
        self.ticket = uuid.uuid4().hex
        self.joined = False
        self.position = 0
        self.started: float | None = None

    async def _check(self, join: bool) -> tuple[int, int]:
        capacity = self.gateway.capacity
        if capacity is not None:
            shared = await capacity.line_check(self.key, self.ticket, self.waiting.priority, join)
            if shared is not None:
                return shared
        return _local_lines.check(self.key, self.ticket, self.waiting.priority, join)

    async def _free(self) -> bool:
        """Whether every deployment of the route is unlimited and, by the shared state's copy,
        clear to go: a waiter of a higher priority then waits for nothing this call would take
        (see capacity.py), and the line need not be asked."""
        capacity = self.gateway.capacity
        if capacity is None:
            return False
        for dep in self.deployments:
            if dep.rpm or dep.tpm or dep.max_parallel or not await capacity.free(dep.id):
                return False
        return True

    async def behind_higher(self) -> bool:
        """Whether a call of a higher priority waits in this line (then this one must not take
        the capacity it waits for). A high-priority call not yet in line asks nothing."""
        if not self.joined and (self.waiting.priority >= 2 or await self._free()):
            return False
        higher, position = await self._check(self.joined)
        self.position = position or self.position
        return higher > 0

    async def wait(
        self, wait: float, cancel: asyncio.Event | None, allowance: Allowance | None
    ) -> bool:
        """Waits in line a little (never past the max wait); False once the max wait passed."""
        clock = self.gateway.clock
        if self.started is None:
            self.started = clock()
        if not self.joined:
            self.joined = True
            _, self.position = await self._check(True)
        waited = clock() - self.started
        left = self.waiting.max_wait_s - waited
        if left <= 0:
            await self.leave()
            return False
        _check_deadline(allowance)
        on_wait = self.waiting.on_wait
        if on_wait is not None:
            with contextlib.suppress(Exception):  # a report must not fail the call
                reported = on_wait(self.label, max(self.position, 1), waited)
                if inspect.isawaitable(reported):
                    await reported
        try:
            await self.gateway._sleep(max(0.005, min(wait, LINE_POLL_S, left)), cancel)
        except BaseException:
            await self.leave()
            raise
        return True

    def gave_up(self) -> LLMError:
        waited = self.waiting.max_wait_s
        return make_error(
            "no_deployment",
            f"no capacity on {self.label} within {waited:g} s of waiting: its rate limits, "
            "cool-down or max parallel calls stayed taken",
            deployment_id=self.label,
        )

    async def leave(self) -> None:
        if not self.joined:
            return
        self.joined = False
        _local_lines.leave(self.key, self.ticket)
        capacity = self.gateway.capacity
        if capacity is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(capacity.line_leave(self.key, self.ticket))


def _guarded_delta(on_delta: DeltaCallback) -> DeltaCallback:
    """The caller's delta callback, made harmless: live output is a courtesy to viewers.

    A callback that fails (the channel layer is down, a viewer's queue broke) must not turn a
    call the provider answered, and charged for, into a failure. After its first failure it is
    not called again for this call; the answer and its cost are recorded as usual.
    """
    broken = False

    async def guarded(text: str) -> None:
        nonlocal broken
        if broken:
            return
        try:
            result = on_delta(text)
            if inspect.isawaitable(result):
                await result
        except Exception as error:  # noqa: BLE001 - see the docstring
            broken = True
            logger.warning(
                "The live output callback failed (%s); the call goes on without it.",
                type(error).__name__,
            )

    return guarded


def _priority(dep: Deployment) -> int:
    return dep.priority


async def _race(awaitable: Awaitable[Any], cancel: asyncio.Event) -> Any:
    """Awaits `awaitable` unless `cancel` is set first; then cancels it and raises `cancelled`."""
    task = asyncio.ensure_future(awaitable)
    waiter = asyncio.ensure_future(cancel.wait())
    try:
        await asyncio.wait((task, waiter), return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        task.cancel()
        waiter.cancel()
        raise
    if task.done():
        waiter.cancel()
        return task.result()
    task.cancel()
    with contextlib.suppress(BaseException):
        await task
    raise make_error("cancelled", "stopped on request")


# One gateway per running event loop, sharing one session and (process-wide) health state.
_gateways: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Gateway] = (
    weakref.WeakKeyDictionary()
)
_defaults: dict[str, Any] = {}
_shared_resilience: Resilience | None = None


def configure_gateways(**kwargs: Any) -> None:
    """Sets the keyword arguments future `gateway_for_loop()` gateways are built with
    (e.g. `ledger=`, `breaker_listener=`); gateways already made keep theirs."""
    global _shared_resilience
    _defaults.clear()
    _defaults.update(kwargs)
    _shared_resilience = None


def gateway_for_loop() -> Gateway:
    """The running loop's gateway, created on first use."""
    global _shared_resilience
    loop = asyncio.get_running_loop()
    gateway = _gateways.get(loop)
    if gateway is None:
        kwargs = dict(_defaults)
        if "resilience" not in kwargs:
            if _shared_resilience is None:
                _shared_resilience = Resilience(
                    clock=kwargs.get("clock", time.monotonic),
                    threshold=kwargs.get("breaker_threshold", 5),
                    cooldown_s=kwargs.get("breaker_cooldown_s", 30.0),
                    listener=kwargs.get("breaker_listener"),
                    window_s=kwargs.get("rate_window_s", 60.0),
                )
            kwargs["resilience"] = _shared_resilience
        gateway = _gateways[loop] = Gateway(**kwargs)
    return gateway


async def gateway_close_for_loop() -> None:
    """Closes the running loop's gateway (its connection pool), if it made one."""
    gateway = _gateways.pop(asyncio.get_running_loop(), None)
    if gateway is not None:
        await gateway.aclose()
