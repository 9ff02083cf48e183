"""The broker transport: a worker that loses Redis gives its unacked message back, not its life.

On a lost broker connection Celery drops the connection (which clears the transport's `client`)
and closes its channels; closing restores the unacked messages, which needs a new connection
pool. kombu's own transport then fails with `AttributeError: 'NoneType' object has no attribute
'hostname'` and the worker dies; ours builds the pool from the connection the channel was opened
with. Driven against a Redis of the test's own.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.conf import settings
from kombu import Connection, Consumer, Exchange, Queue

from tests.support.redis_server import PrivateRedis, private_redis

pytestmark = pytest.mark.services

QUEUE = Queue("runs", Exchange("runs"), "runs")


@pytest.fixture
def server() -> Iterator[PrivateRedis]:
    with private_redis("redis-broker-test") as server:
        yield server


def deliver_one_unacked(connection: Connection) -> Any:
    """A worker's channel holding one delivered, not yet acknowledged message."""
    with connection.Producer() as producer:
        producer.publish(
            {"run_id": "r1"}, exchange=QUEUE.exchange, routing_key="runs", declare=[QUEUE]
        )
    channel = connection.channel()
    received: list[Any] = []
    Consumer(channel, [QUEUE], callbacks=[lambda body, message: received.append(body)]).consume()
    connection.drain_events(timeout=5)
    assert received == [{"run_id": "r1"}]
    assert len(channel.qos._delivered) == 1
    return channel


def connection_lost_and_channel_closed(connection: Connection, channel: Any) -> None:
    # What the worker does on a lost connection: the transport forgets its client, then the
    # channel closes and restores what it had not acknowledged.
    connection.transport.client = None
    channel._disconnect_pools()
    channel.qos.restore_unacked()


def test_kombus_own_transport_fails_the_way_the_worker_died(server: PrivateRedis) -> None:
    connection = Connection(server.url())
    channel = deliver_one_unacked(connection)
    with pytest.raises(AttributeError, match="hostname"):
        connection_lost_and_channel_closed(connection, channel)
    # Or it fails again when the interpreter exits and restores what is left.
    channel.qos._on_collect.cancel()
    channel.qos._delivered.clear()


def test_ours_puts_the_message_back_on_its_queue(server: PrivateRedis) -> None:
    connection = Connection(server.url(), transport="a2a_site.broker:Transport")
    channel = deliver_one_unacked(connection)
    connection_lost_and_channel_closed(connection, channel)
    client = redis.Redis(host="127.0.0.1", port=server.port)
    try:
        assert client.llen("runs") == 1
        assert client.zcard("unacked_index") == 0
    finally:
        client.close()


def test_the_settings_select_it_for_a_redis_broker() -> None:
    if settings.REDIS_URL:
        assert settings.CELERY_BROKER_TRANSPORT == "a2a_site.broker:Transport"
    else:
        assert not hasattr(settings, "CELERY_BROKER_TRANSPORT")


def test_a_channel_keeps_one_client_per_pool(server: PrivateRedis) -> None:
    connection = Connection(server.url(), transport="a2a_site.broker:Transport")
    try:
        with connection.Producer() as producer:
            for number in range(3):
                producer.publish(
                    {"run_id": f"r{number}"},
                    exchange=QUEUE.exchange,
                    routing_key="runs",
                    declare=[QUEUE],
                )
            channel = producer.channel
            kept = channel._kept_client
            assert kept is not None and kept.connection_pool is channel.pool
            # After a reconnect the channel has a new pool: a client over the new one.
            channel._disconnect_pools()
            producer.publish({"run_id": "r3"}, exchange=QUEUE.exchange, routing_key="runs")
            assert channel._kept_client is not kept
            assert channel._kept_client.connection_pool is channel.pool
        client = redis.Redis(host="127.0.0.1", port=server.port)
        try:
            assert client.llen("runs") == 4
        finally:
            client.close()
    finally:
        connection.release()
