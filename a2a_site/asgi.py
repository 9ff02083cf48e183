"""ASGI entry point: HTTP through Django, but /a2a/ through the A2A SDK's routes (workflows/a2a) and
/mcp through the MCP endpoint (workflows/mcp);
WebSockets through Channels with session auth and a same-origin check (scheme, host and port:
a2a_site/origin.py)."""

from __future__ import annotations

import asyncio
import atexit
import os
import socket
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "a2a_site.settings")

# Django must be set up before anything imports models (the consumers do).
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.handlers.asgi import ASGIHandler  # noqa: E402
from django.core.signals import request_finished  # noqa: E402
from django.db import connections  # noqa: E402


def _request_thread_connections_close(sender: Any, **kwargs: Any) -> None:
    """Closes the database connections of the thread that served a request, as it ends.

    Under ASGI, Django runs each request's synchronous code on a thread of its own (its
    ThreadSensitiveContext), which ends with the request: a connection that thread opened can
    never be used again, yet CONN_MAX_AGE keeps it open until the garbage collector finds it —
    dozens of idle PostgreSQL connections per web process between collections. The signal comes
    on that thread (the response's close). A connection inside a transaction is left alone.
    """
    if sender is not ASGIHandler:
        return
    for conn in connections.all(initialized_only=True):
        if not conn.in_atomic_block:
            conn.close()


request_finished.connect(_request_thread_connections_close)

from a2a_site.origin import SameOriginValidator  # noqa: E402
from a2a_site.routing import websocket_urlpatterns  # noqa: E402

# The protocol edges are imported here, before any of this process's threads start: the `mcp`
# package imports itself in a circle that only completes when one thread does it alone (a
# thread importing it at the same moment found it half-initialized and the server died).
from workflows.a2a.app import a2a_application, is_a2a_path  # noqa: E402
from workflows.mcp.server import mcp_endpoint  # noqa: E402
from workflows.workers import HeartbeatThread, loop_watch  # noqa: E402

if settings.EXECUTION_MODE == "embedded" and settings.EXECUTOR_AUTOSTART:
    # The web process executes runs itself: start its executor (and its reaper) with the server,
    # so runs a previous process left behind are resumed without waiting for a new one.
    from workflows.executor import process_executor

    process_executor()

from a2a_site.process_gauges import gauges  # noqa: E402

# Memory, lag and WebSockets of this process, for /metrics (in the embedded mode it runs too).
gauges.publisher_ensure(kind="embedded" if settings.EXECUTION_MODE == "embedded" else "web")

a2a_app = a2a_application()


def is_mcp_path(path: str) -> bool:
    return path == "/mcp" or path.startswith("/mcp/")


async def http_app(scope: Any, receive: Any, send: Any) -> Any:
    """HTTP: /a2a/… to the A2A SDK's routes (workflows/a2a), /mcp to the MCP endpoint
    (workflows/mcp; streamable HTTP), everything else to Django. The two protocol edges
    authenticate bearer API tokens themselves: Django's middleware does not run for them."""
    path = scope["path"]
    if is_a2a_path(path):
        return await a2a_app(scope, receive, send)
    if is_mcp_path(path):
        return await mcp_endpoint(scope, receive, send)
    return await django_asgi_app(scope, receive, send)


router = ProtocolTypeRouter(
    {
        "http": http_app,
        "websocket": SameOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)


class _LoopWatched:
    """The server's event loop is measured in this process's heartbeats (its lag)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.watched = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> Any:
        if not self.watched:
            self.watched = True
            loop_watch(asyncio.get_running_loop())
        return await self.app(scope, receive, send)


application = _LoopWatched(router)

if settings.EXECUTION_MODE != "embedded" and settings.WEB_HEARTBEAT:
    # In the distributed mode the web process executes no runs, but it is a process to watch:
    # it reports itself like the workers do (the embedded executor's heartbeat covers the other).
    web_heartbeat = HeartbeatThread(name=f"web@{socket.gethostname()}:{os.getpid()}", kind="web")
    web_heartbeat.start()
    atexit.register(web_heartbeat.stop)  # a server stopped on purpose says goodbye
