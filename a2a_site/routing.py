"""WebSocket routes: one socket per run page, carrying its replayed and live events."""

from __future__ import annotations

from typing import Any

from django.urls import path

from workflows.consumers import RunConsumer

websocket_urlpatterns: list[Any] = [
    path("ws/runs/<uuid:run_id>/", RunConsumer.as_asgi()),
]
