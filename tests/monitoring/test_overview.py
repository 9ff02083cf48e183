from __future__ import annotations

from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from tests.conftest import Personas
from workflows.models import Worker


def test_overview_shows_probes_and_workers(personas: Personas, client_for, settings) -> None:
    now = timezone.now()
    Worker.objects.create(
        name="celery@alive", kind="celery", hostname="h", pid=1, started_at=now, last_seen_at=now
    )
    Worker.objects.create(
        name="celery@silent",
        kind="celery",
        hostname="h",
        pid=2,
        started_at=now,
        last_seen_at=now - timedelta(minutes=5),
    )
    response = client_for(personas.viewer).get(reverse("monitoring_overview"))
    content = response.content.decode()
    assert response.status_code == 200
    assert "Database" in content and "answered in" in content
    assert "celery@alive" in content and "alive</span>" in content
    assert "celery@silent" in content and "silent</span>" in content


def test_htmx_refresh_renders_only_the_health_region(personas: Personas, client_for) -> None:
    response = client_for(personas.viewer).get(
        reverse("monitoring_overview"), headers={"HX-Request": "true"}
    )
    assert b'data-testid="health"' in response.content
    assert b"<html" not in response.content


def test_healthz_answers_without_login(client, db) -> None:
    response = client.get(reverse("healthz"))
    assert response.json() == {"status": "ok"}
