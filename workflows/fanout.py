"""One channel-layer subscription per process and run; the run's viewers in this process are fed
from it locally.

A group member per viewer makes every event cost the layer one delivery per viewer: on Redis the
group lists every socket and each message carries all their channel names, then in the web process
one `receive` per viewer — each a round of lock, queue and tasks — comes before a single byte
reaches a socket. Here the process joins the run's group once, with one channel of its own; one
task receives from it and hands each message to every local viewer's `deliver`, which only queues
it (the viewer sends from its own task). So the layer works once per process per message, and a
viewer that is slow to send delays nobody but itself.

Works on any channel layer with groups (in-memory in the embedded mode, Redis when distributed):
it only uses `new_channel`, `group_add`, `group_discard`, `send` and `receive`. The layer still
delivers at most once; viewers keep de-duplicating and resyncing by `seq`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Callable
from typing import Any, Protocol

from channels.layers import BaseChannelLayer

from workflows.live import run_group

logger = logging.getLogger(__name__)

# What every viewer of the run in this process would otherwise compute for itself (the JSON of an
# event, a status snapshot): done once per message, before the viewers see it.
Prepare = Callable[[str, dict[str, Any]], dict[str, Any]]
STOP = "fanout.stop"
STOP_TIMEOUT = 5.0


def membership_refresh_seconds(layer: BaseChannelLayer) -> float:
    # A layer ends a group membership `group_expiry` after it was made (a day by default); a
    # feed outlives the sockets that come and go while others stay, so it renews its own.
    return float(getattr(layer, "group_expiry", 86400)) / 4


class Viewer(Protocol):
    def deliver(self, message: dict[str, Any]) -> None:
        """Takes a message (shared with the other viewers: read it, never change it). Must not
        block or await: queue it and send from the viewer's own task."""

    def feed_lost(self) -> None:
        """The feed cannot receive any more (the layer failed): live messages stop here, so the
        viewer should tell its client to reconnect and resync. Must not block or await."""


class RunFeed:
    """The viewers of one run in this process, and the one layer channel that feeds them."""

    def __init__(
        self,
        layer: BaseChannelLayer,
        run_id: str,
        prepare: Prepare,
        forget: Callable[[RunFeed], None],
    ) -> None:
        self.layer = layer
        self.forget = forget
        self.run_id = run_id
        self.group = run_group(run_id)
        self.prepare = prepare
        self.viewers: dict[Viewer, None] = {}  # an ordered set
        self.channel_name = ""
        self.joined = asyncio.get_running_loop().create_future()
        self.task: asyncio.Task[None] | None = None
        self.renewal: asyncio.Task[None] | None = None

    async def open(self) -> None:
        try:
            self.channel_name = await self.layer.new_channel()
            await self.layer.group_add(self.group, self.channel_name)
        except BaseException as error:
            # The other joiners get an error of their own (not a CancelledError, say).
            self.joined.set_exception(RuntimeError(f"Joining {self.group} failed: {error!r}"))
            self.joined.exception()  # retrieved here, whether or not anyone else waits
            raise
        self.task = asyncio.create_task(self._pump(), name=f"run feed {self.run_id}")
        self.renewal = asyncio.create_task(self._renew(), name=f"run feed {self.run_id} renewal")
        self.joined.set_result(None)

    async def close(self) -> None:
        renewal, self.renewal = self.renewal, None
        if renewal is not None:
            renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewal
        if self.channel_name:
            await self.layer.group_discard(self.group, self.channel_name)
        task, self.task = self.task, None
        if task is None or task.done():
            return
        # The pump is stopped by a message of its own rather than cancelled: channels-redis
        # keeps per-channel locks across a cancelled receive (bound to the loop that made them).
        try:
            await self.layer.send(self.channel_name, {"type": STOP})
            await asyncio.wait_for(asyncio.shield(task), STOP_TIMEOUT)
        except Exception:  # the layer is down, or the pump does not answer: cancel it
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _renew(self) -> None:
        interval = membership_refresh_seconds(self.layer)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.layer.group_add(self.group, self.channel_name)
            except Exception:  # the layer is down: try again next time
                logger.warning("Could not renew the live feed of run %s", self.run_id)

    async def _pump(self) -> None:
        try:
            while True:
                message = await self.layer.receive(self.channel_name)
                if message.get("type") == STOP:
                    return
                try:
                    prepared = self.prepare(self.run_id, message)
                except Exception:
                    logger.exception("Live message for run %s dropped", self.run_id)
                    continue
                # A copy: a viewer leaving (or joining) during the loop does not disturb it.
                for viewer in list(self.viewers):
                    viewer.deliver(prepared)
        except Exception:
            # Whatever the layer sends from now on is lost to these viewers: say so (their
            # clients reconnect and resync from the database) rather than go quiet.
            logger.exception("The live feed of run %s lost its channel", self.run_id)
            self.forget(self)
            if self.renewal is not None:
                self.renewal.cancel()
            viewers, self.viewers = list(self.viewers), {}
            for viewer in viewers:
                viewer.feed_lost()
            with contextlib.suppress(Exception):
                await self.layer.group_discard(self.group, self.channel_name)


class LiveFanout:
    """This process's run feeds, on one event loop and one channel layer."""

    def __init__(self, layer: BaseChannelLayer) -> None:
        self.layer = layer
        self.feeds: dict[str, RunFeed] = {}

    async def join(self, run_id: str, viewer: Viewer, prepare: Prepare) -> None:
        """Returns once the process is in the run's group: whatever is published from then on
        reaches `viewer`."""
        feed = self.feeds.get(run_id)
        if feed is None:
            feed = self.feeds[run_id] = RunFeed(self.layer, run_id, prepare, self._forget)
            feed.viewers[viewer] = None
            try:
                await feed.open()
            except BaseException:
                if self.feeds.get(run_id) is feed:
                    del self.feeds[run_id]
                raise
            return
        feed.viewers[viewer] = None
        try:
            await asyncio.shield(feed.joined)
        except BaseException:
            feed.viewers.pop(viewer, None)
            raise

    def _forget(self, feed: RunFeed) -> None:
        if self.feeds.get(feed.run_id) is feed:
            del self.feeds[feed.run_id]

    async def leave(self, run_id: str, viewer: Viewer) -> None:
        feed = self.feeds.get(run_id)
        if feed is None or viewer not in feed.viewers:
            return
        del feed.viewers[viewer]
        if not feed.viewers:
            # Out of the table before the awaits: a viewer joining meanwhile opens a new feed.
            del self.feeds[run_id]
            await feed.close()


_fanouts: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LiveFanout] = (
    weakref.WeakKeyDictionary()
)


def live_fanout(layer: BaseChannelLayer) -> LiveFanout:
    """The fan-out of the running loop: a layer's connections (and so its feeds) are per loop."""
    loop = asyncio.get_running_loop()
    fanout = _fanouts.get(loop)
    if fanout is None or fanout.layer is not layer:
        fanout = _fanouts[loop] = LiveFanout(layer)
    return fanout
