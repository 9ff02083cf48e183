"""Database work from async code, on a pool of threads with a connection each.

Django's own async ORM sends every query through one shared thread, which serializes hundreds of
concurrent runs behind each other. Run executors and the ledger use this pool instead: each
thread keeps its own connection (reused while CONN_MAX_AGE allows), and the pool bounds how many
connections one process opens.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings

T = TypeVar("T")

_pool: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=settings.DB_THREADS, thread_name_prefix="a2a-db")
    return _pool


async def in_db_thread(func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    call = functools.partial(func, *args, **kwargs)
    return await sync_to_async(call, thread_sensitive=False, executor=_executor())()


def db_threads_close() -> None:
    """Closes every pool thread's database connection (at shutdown, or before a test database
    is dropped) by giving each thread one closing task; the threads stay available."""
    if _pool is None:
        return
    count = _pool._max_workers
    barrier = threading.Barrier(count)

    def close() -> None:
        from django.db import connections

        connections.close_all()
        # Every thread takes exactly one task: none returns until all have closed theirs.
        barrier.wait(timeout=10)

    for future in [_pool.submit(close) for _ in range(count)]:
        future.result(timeout=15)
