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
from django.core.cache import cache

logger = logging.getLogger(__name__)


def rate_limit_wait(bucket: str, *, limit: int | None = None, window: int | None = None) -> int:
    """0 if one more request fits in `bucket`'s current window, else seconds until it does."""
    limit = limit or settings.API_RATE_LIMIT
    window = window or settings.API_RATE_WINDOW_SECONDS
    now = time.time()
    index = int(now // window)
    key = f"api:rate:{bucket}:{index}"
    try:
        cache.add(key, 0, timeout=window + 5)
        count = cache.incr(key)
    except ValueError:  # evicted between add and incr: this request is the first
        cache.set(key, 1, timeout=window + 5)
        count = 1
    except Exception as error:  # the cache is down: let the request through
        logger.warning("API rate limit not counted: %s", type(error).__name__)
        return 0
    if count <= limit:
        return 0
    return max(1, math.ceil((index + 1) * window - now))
