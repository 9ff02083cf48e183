"""The per-token limit counted in Redis shared by the web processes: each process adds its
requests in batches, exactly near the limit (see a2a_site/api/ratelimit.py)."""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest
from django.core.cache import caches

from a2a_site.api import ratelimit

pytestmark = pytest.mark.services


@pytest.fixture
def redis_cache(settings: Any) -> Any:
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["REDIS_URL"],
            "KEY_PREFIX": f"test-{uuid.uuid4().hex[:8]}",
        }
    }
    settings.API_RATE_LIMIT = 20
    settings.API_RATE_WINDOW_SECONDS = 3600
    return caches["default"]


def shared_count(cache: Any, bucket: str) -> int:
    (key,) = cache._cache.get_client().keys(f"*api:rate:{bucket}:*")
    return int(cache._cache.get_client().get(key))


def test_one_process_is_held_to_the_limit_exactly_with_few_round_trips(
    redis_cache: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.API_RATE_SYNC_MS = 60_000  # no addition for time's sake during the test
    additions = []
    real_add = ratelimit._redis_add
    monkeypatch.setattr(
        ratelimit,
        "_redis_add",
        lambda *args: additions.append(args[2]) or real_add(*args),
    )
    bucket = f"token:{uuid.uuid4()}"
    waits = [ratelimit.rate_limit_wait(bucket) for _ in range(21)]

    assert waits[:20] == [0] * 20 and waits[20] > 0
    # The first request, then one batch, then each request within a tenth of the limit.
    assert additions[0] == 1 and len(additions) < 10
    assert shared_count(redis_cache, bucket) == 21


def test_what_other_processes_counted_is_seen_at_the_next_addition(
    redis_cache: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.API_RATE_SYNC_MS = 500
    clock = [100.0]
    monkeypatch.setattr(ratelimit.time, "monotonic", lambda: clock[0])
    bucket = f"token:{uuid.uuid4()}"
    assert ratelimit.rate_limit_wait(bucket) == 0
    # Another web process admitted 19 requests of this token meanwhile.
    (key,) = redis_cache._cache.get_client().keys(f"*api:rate:{bucket}:*")
    redis_cache._cache.get_client().incrby(key, 19)
    assert ratelimit.rate_limit_wait(bucket) == 0  # not added yet: 2 known here
    clock[0] += 0.5
    assert ratelimit.rate_limit_wait(bucket) > 0  # 22 > 20
    assert shared_count(redis_cache, bucket) == 22
