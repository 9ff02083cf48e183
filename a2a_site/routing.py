"""WebSocket routes: one socket per run page, carrying its replayed and live events; one per page
for the workspace's notifications."""

from __future__ import annotations

from typing import Any

from django.urls import path

from monitoring.alerts.consumers import NotificationConsumer
from workflows.consumers import RunConsumer

websocket_urlpatterns: list[Any] = [
    path("ws/runs/<uuid:run_id>/", RunConsumer.as_asgi()),
    path("ws/workspaces/<uuid:workspace_id>/notifications/", NotificationConsumer.as_asgi()),
]
