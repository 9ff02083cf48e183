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

Selected by `CELERY_BROKER_TRANSPORT` in the settings when the broker is Redis.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis


class Channel(redis.Channel):
    def __init__(self, connection: Any, *args: Any, **kwargs: Any) -> None:
        # The kombu Connection this channel belongs to, for as long as the channel lives.
        self._opened_with = connection.client
        super().__init__(connection, *args, **kwargs)

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
