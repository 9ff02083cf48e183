"""The Celery broker transport: kombu's Redis transport, surviving a Redis that went away.

When a worker loses its broker connection it drops the connection (`Connection.collect()`), which
clears the transport's `client`, and closes its channels; a channel that still holds unacked
messages then restores them to Redis, and restoring needs a new connection pool, built from
`transport.client` — now None. The worker dies with
`AttributeError: 'NoneType' object has no attribute 'hostname'` right after "Restoring 1
unacknowledged message(s)" (kombu issues #582 and #970 describe the same path; kombu 5.7.0 still
has it). Here a channel keeps the connection it was opened with and builds its pool from that
one when the transport's has gone, so the messages go back to their queue (or, if Redis is still
down, stay in the unacked index until the visibility timeout restores them) and the worker
reconnects instead of dying.

Its channels also keep one Redis client for their commands instead of building one per
publish (see `Channel.conn_or_acquire`).

Selected by `CELERY_BROKER_TRANSPORT` in the settings when the broker is Redis.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kombu.transport import redis


class Channel(redis.Channel):
    def __init__(self, connection: Any, *args: Any, **kwargs: Any) -> None:
        # The kombu Connection this channel belongs to, for as long as the channel lives.
        self._opened_with = connection.client
        self._kept_client: Any = None
        super().__init__(connection, *args, **kwargs)

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        """kombu builds a new Redis client over the channel's pool for every publish (and
        every other command outside the consumer's own): a fifth of a publish's CPU. Here
        one is kept for as long as the pool it was built over; clients hold no connection of
        their own between commands, and a new pool (after a reconnect) gets a new client."""
        if client:
            yield client
            return
        pool = self.pool
        kept = self._kept_client
        if kept is None or kept.connection_pool is not pool:
            kept = self._kept_client = self._create_client()  # type: ignore[attr-defined]
        yield kept

    def _connparams(self, asynchronous: bool = False) -> Any:
        transport = self.connection
        if transport is None or transport.client is not None or self._opened_with is None:
            return super()._connparams(asynchronous=asynchronous)  # type: ignore[misc]
        transport.client = self._opened_with
        try:
            return super()._connparams(asynchronous=asynchronous)  # type: ignore[misc]
        finally:
            transport.client = None


class Transport(redis.Transport):
    Channel = Channel
