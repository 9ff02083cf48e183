"""The distributed mode on a Redis of the test's own, for tests that take Redis away.

One daphne and one Celery worker share a private Redis (broker and channel layer) and the test
database; the test stops and restarts that Redis (`stack.redis`), never the shared one.
"""

from __future__ import annotations

import json
import string
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.test import Client

from a2a_site.accounts.models import User, Workspace
from tests.agents.factories import make_agent, make_provider
from tests.support.processes import ServerProcess, start_celery_worker, start_daphne
from tests.support.redis_server import PrivateRedis, private_redis
from workflows.graph import examples
from workflows.models import Workflow
from workflows.services.workflows import workflow_create, workflow_publish

CSRF_TOKEN = string.ascii_letters[:32]


@dataclass
class Stack:
    redis: PrivateRedis
    daphne: ServerProcess
    url: str
    worker: ServerProcess

    def assert_running(self) -> None:
        self.daphne.assert_running()
        self.worker.assert_running()


@contextmanager
def outage_stack(model_url: str, name: str = "outage", **extra: str) -> Iterator[Stack]:
    with private_redis(f"redis-{name}") as redis:
        env = {
            "REDIS_URL": redis.url(),
            "A2A_EXECUTION_MODE": "celery",
            "A2A_DEMO_MODEL_URL": model_url,
            "A2A_OUTBOUND_ALLOWED_HOSTS": "127.0.0.1",
            "A2A_RUN_HEARTBEAT_SECONDS": "1",
            **extra,
        }
        daphne, url = start_daphne(f"daphne-{name}", **env)
        worker: ServerProcess | None = None
        try:
            worker = start_celery_worker(f"{name}-{uuid.uuid4().hex[:6]}", **env)
            yield Stack(redis, daphne, url, worker)
        finally:
            if worker is not None:
                worker.stop()
            daphne.stop()


def priced_pipeline(workspace: Workspace, owner: User) -> Workflow:
    """The research pipeline on a provider that charges, so a lost cost shows as a zero."""
    provider = make_provider(
        workspace, input_price_per_1k=Decimal("0.5"), output_price_per_1k=Decimal("1.5")
    )
    researcher, analyst, writer = (
        make_agent(workspace, name=name, provider=provider)
        for name in ("Researcher", "Analyst", "Writer")
    )
    graph = examples.research_pipeline(str(researcher.pk), str(analyst.pk), str(writer.pk))
    workflow = workflow_create(workspace=workspace, user=owner, name="Outage pipeline", graph=graph)
    workflow_publish(workflow=workflow, user=owner)
    return workflow


def session_cookie(user: User) -> tuple[str, str]:
    """(name, value) of a signed-in session for `user`, valid in the processes we start."""
    client = Client()
    client.force_login(user)
    return settings.SESSION_COOKIE_NAME, client.cookies[settings.SESSION_COOKIE_NAME].value


def browser_cookie(user: User) -> str:
    """A signed-in browser's cookies: its session, and a CSRF token it echoes in a header."""
    name, value = session_cookie(user)
    return f"{name}={value}; {settings.CSRF_COOKIE_NAME}={CSRF_TOKEN}"


def launch(stack: Stack, workflow: Workflow, cookie: str, topic: str) -> tuple[int, dict[str, Any]]:
    """POST /workflows/<id>/runs.json, as a script would."""
    request = urllib.request.Request(
        f"{stack.url}/workflows/{workflow.pk}/runs.json",
        data=json.dumps({"inputs": {"topic": topic}}).encode(),
        headers={
            "Content-Type": "application/json",
            "Cookie": cookie,
            "X-CSRFToken": CSRF_TOKEN,
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, {"body": error.read().decode(errors="replace")[:500]}
