"""ASGI entry point: HTTP through Django; WebSockets through Channels with session auth and a
same-origin check (scheme, host and port: a2a_site/origin.py)."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "a2a_site.settings")

# Django must be set up before anything imports models (the consumers do).
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from a2a_site.origin import SameOriginValidator  # noqa: E402
from a2a_site.routing import websocket_urlpatterns  # noqa: E402

if settings.EXECUTION_MODE == "embedded" and settings.EXECUTOR_AUTOSTART:
    # The web process executes runs itself: start its executor (and its reaper) with the server,
    # so runs a previous process left behind are resumed without waiting for a new one.
    from workflows.executor import process_executor

    process_executor()

from a2a_site.process_gauges import gauges  # noqa: E402

gauges.publisher_ensure(kind="web")  # memory, lag and WebSockets of this process, for /metrics

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": SameOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
