"""“Pull model onto node”: Ollama downloads a model while the page shows its progress.

The download runs outside the request (a Celery task in the distributed mode, a thread in the
embedded mode) and reports progress through the cache, which both the worker and the web process
reach. When it ends, the node is probed again, so its model list is current.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connections, transaction

from agents.models import OllamaNode
from agents.urlpolicy import policy_resolver

logger = logging.getLogger(__name__)

PULL_CACHE_SECONDS = 3600
PULL_NOT_QUEUED = (
    "The download could not be queued: the task queue (Redis) does not answer. Try again."
)
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,150}(:[A-Za-z0-9._-]{1,80})?$")


@dataclass
class PullProgress:
    model: str
    status: str = "queued"
    completed: int = 0
    total: int = 0
    done: bool = False
    error: str = ""

    @property
    def percent(self) -> int:
        return int(100 * self.completed / self.total) if self.total else 0


def _key(node_id: int, model: str) -> str:
    return f"a2a:pull:{node_id}:{model}"


def pull_progress(node_id: int, model: str) -> PullProgress | None:
    if not MODEL_NAME.match(model):  # no pull of it was started; not a cache key either
        return None
    try:
        data = cache.get(_key(node_id, model))
    except Exception as error:  # noqa: BLE001 - the cache (Redis) may be away for a while
        logger.warning("Pull progress of %s not read (%s)", model, type(error).__name__)
        return PullProgress(
            model=model, status="progress unknown for now: the cache does not answer"
        )
    return PullProgress(**data) if data else None


def _save(node_id: int, progress: PullProgress) -> None:
    try:
        cache.set(_key(node_id, progress.model), asdict(progress), PULL_CACHE_SECONDS)
    except Exception as error:  # noqa: BLE001 - the download goes on; its page shows less
        logger.warning("Pull progress of %s not saved (%s)", progress.model, type(error).__name__)


async def _pull(base_url: str, progress: PullProgress, publish: Any) -> None:
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=300)
    async with (
        aiohttp.ClientSession(
            timeout=timeout, connector=aiohttp.TCPConnector(resolver=policy_resolver())
        ) as session,
        session.post(
            f"{base_url}/api/pull", json={"model": progress.model}, allow_redirects=False
        ) as response,
    ):
        if response.status != 200:
            text = (await response.text())[:200]
            raise RuntimeError(f"Ollama refused the pull (HTTP {response.status}): {text}")
        async for raw in response.content:
            line = raw.strip()
            if not line:
                continue
            event = json.loads(line)
            if "error" in event:
                raise RuntimeError(str(event["error"])[:200])
            progress.status = str(event.get("status", progress.status))
            if event.get("total"):
                progress.total = int(event["total"])
                progress.completed = int(event.get("completed") or 0)
            publish(progress)
        if progress.status != "success":
            raise RuntimeError("The download ended before Ollama reported success.")


def node_pull_run(node_id: int, model: str) -> PullProgress:
    """Pulls `model` onto the node, publishing progress; the Celery task and the thread run this."""
    from agents.services.nodes import _probe_and_record

    node = OllamaNode.objects.get(pk=node_id)
    progress = PullProgress(model=model, status="starting")
    _save(node_id, progress)
    try:
        asyncio.run(_pull(node.base_url, progress, lambda p: _save(node_id, p)))
    except (aiohttp.ClientError, TimeoutError, RuntimeError, ValueError) as error:
        progress.error = str(error) or type(error).__name__
    # Probe before saying "done", so whoever sees done also sees the node's new model list.
    _probe_and_record([node])
    progress.done = True
    _save(node_id, progress)
    return progress


def _pull_in_thread(node_id: int, model: str) -> None:
    # A thread of its own gets database connections of its own; close them when it ends.
    try:
        node_pull_run(node_id, model)
    finally:
        connections.close_all()


def node_pull_start(*, node: OllamaNode, model: str) -> PullProgress:
    model = model.strip()
    if not MODEL_NAME.match(model):
        raise ValidationError({"model": "Enter a model name such as llama3.2 or qwen2.5:7b."})
    current = pull_progress(node.pk, model)
    if current is not None and not current.done:
        return current  # already downloading: show its progress rather than start twice
    progress = PullProgress(model=model)
    _save(node.pk, progress)
    if settings.EXECUTION_MODE == "celery":
        from agents.tasks import ollama_pull

        def send() -> None:
            try:
                ollama_pull.delay(node.pk, model)
            except Exception as error:  # noqa: BLE001 - said on the page, not a 500
                logger.warning("Pull of %s not queued (%s)", model, type(error).__name__)
                _save(node.pk, PullProgress(model=model, done=True, error=PULL_NOT_QUEUED))

        transaction.on_commit(send)
    else:
        threading.Thread(
            target=_pull_in_thread, args=(node.pk, model), name=f"pull:{model}", daemon=True
        ).start()
    return progress
