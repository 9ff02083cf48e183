"""Live traffic of a run over the channel layer: stored events after they commit, and token deltas.

Delivery here is at most once (the layer drops what it cannot deliver in time; a web process
receives a run's messages once and fans them out to its sockets, see `workflows.fanout`); viewers
that missed something re-read the stored events by `seq`, so nothing is lost.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from channels.layers import get_channel_layer


def run_group(run_id: Any) -> str:
    return f"run.{run_id}"


async def publish_events(run_id: Any, events: Sequence[dict[str, Any]]) -> None:
    layer = get_channel_layer()
    if layer is None or not events:
        return
    await layer.group_send(run_group(run_id), {"type": "run.events", "events": list(events)})


async def publish_delta(run_id: Any, *, step_key: str, agent: str, text: str) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    delta = {"type": "delta", "step_key": step_key, "agent": agent, "text": text}
    # `json` is what viewers receive, serialized once here rather than once per viewer.
    await layer.group_send(
        run_group(run_id), {**delta, "type": "run.delta", "json": json.dumps(delta)}
    )


async def publish_status(run_id: Any, status: str, reason: str = "") -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    await layer.group_send(
        run_group(run_id), {"type": "run.status", "status": status, "reason": reason}
    )


class ChannelLive:
    """The engine's LiveSink: token deltas go to the run's viewers, never to the database."""

    async def delta(self, run_id: str, *, step_key: str, agent: str, text: str) -> None:
        await publish_delta(run_id, step_key=step_key, agent=agent, text=text)
