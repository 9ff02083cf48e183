"""The text of messages still streaming, kept so a viewer who (re)opens a run mid-message sees it
from its first word, not from the next delta on.

Deltas are never stored in the database (see ARCHITECTURE.md); the partial text of each step that
is streaming lives next to the live feed instead: in Redis (one hash per run, beside the run's
group, expiring on its own) with the Redis layer, in this process's memory with the in-memory
layer of the embedded mode, where the engine and the viewers share a process. Offsets are counted
in characters (code points) of the step's text; each delta says where it starts, so a viewer
that receives the snapshot and then deltas overlapping it keeps each character once.

It is a convenience for viewers, never a dependency of a run: every failure here is swallowed.
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

logger = logging.getLogger(__name__)

PARTIAL_TTL_S = 3600
# Steps streaming at once in one engine process; older entries are forgotten first.
LOCAL_LIMIT = 2000

# What this process is streaming: (run, step) → (agent, text so far).
_streaming: OrderedDict[tuple[str, str], tuple[str, str]] = OrderedDict()
# The embedded mode's store, read by viewers in this same process: run → step → (agent, text).
_local: dict[str, dict[str, tuple[str, str]]] = {}


def partials_key(run_id: Any) -> str:
    return f"a2a:run:{run_id}:partials"


def watcher_count_args(layer: Any, group: str) -> tuple[str, str, str]:
    """ZCOUNT arguments counting the members the Redis layer's group_send would keep (it drops
    those whose score is at most now - group_expiry)."""
    oldest = int(time.time()) - layer.group_expiry
    return layer._group_key(group), f"({oldest}", "+inf"


def _redis(layer: Any, group: str) -> Any | None:
    if not hasattr(layer, "consistent_hash") or not hasattr(layer, "connection"):
        return None
    return layer.connection(layer.consistent_hash(group))


def partial_advance(run_id: Any, step_key: str, agent: str, text: str) -> tuple[int, str]:
    """Adds a delta to the step's text; returns where the delta starts and the whole text."""
    key = (str(run_id), step_key)
    _, before = _streaming.pop(key, (agent, ""))
    whole = before + text
    _streaming[key] = (agent, whole)
    while len(_streaming) > LOCAL_LIMIT:
        _streaming.popitem(last=False)
    return len(before), whole


async def partial_save(
    layer: Any, group: str, run_id: Any, step_key: str, agent: str, text: str
) -> bool:
    """Stores the step's text so far; answers whether anyone watches the run's group.

    With Redis, both in one round trip: the partial is written whether or not anyone watches
    (a viewer may open the page in the next second), and the watcher count decides whether the
    delta itself is sent.
    """
    connection = _redis(layer, group)
    if connection is None:
        _local.setdefault(str(run_id), {})[step_key] = (agent, text)
        return True
    try:
        pipe = connection.pipeline(transaction=False)
        pipe.hset(partials_key(run_id), step_key, json.dumps({"agent": agent, "text": text}))
        pipe.expire(partials_key(run_id), PARTIAL_TTL_S)
        pipe.zcount(*watcher_count_args(layer, group))
        *_, watchers = await pipe.execute()
    except Exception as error:  # noqa: BLE001 - viewers resync from the stored messages
        logger.debug("Partial text of %s/%s not kept (%s)", run_id, step_key, error)
        return True
    return bool(watchers)


async def partial_forget(layer: Any, group: str, run_id: Any, step_keys: Iterable[str]) -> None:
    """The steps' messages are stored now: their partial text is no longer needed."""
    run = str(run_id)
    streamed = [key for key in step_keys if _streaming.pop((run, key), None) is not None]
    local = _local.get(run)
    if local is not None:
        for key in step_keys:
            local.pop(key, None)
        if not local:
            _local.pop(run, None)
    connection = _redis(layer, group)
    if not streamed or connection is None:
        return
    try:
        await connection.hdel(partials_key(run_id), *streamed)
    except Exception as error:  # noqa: BLE001 - it expires on its own
        logger.debug("Partial text of %s not removed (%s)", run_id, error)


async def partial_clear(layer: Any, group: str, run_id: Any) -> None:
    """The run ended: whatever was still streaming will never finish."""
    run = str(run_id)
    for key in [key for key in _streaming if key[0] == run]:
        _streaming.pop(key, None)
    _local.pop(run, None)
    connection = _redis(layer, group)
    if connection is None:
        return
    try:
        await connection.delete(partials_key(run_id))
    except Exception as error:  # noqa: BLE001 - it expires on its own
        logger.debug("Partial texts of %s not removed (%s)", run_id, error)


async def partials_of(layer: Any, group: str, run_id: Any) -> list[dict[str, str]]:
    """The run's messages still streaming: [{"step_key", "agent", "text"}]."""
    connection = _redis(layer, group)
    if connection is None:
        found = dict(_local.get(str(run_id), {}))
        return [{"step_key": k, "agent": a, "text": t} for k, (a, t) in found.items()]
    try:
        raw = await connection.hgetall(partials_key(run_id))
    except Exception as error:  # noqa: BLE001 - the viewer sees the next deltas only
        logger.debug("Partial texts of %s not read (%s)", run_id, error)
        return []
    partials = []
    for key, value in raw.items():
        try:
            data = json.loads(value)
        except ValueError:
            continue
        step_key = key.decode() if isinstance(key, bytes) else str(key)
        partials.append(
            {"step_key": step_key, "agent": str(data["agent"]), "text": str(data["text"])}
        )
    return partials
