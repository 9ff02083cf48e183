"""Per-token request limits: a fixed window counted in the cache.

The cache is Redis in the distributed mode (one count across every web process) and process
memory in the embedded mode (one process). An unreachable cache lets requests through: the
limit protects the service, and failing every call because Redis blinked would not.

With Redis, a process does not ask Redis at every request: it counts a token's requests itself
and adds them to the shared count (one INCRBY, with the window's EXPIRE, in one round trip)
at least every API_RATE_SYNC_MS, and at every request once the count it knows is within a tenth
of the limit — so the limit holds exactly for one process, and across processes it may be
exceeded by what the others admitted since their last addition (at most API_RATE_SYNC_MS of
their traffic). A round trip per request cost more than the rest of token authentication
together on a busy machine (bench/api.py).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache

logger = logging.getLogger(__name__)


@dataclass
class _Tally:
    """This process's view of one bucket's window."""

    index: int
    shared: int = 0  # the shared count when last added to
    unsent: int = 0  # requests counted here since
    sent_at: float = -math.inf  # monotonic time of the last addition


_tallies: dict[str, _Tally] = {}
_lock = threading.Lock()
_TALLIES_MAX = 10_000


def _redis_add(backend: RedisCache, key: str, amount: int, expire: int) -> int:
    """The key's count after adding `amount`: INCRBY, and EXPIRE when the window's counter is
    new, in one round trip."""
    full = backend.make_and_validate_key(key)
    client = backend._cache.get_client(full, write=True)  # type: ignore[attr-defined]
    pipeline = client.pipeline(transaction=False)
    pipeline.incrby(full, amount)
    pipeline.expire(full, expire, nx=True)
    count, _ = pipeline.execute()
    return int(count)


def _count_shared(
    backend: RedisCache, bucket: str, index: int, key: str, expire: int, limit: int
) -> int:
    """The bucket's count after this request, adding to Redis only when due (see the module)."""
    clock = time.monotonic()
    with _lock:
        tally = _tallies.get(bucket)
        if tally is None or tally.index != index:
            if len(_tallies) >= _TALLIES_MAX:
                _tallies.clear()
            tally = _tallies[bucket] = _Tally(index)
        tally.unsent += 1
        known = tally.shared + tally.unsent
        due = clock - tally.sent_at >= settings.API_RATE_SYNC_MS / 1000 or known >= limit - max(
            1, limit // 10
        )
        if not due:
            return known
        amount, tally.unsent, tally.sent_at = tally.unsent, 0, clock
    try:
        count = _redis_add(backend, key, amount, expire)
    except Exception:
        with _lock:  # not added: counted again at the next addition
            tally.unsent += amount
            tally.sent_at = -math.inf
        raise
    with _lock:
        tally.shared = max(tally.shared, count)
        return tally.shared + tally.unsent


def _count(bucket: str, index: int, key: str, expire: int, limit: int) -> int:
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        return _count_shared(backend, bucket, index, key, expire, limit)
    try:
        return int(cache.incr(key))
    except ValueError:  # the window's first request
        return 1 if cache.add(key, 1, timeout=expire) else int(cache.incr(key))


def rate_limit_wait(bucket: str, *, limit: int | None = None, window: int | None = None) -> int:
    """0 if one more request fits in `bucket`'s current window, else seconds until it does."""
    limit = limit or settings.API_RATE_LIMIT
    window = window or settings.API_RATE_WINDOW_SECONDS
    now = time.time()
    index = int(now // window)
    key = f"api:rate:{bucket}:{index}"
    try:
        count = _count(bucket, index, key, window + 5, limit)
    except Exception as error:  # the cache is down: let the request through
        logger.warning("API rate limit not counted: %s", type(error).__name__)
        return 0
    if count <= limit:
        return 0
    return max(1, math.ceil((index + 1) * window - now))
