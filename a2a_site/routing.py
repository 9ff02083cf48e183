"""WebSocket routes. The run consumer joins here with the live-runs work."""

from __future__ import annotations

from typing import Any

websocket_urlpatterns: list[Any] = []
