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
        self._notify(key, transition)

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
