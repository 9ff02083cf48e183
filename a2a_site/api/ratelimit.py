"""Per-token request limits: a fixed window counted in the cache.

The cache is Redis in the distributed mode (one count across every web process) and process
memory in the embedded mode (one process). An unreachable cache lets requests through: the
limit protects the service, and failing every call because Redis blinked would not.
"""

from __future__ import annotations

import logging
import math
import time

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache

logger = logging.getLogger(__name__)


def _count(key: str, expire: int) -> int:
    """The key's count after this request. On Redis one round trip (INCR, and EXPIRE when the
    window's counter is new); Django's `incr` would ask whether the key exists first."""
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        full = backend.make_and_validate_key(key)
        client = backend._cache.get_client(full, write=True)  # type: ignore[attr-defined]
        pipeline = client.pipeline(transaction=False)
        pipeline.incr(full)
        pipeline.expire(full, expire, nx=True)
        count, _ = pipeline.execute()
        return int(count)
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
        count = _count(key, window + 5)
    except Exception as error:  # the cache is down: let the request through
        logger.warning("API rate limit not counted: %s", type(error).__name__)
        return 0
    if count <= limit:
        return 0
    return max(1, math.ceil((index + 1) * window - now))
