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


def test_redis_unused_in_the_embedded_mode_has_no_health_dot(
    personas: Personas, client_for, settings
) -> None:
    settings.REDIS_URL = ""
    content = client_for(personas.viewer).get(reverse("monitoring_overview")).content.decode()
    cards = content.split('data-testid="probe"')[1:]
    (redis_card,) = [card for card in cards if "Redis" in card]
    assert 'data-state="unused"' in redis_card
    assert "status-dot unused" in redis_card
    assert "healthy" not in redis_card


def test_workers_from_before_a_restart_are_folded_into_history(
    personas: Personas, client_for
) -> None:
    now = timezone.now()
    Worker.objects.create(
        name="celery@now", kind="celery", hostname="h", pid=1, started_at=now, last_seen_at=now
    )
    Worker.objects.create(
        name="celery@just-silent",
        kind="celery",
        hostname="h",
        pid=2,
        started_at=now,
        last_seen_at=now - timedelta(minutes=2),
    )
    for number in range(25):
        Worker.objects.create(
            name=f"celery@yesterday-{number}",
            kind="celery",
            hostname="h",
            pid=100 + number,
            started_at=now - timedelta(days=1),
            last_seen_at=now - timedelta(hours=20, minutes=number),
            stopped_at=now - timedelta(hours=20, minutes=number) if number % 2 else None,
        )

    content = client_for(personas.viewer).get(reverse("monitoring_overview")).content.decode()

    current, _, earlier = content.partition('data-testid="workers-earlier"')
    assert "celery@now" in current and "celery@just-silent" in current
    assert "celery@yesterday" not in current
    assert "Earlier workers (25)" in earlier
    assert earlier.count('data-testid="worker-row"') == 20
    assert "celery@yesterday-0" in earlier and "celery@yesterday-24" not in earlier
    assert "The 20 most recent are shown." in earlier


def test_a_worker_whose_process_ended_here_goes_to_history_at_once(
    personas: Personas, client_for
) -> None:
    import socket
    import subprocess
    import sys

    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    now = timezone.now()
    Worker.objects.create(
        name="celery@killed",
        kind="celery",
        hostname=socket.gethostname(),
        pid=ended.pid,
        started_at=now - timedelta(minutes=3),
        last_seen_at=now - timedelta(minutes=1),
    )
    content = client_for(personas.viewer).get(reverse("monitoring_overview")).content.decode()
    current, _, earlier = content.partition('data-testid="workers-earlier"')
    assert "celery@killed" not in current
    assert "celery@killed" in earlier and "ended without goodbye" in earlier


def test_live_workers_show_their_figures_and_sparklines(personas: Personas, client_for) -> None:
    now = timezone.now()
    minute = int(now.timestamp() // 60 * 60)
    Worker.objects.create(
        name="celery@busy",
        kind="celery",
        hostname="h",
        pid=7,
        started_at=now - timedelta(hours=2),
        last_seen_at=now,
        rss_bytes=200 * 2**20,
        cpu_percent=12,
        open_files=33,
        threads=9,
        runs_in_flight=42,
        runs_capacity=300,
        loop_lag_ms=1.5,
        history={
            "hour": [[minute - 120, 5.0, 180.0, 10, 0.5], [minute, 12.0, 200.0, 42, 1.5]],
            "day": [[int(now.timestamp() // 900 * 900), 8.0, 200.0, 42, 1.5]],
        },
    )
    client = client_for(personas.viewer)
    content = client.get(reverse("monitoring_overview")).content.decode()
    assert "42 of 300" in content and "1.5 ms" in content
    assert "33 open files · 9 threads" in content
    assert "Runs in flight: from 10 to 42, now 42" in content
    assert 'class="sparkline"' in content
    day = client.get(reverse("monitoring_overview") + "?span=day").content.decode()
    # The day's ring has one quarter-hour point: no line yet, and it says so.
    assert "1 point so far" in day
    refused = client.get(reverse("monitoring_overview") + "?span=week")
    assert refused.status_code == 400
    assert "last hour (span=hour) or day (span=day)" in refused.content.decode()


def test_the_embedded_mode_says_queues_are_not_used_and_describes_the_database(
    personas: Personas, client_for, settings
) -> None:
    settings.EXECUTION_MODE = "embedded"
    settings.REDIS_URL = ""
    content = client_for(personas.viewer).get(reverse("monitoring_overview")).content.decode()
    queues = content.split('data-testid="queues"')[1].split("</div>")[0]
    assert "not used" in queues and "runs start in-process" in queues
    assert "Connections" in content and "Size" in content
