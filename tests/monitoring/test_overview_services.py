"""The monitoring page against the real Redis and PostgreSQL of the distributed mode."""

from __future__ import annotations

import pytest
import redis
from django.conf import settings
from django.urls import reverse

from tests.conftest import Personas

pytestmark = [pytest.mark.services]


def test_redis_says_what_it_is_used_for_and_the_queue_depth_is_counted(
    personas: Personas, client_for
) -> None:
    from a2a_site.celery import app

    prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"]
    client = redis.Redis.from_url(settings.REDIS_URL)
    key = f"{prefix}celery"
    before = client.llen(key)
    # A task nobody takes (no worker runs in this test): it waits in the queue.
    app.send_task("monitoring.tasks.alerts_round")
    try:
        assert client.llen(key) == before + 1
        content = client_for(personas.viewer).get(reverse("monitoring_overview")).content.decode()
        redis_card = [c for c in content.split('data-testid="probe"')[1:] if "Redis" in c][0]
        assert 'data-state="ok"' in redis_card
        assert "run dispatch (Celery broker)" in redis_card and "/s" in redis_card
        queues = content.split('data-testid="queues"')[1].split("</dl>")[0]
        assert f"{before + 1} waiting" in queues
        # Every queue a worker consumes, saying what waits in it: the runs' by priority, and
        # Celery's default one for every other task.
        for about, name in (
            ("High-priority runs", "a2a-runs-high"),
            ("Other tasks", "celery"),
            ("Normal runs", "a2a-runs"),
            ("Low-priority runs", "a2a-runs-low"),
        ):
            assert f"{about}" in queues and f"<code>{name}</code>" in queues
        database = [c for c in content.split('data-testid="probe"')[1:] if "Database" in c][0]
        assert "PostgreSQL" in database and "allowed" in database
    finally:
        client.delete(key)
        client.close()
