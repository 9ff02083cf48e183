from __future__ import annotations

from django.db import models


class Worker(models.Model):
    """A process that executes runs: a Celery worker, or the web process in the embedded mode.

    Each process upserts its own row every few seconds; the monitoring pages read them, and the
    run reaper (engine) will treat a worker whose heartbeat stopped as gone.
    """

    class Kind(models.TextChoices):
        CELERY = "celery", "Celery worker"
        EMBEDDED = "embedded", "Embedded (web process)"

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    hostname = models.CharField(max_length=200)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    stopped_at = models.DateTimeField(null=True, blank=True)
    rss_bytes = models.PositiveBigIntegerField(default=0)
    cpu_percent = models.FloatField(default=0.0)

    class Meta:
        ordering = ["-last_seen_at"]

    def __str__(self) -> str:
        return self.name
