"""Rate limits, cool-downs, max parallel and breakers shared by every worker process (Redis).

In the distributed mode many worker processes call the same deployments: an rpm of 60 must
mean 60 a minute across all of them, a 429's cool-down must hold every process back, and a
breaker opened by one must stop the others. Each check-and-take is one Lua script, so two
processes cannot both take the last request of a window.

Rules where a choice had to be made:

* Time is Redis's own (`TIME`), so processes on machines with drifting clocks agree.
* A call takes its place in the windows when it is admitted (request and estimated tokens) and
  in the in-flight set until it ends; an in-flight place expires by itself after the call's own
  time limit (plus a margin), so a worker that dies mid-call does not hold a slot forever.
* The same failures as in process (`resilience.BREAKER_KINDS`) count towards a breaker; when its
  cool-down has passed, exactly one call across all processes is the half-open trial.
* A call that finds no capacity waits in its route's line (`Waiting`): while a call of a higher
  priority waits there, lower-priority calls do not take the capacity it waits for; calls of the
  same priority race for it when it frees (each sleeps exactly until then), so a line adds no
  latency of its own. A waiter's place lapses if it stops polling (its worker died).
* A deployment with no limits of its own (no rpm, tpm or max parallel) has only its breaker
  and its 429 cool-down to share. Its calls read them from a copy at most `STATE_TTL_S` old
  (one read a second per deployment and process) and do not run the script while the breaker
  is closed and nothing cools down: a breaker opened or a cool-down set by another process
  holds this one back within that second. A failure is always recorded through the script
  (and drops the copy), and so is a success while failures are counted, so the breaker still
  counts consecutive failures across processes.
* If Redis cannot be reached the caller falls back to its own process's limits (`Resilience`,
  which keeps its bookkeeping all along) for a few seconds, then tries Redis again: a Redis blip
  never fails a step, it only loosens the limits to per-process ones meanwhile.

Pure asyncio over `redis.asyncio`, one client per event loop; no Django.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from .errors import LLMError
from .resilience import BREAKER_KINDS, CLOSED
from .types import Deployment

logger = logging.getLogger(__name__)

KEY_PREFIX: Final = "a2a:cap:"
# After Redis failed, how long the process keeps to its own limits before trying again.
FALLBACK_S: Final = 5.0
# An in-flight place outlives its call's time limit by this much before it expires by itself.
INFLIGHT_MARGIN_S: Final = 30.0
KEY_TTL_S: Final = 3600
PRIORITIES: Final = {"low": 0, "normal": 1, "high": 2}
# A waiter polls its line at least this often (its place lapses after LINE_TTL_S unpolled).
LINE_POLL_S: Final = 0.5
LINE_TTL_S: Final = 10
# How old the copy of an unlimited deployment's breaker and cool-down may be (module docstring).
STATE_TTL_S: Final = 1.0
_CLASS: Final = 10**13  # line scores: priority class, then milliseconds since the epoch


@dataclass(frozen=True)
class Waiting:
    """How a call waits for capacity: up to `max_wait_s`, in line by `priority` (0 low,
    1 normal, 2 high), reporting `(deployment id, position in line, seconds waited)`."""

    max_wait_s: float
    priority: int = 1
    on_wait: Callable[[str, int, float], Awaitable[None] | None] | None = None


def line_score(priority: int, now_ms: float) -> float:
    return (2 - max(0, min(2, priority))) * _CLASS + now_ms


class LocalLines:
    """The lines of this process (embedded mode, or while Redis cannot be reached)."""

    def __init__(self) -> None:
        self._lines: dict[str, dict[str, float]] = {}

    def check(self, line: str, ticket: str, priority: int, join: bool) -> tuple[int, int]:
        """(waiters of a higher priority, this ticket's position: 1 is next; 0 if not in)."""
        members = self._lines.setdefault(line, {})
        if join and ticket not in members:
            members[ticket] = line_score(priority, time.time() * 1000)
        mine = line_score(priority, 0)
        higher = sum(1 for score in members.values() if score < (mine // _CLASS) * _CLASS)
        if ticket not in members:
            return higher, 0
        score = members[ticket]
        return higher, 1 + sum(1 for other in members.values() if other < score)

    def leave(self, line: str, ticket: str) -> None:
        members = self._lines.get(line)
        if members is not None:
            members.pop(ticket, None)
            if not members:
                self._lines.pop(line, None)


# KEYS[1]: key prefix of the deployment (or agent). ARGV: id, tokens, rpm, tpm, max_parallel,
# in-flight ttl, breaker cool-down, window seconds. Returns {admitted, wait_ms, transition}.
_ACQUIRE: Final = """
local p = KEYS[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local id, tokens = ARGV[1], tonumber(ARGV[2])
local rpm, tpm, par = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local ttl, cooldown, window = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local brk = p .. 'brk'
local state = redis.call('HGET', brk, 'state') or 'closed'
local trial = false
if state == 'open' then
  local opened = tonumber(redis.call('HGET', brk, 'opened_at') or '0')
  if now < opened + cooldown then
    return {0, math.ceil((opened + cooldown - now) * 1000), ''}
  end
  trial = true
elseif state == 'half_open' then
  local busy = tonumber(redis.call('HGET', brk, 'trial_until') or '0')
  if busy > now then
    return {0, math.ceil(math.min(busy - now, cooldown) * 1000), ''}
  end
  trial = true
end
local wait = 0
local cool = tonumber(redis.call('GET', p .. 'cool') or '0')
if cool > now then wait = cool - now end
if par > 0 then
  redis.call('ZREMRANGEBYSCORE', p .. 'fly', '-inf', now)
  if redis.call('ZCARD', p .. 'fly') >= par then
    local first = redis.call('ZRANGE', p .. 'fly', 0, 0, 'WITHSCORES')
    wait = math.max(wait, math.min(0.05, tonumber(first[2]) - now))
  end
end
if rpm > 0 then
  redis.call('ZREMRANGEBYSCORE', p .. 'req', '-inf', now - window)
  local n = redis.call('ZCARD', p .. 'req')
  if n >= rpm then
    local e = redis.call('ZRANGE', p .. 'req', n - rpm, n - rpm, 'WITHSCORES')
    wait = math.max(wait, tonumber(e[2]) + window - now)
  end
end
if tpm > 0 then
  redis.call('ZREMRANGEBYSCORE', p .. 'tok', '-inf', now - window)
  local all = redis.call('ZRANGE', p .. 'tok', 0, -1, 'WITHSCORES')
  local sum = 0
  for i = 1, #all, 2 do sum = sum + tonumber(string.match(all[i], '|(%-?%d+)$')) end
  if sum + tokens > tpm and #all > 0 then
    local need, freed, free_at = sum + tokens - tpm, 0, now
    for i = 1, #all, 2 do
      freed = freed + tonumber(string.match(all[i], '|(%-?%d+)$'))
      free_at = tonumber(all[i + 1]) + window
      if freed >= need then break end
    end
    if freed < need then free_at = now + window end
    wait = math.max(wait, free_at - now)
  end
end
if wait > 0 then return {0, math.max(1, math.ceil(wait * 1000)), ''} end
local transition = ''
if trial then
  redis.call('HSET', brk, 'state', 'half_open', 'trial_until', now + ttl)
  redis.call('EXPIRE', brk, 86400)
  if state == 'open' then transition = 'half_open' end
end
if par > 0 then
  redis.call('ZADD', p .. 'fly', now + ttl, id)
  redis.call('EXPIRE', p .. 'fly', math.ceil(ttl) + 60)
end
if rpm > 0 then
  redis.call('ZADD', p .. 'req', now, id)
  redis.call('EXPIRE', p .. 'req', math.ceil(window) + 60)
end
if tpm > 0 then
  redis.call('ZADD', p .. 'tok', now, id .. '|' .. tokens)
  redis.call('EXPIRE', p .. 'tok', math.ceil(window) + 60)
end
return {1, 0, transition}
"""

# ARGV: id, outcome ("ok" | "failed" | "released"), extra tokens, cool-down seconds (0: none),
# counts for the breaker (0/1), breaker threshold, window. Returns the breaker transition.
_END: Final = """
local p = KEYS[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local id, outcome, extra = ARGV[1], ARGV[2], tonumber(ARGV[3])
local cool, counts, threshold = tonumber(ARGV[4]), ARGV[5] == '1', tonumber(ARGV[6])
local window = tonumber(ARGV[7])
local brk = p .. 'brk'
redis.call('ZREM', p .. 'fly', id)
if extra ~= 0 and redis.call('EXISTS', p .. 'tok') == 1 then
  redis.call('ZADD', p .. 'tok', now, id .. ':x|' .. extra)
end
local state = redis.call('HGET', brk, 'state') or 'closed'
if outcome == 'ok' then
  redis.call('HSET', brk, 'state', 'closed', 'failures', 0, 'trial_until', 0)
  redis.call('EXPIRE', brk, 86400)
  if state ~= 'closed' then return 'closed' end
  return ''
end
if outcome == 'released' then
  if state == 'half_open' then redis.call('HSET', brk, 'trial_until', 0) end
  return ''
end
if cool > 0 then
  local current = tonumber(redis.call('GET', p .. 'cool') or '0')
  if now + cool > current then
    redis.call('SET', p .. 'cool', tostring(now + cool), 'EX', math.ceil(cool) + 1)
  end
end
if not counts then
  if state == 'half_open' then redis.call('HSET', brk, 'trial_until', 0) end
  return ''
end
local failures = redis.call('HINCRBY', brk, 'failures', 1)
redis.call('EXPIRE', brk, 86400)
if state == 'half_open' or (state == 'closed' and failures >= threshold) then
  redis.call('HSET', brk, 'state', 'open', 'opened_at', now, 'trial_until', 0)
  return 'open'
end
return ''
"""


# KEYS[1]: the line (sorted set), ARGV: ticket, score, join (0/1), ttl, class bound.
# Returns {waiters of a higher priority, position (0: not in line)}.
_LINE: Final = """
local line, ticket = KEYS[1], ARGV[1]
local score, join, ttl, bound = tonumber(ARGV[2]), ARGV[3] == '1', tonumber(ARGV[4]), ARGV[5]
if join then
  redis.call('ZADD', line, 'NX', score, ticket)
  redis.call('EXPIRE', line, 3600)
end
if redis.call('ZSCORE', line, ticket) then
  redis.call('SET', line .. ':alive:' .. ticket, 1, 'EX', ttl)
end
for _ = 1, 20 do
  local head = redis.call('ZRANGE', line, 0, 0)
  if #head == 0 or redis.call('EXISTS', line .. ':alive:' .. head[1]) == 1 then break end
  redis.call('ZREM', line, head[1])
end
local higher = redis.call('ZCOUNT', line, '-inf', '(' .. bound)
local rank = redis.call('ZRANK', line, ticket)
if rank then return {higher, rank + 1} end
return {higher, 0}
"""


class RedisCapacity:
    """The shared limits of every deployment (and agent) across processes, kept in Redis."""

    def __init__(
        self,
        url: str,
        *,
        threshold: int = 5,
        cooldown_s: float = 30.0,
        listener: Any = None,
        key_prefix: str = KEY_PREFIX,
        window_s: float = 60.0,
    ) -> None:
        self.url = url
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self.listener = listener
        self.key_prefix = key_prefix
        self.window_s = window_s
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary()
        )
        self._down_until = 0.0
        # Unlimited deployments: key -> (copy taken at, clear to go, breaker failures counted).
        self._states: dict[str, tuple[float, bool, int]] = {}
        self._reading: dict[tuple[asyncio.AbstractEventLoop, str], asyncio.Task[bool | None]] = {}
        # Places taken from the copy (no script): their end runs the script only if needed.
        self._unscripted: set[str] = set()

    def _client(self) -> Any:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            import redis.asyncio as redis_asyncio

            client = redis_asyncio.Redis.from_url(
                self.url, socket_timeout=1.0, socket_connect_timeout=1.0
            )
            client.acquire_script = client.register_script(_ACQUIRE)
            client.end_script = client.register_script(_END)
            client.line_script = client.register_script(_LINE)
            self._clients[loop] = client
        return client

    @property
    def available(self) -> bool:
        return time.monotonic() >= self._down_until

    def _failed(self, error: BaseException) -> None:
        if self.available:
            logger.warning(
                "Shared rate limits unreachable (%s): this process keeps to its own limits "
                "for %g s.",
                type(error).__name__,
                FALLBACK_S,
            )
        self._down_until = time.monotonic() + FALLBACK_S

    def _notify(self, key: str, transition: Any) -> None:
        if isinstance(transition, bytes):
            transition = transition.decode()
        if transition and self.listener is not None:
            try:
                self.listener(key, transition)
            except Exception:  # noqa: BLE001 - a listener must not break calls
                logger.warning("breaker listener failed for deployment %s", key)

    async def free(self, key: str) -> bool | None:
        """Whether an unlimited deployment's calls may go without the script (the copy, read
        again once it is STATE_TTL_S old, by one read however many calls ask meanwhile);
        None when Redis cannot answer."""
        state = self._states.get(key)
        if state is not None and time.monotonic() - state[0] < STATE_TTL_S:
            return state[1]
        if not self.available:
            return None
        loop = asyncio.get_running_loop()
        reading = self._reading.get((loop, key))
        if reading is None:
            reading = self._reading[(loop, key)] = loop.create_task(self._read_state(key))
            reading.add_done_callback(lambda _: self._reading.pop((loop, key), None))
        return await asyncio.shield(reading)

    async def _read_state(self, key: str) -> bool | None:
        now = time.monotonic()
        prefix = self.key_prefix + key + ":"
        try:
            pipe = self._client().pipeline(transaction=False)
            pipe.hmget(prefix + "brk", "state", "failures")
            pipe.exists(prefix + "cool")
            (breaker, failures), cooling = await pipe.execute()
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - see the module docstring
            self._failed(error)
            return None
        clear = breaker in (None, b"closed") and not cooling
        self._states[key] = (now, clear, int(failures or 0))
        return clear

    async def acquire(
        self,
        key: str,
        slot: str,
        *,
        tokens: int = 0,
        rpm: int | None = None,
        tpm: int | None = None,
        max_parallel: int | None = None,
        inflight_ttl_s: float = 120.0,
        breaker: bool = True,
    ) -> float | None:
        """0.0 when the call may go now (its place is taken under `slot`), else seconds to
        wait; None when Redis cannot answer (the caller keeps to its own process's limits)."""
        if not self.available:
            return None
        if breaker and not (rpm or tpm or max_parallel):
            clear = await self.free(key)
            if clear is None:
                return None
            if clear:
                self._unscripted.add(slot)
                return 0.0
        try:
            result = await self._client().acquire_script(
                keys=[self.key_prefix + key + ":"],
                args=[
                    slot,
                    int(tokens),
                    int(rpm or 0),
                    int(tpm or 0),
                    int(max_parallel or 0),
                    float(inflight_ttl_s),
                    float(self.cooldown_s) if breaker else 0.0,
                    float(self.window_s),
                ],
            )
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - see the module docstring
            self._failed(error)
            return None
        admitted, wait_ms, transition = result
        self._notify(key, transition)
        return 0.0 if int(admitted) else int(wait_ms) / 1000

    async def end(
        self,
        key: str,
        slot: str,
        outcome: str,
        *,
        error: LLMError | None = None,
        extra_tokens: int = 0,
    ) -> None:
        """Gives the call's place back and records its verdict on the deployment."""
        if slot in self._unscripted:
            self._unscripted.discard(slot)
            if outcome != "failed":
                state = self._states.get(key)
                # Nothing to give back; a success resets the failures counted, if any.
                if outcome == "released" or (state is not None and state[1] and not state[2]):
                    return
        if outcome == "failed":
            self._states.pop(key, None)  # read again: this failure may open the breaker
        cool = 0.0
        counts = False
        if error is not None:
            if error.kind == "rate_limit":
                cool = error.retry_after if error.retry_after is not None else 1.0
            counts = error.kind in BREAKER_KINDS
        try:
            transition = await self._client().end_script(
                keys=[self.key_prefix + key + ":"],
                args=[
                    slot,
                    outcome,
                    int(extra_tokens),
                    float(cool),
                    "1" if counts else "0",
                    self.threshold,
                    float(self.window_s),
                ],
            )
        except asyncio.CancelledError:
            raise
        except Exception as error_:  # noqa: BLE001 - the place expires by itself
            self._failed(error_)
            return
        state = self._states.get(key)
        if outcome == "ok" and state is not None:
            self._states[key] = (state[0], state[1], 0)  # the script reset the count
        self._notify(key, transition)

    async def line_check(
        self, line: str, ticket: str, priority: int, join: bool
    ) -> tuple[int, int] | None:
        """As `LocalLines.check`, shared; None when Redis cannot answer."""
        if not self.available:
            return None
        try:
            higher, position = await self._client().line_script(
                keys=[self.key_prefix + "line:" + line],
                args=[
                    ticket,
                    line_score(priority, time.time() * 1000),
                    "1" if join else "0",
                    LINE_TTL_S,
                    int(line_score(priority, 0) // _CLASS) * _CLASS,
                ],
            )
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - see the module docstring
            self._failed(error)
            return None
        return int(higher), int(position)

    async def line_leave(self, line: str, ticket: str) -> None:
        key = self.key_prefix + "line:" + line
        try:
            client = self._client()
            await client.zrem(key, ticket)
            await client.delete(key + ":alive:" + ticket)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - the place lapses by itself
            self._failed(error)

    async def breaker_state(self, key: str) -> str:
        try:
            state = await self._client().hget(self.key_prefix + key + ":brk", "state")
        except Exception:  # noqa: BLE001 - unknown shows as closed
            return CLOSED
        return state.decode() if isinstance(state, bytes) else (state or CLOSED)

    async def aclose(self) -> None:
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()


def inflight_ttl(dep: Deployment) -> float:
    return float(dep.timeout_s) + INFLIGHT_MARGIN_S
