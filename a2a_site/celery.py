"""The Celery application. Workers start with `celery -A a2a_site worker`."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "a2a_site.settings")

app = Celery("a2a_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
