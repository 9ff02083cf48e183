"""Live traffic of a run over the channel layer: stored events after they commit, and token deltas.

Delivery here is at most once (the layer drops what it cannot deliver in time; a web process
receives a run's messages once and fans them out to its sockets, see `workflows.fanout`); viewers
that missed something re-read the stored events by `seq`, so nothing is lost.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from channels.layers import get_channel_layer

from workflows.partials import partial_advance, partial_clear, partial_forget, partial_save


def run_group(run_id: Any) -> str:
    return f"run.{run_id}"


async def _watched(layer: Any, group: str) -> bool:
    """Whether the group has a member now, in one Redis command.

    The Redis layer's group_send first expires and lists the group's members (two round
    trips) even when nobody watches, which is most runs most of the time. Counting the members
    it would keep is one; a viewer who joins after the count replays the stored events from
    the database anyway, as it does after any message it missed.
    """
    group_key = getattr(layer, "_group_key", None)
    if group_key is None or not hasattr(layer, "consistent_hash"):
        return True  # the in-memory layer: sending to nobody costs nothing
    connection = layer.connection(layer.consistent_hash(group))
    # group_send drops members whose score is at most now - group_expiry: count the others.
    oldest = int(time.time()) - layer.group_expiry
    return bool(await connection.zcount(group_key(group), f"({oldest}", "+inf"))


async def _group_send(group: str, message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None or not await _watched(layer, group):
        return
    await layer.group_send(group, message)


async def publish_events(run_id: Any, events: Sequence[dict[str, Any]]) -> None:
    if not events:
        return
    finished = [e["step_key"] for e in events if e.get("kind") == "message" and e.get("step_key")]
    layer = get_channel_layer()
    if finished and layer is not None:
        await partial_forget(layer, run_group(run_id), run_id, finished)
    await _group_send(run_group(run_id), {"type": "run.events", "events": list(events)})


async def publish_delta(
    run_id: Any,
    *,
    step_key: str,
    agent: str,
    text: str,
    offset: int | None = None,
    partial: str | None = None,
) -> None:
    """Sends a token batch to the run's viewers; with `partial` (the step's text so far, of
    which `text` starts at `offset`), also keeps that text for viewers who arrive mid-message."""
    delta: dict[str, Any] = {"type": "delta", "step_key": step_key, "agent": agent, "text": text}
    if offset is not None:
        delta["offset"] = offset
    # `json` is what viewers receive, serialized once here rather than once per viewer.
    message = {**delta, "type": "run.delta", "json": json.dumps(delta)}
    group = run_group(run_id)
    if partial is None:
        await _group_send(group, message)
        return
    layer = get_channel_layer()
    if layer is not None and await partial_save(layer, group, run_id, step_key, agent, partial):
        await layer.group_send(group, message)


TERMINAL = frozenset({"succeeded", "failed", "cancelled"})


async def publish_status(run_id: Any, status: str, reason: str = "") -> None:
    if status in TERMINAL:
        layer = get_channel_layer()
        if layer is not None:
            await partial_clear(layer, run_group(run_id), run_id)
    await _group_send(run_group(run_id), {"type": "run.status", "status": status, "reason": reason})


class ChannelLive:
    """The engine's LiveSink: token deltas go to the run's viewers, never to the database."""

    async def delta(self, run_id: str, *, step_key: str, agent: str, text: str) -> None:
        offset, partial = partial_advance(run_id, step_key, agent, text)
        await publish_delta(
            run_id, step_key=step_key, agent=agent, text=text, offset=offset, partial=partial
        )
