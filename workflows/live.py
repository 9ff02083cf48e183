"""Live traffic of a run over the channel layer: stored events after they commit, and token deltas.

Delivery here is at most once (the layer drops what it cannot deliver in time; a web process
receives a run's messages once and fans them out to its sockets, see `workflows.fanout`); viewers
that missed something re-read the stored events by `seq`, so nothing is lost.

The live copy is never on a run's critical path. Publishing only puts the message in this event
loop's `LiveOutbox` and returns; the outbox sends from a task of its own, in order, each send
bounded in time. When the layer fails (Redis restarting, say) it drops what waits and, for a short
while, whatever comes next, then tries again: the stored events are the truth, and the viewers'
sockets, closed by the same outage, resync from the database when they reconnect. So a dead Redis
costs a run its live audience for a moment, never a step, a model call or its cost.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from channels.layers import get_channel_layer

from workflows.partials import (
    partial_advance,
    partial_clear,
    partial_forget,
    partial_save,
    watcher_count_args,
)

logger = logging.getLogger(__name__)

# Live messages waiting on one loop before the oldest are dropped (a viewer resyncs by `seq`).
OUTBOX_LIMIT = 2000
# One send may take this long before it counts as a failed layer.
SEND_TIMEOUT_S = 2.0
# After a failure, messages are dropped for this long instead of each waiting on a dead layer.
RETRY_AFTER_S = 1.0

Send = Callable[[str, dict[str, Any]], Awaitable[None]]

# Outbox entries that are not messages for viewers but work on the partial texts of the run's
# messages still streaming (see `workflows.partials`), done in order with the messages.
PARTIALS_FORGET = "a2a.partials.forget"
# Sent to a run's viewers once the layer answers again after live messages to them were lost:
# each consumer then replays, from the database, whatever it has not sent yet.
RESYNC = "run.resync"
# How long the outbox keeps trying to tell viewers to resync while the layer stays down.
RESYNC_GIVE_UP_S = 120.0
PARTIALS_CLEAR = "a2a.partials.clear"
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})


def run_group(run_id: Any) -> str:
    return f"run.{run_id}"


async def _watched(layer: Any, group: str) -> bool:
    """Whether the group has a member now, in one Redis command.

    The Redis layer's group_send first expires and lists the group's members (two round
    trips) even when nobody watches, which is most runs most of the time. Counting the members
    it would keep is one; a viewer who joins after the count replays the stored events from
    the database anyway, as it does after any message it missed.
    """
    groups = getattr(layer, "groups", None)
    if isinstance(groups, dict):
        # The in-memory layer of the embedded mode, in this process. Its group_send first
        # sweeps every channel and group for expired entries (most of a millisecond on the
        # run's loop), even when the group is empty, as it is for most runs.
        return bool(groups.get(group))
    group_key = getattr(layer, "_group_key", None)
    if group_key is None or not hasattr(layer, "consistent_hash"):
        return True
    connection = layer.connection(layer.consistent_hash(group))
    return bool(await connection.zcount(*watcher_count_args(layer, group)))


# When the message being sent was put in its outbox (the pump sets it for each send).
_put_at: contextvars.ContextVar[float | None] = contextvars.ContextVar("live_put_at", default=None)
# How long a count of a group's members may serve later messages put before it was asked.
ANSWER_TTL_S = 1.0


class WatchAnswers:
    """The counts of a loop's groups, shared by every message they can answer for.

    A count asked at time T answers for every message of the group put before T: its event was
    stored before the count, so a viewer the count missed joined after it, and replays that
    event from the database when it subscribes. One count then serves a step's messages and
    the engine's question whether to stream its model call, instead of one count each; a
    message put after the last count is asked about anew, so nothing a viewer needs is
    skipped. A count still on its way is awaited rather than asked again.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.known: dict[str, tuple[bool, float]] = {}
        self.asking: dict[str, tuple[asyncio.Future[bool], float]] = {}
        self.asked = 0

    async def watched(self, layer: Any, group: str, put_at: float | None) -> bool:
        now = self.clock()
        if put_at is not None:
            known = self.known.get(group)
            if known is not None and put_at <= known[1] and now - known[1] < ANSWER_TTL_S:
                return known[0]
            asking = self.asking.get(group)
            if asking is not None and put_at <= asking[1]:
                await asyncio.wait([asking[0]])
                if not asking[0].cancelled() and asking[0].exception() is None:
                    return asking[0].result()
                # That count failed or was given up on: this message asks its own.
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.asking[group] = (future, now)
        self.asked += 1
        try:
            answer = await _watched(layer, group)
        except BaseException as error:
            if isinstance(error, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(error)
                future.exception()  # retrieved here; whoever waited on it asks anew
            raise
        finally:
            if self.asking.get(group, (None,))[0] is future:
                del self.asking[group]
        future.set_result(answer)
        if len(self.known) > 2000:
            self.known = {g: k for g, k in self.known.items() if now - k[1] < ANSWER_TTL_S}
        self.known[group] = (answer, now)
        return answer

    def forget(self, group: str) -> None:
        self.known.pop(group, None)


_answers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, WatchAnswers] = (
    weakref.WeakKeyDictionary()
)


def watch_answers() -> WatchAnswers:
    loop = asyncio.get_running_loop()
    answers = _answers.get(loop)
    if answers is None:
        answers = _answers[loop] = WatchAnswers()
    return answers


async def _group_send(group: str, message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    kind = message.get("type")
    if kind == PARTIALS_FORGET:
        await partial_forget(layer, group, message["run_id"], message["step_keys"])
        return
    if kind == PARTIALS_CLEAR:
        await partial_clear(layer, group, message["run_id"])
        return
    partial = message.get("partial")
    if partial is not None:
        # The step's text so far is kept whether or not anyone watches (one may arrive in the
        # next second), in the same round trip as the count of watchers.
        message = {key: value for key, value in message.items() if key != "partial"}
        watched = await partial_save(layer, group, *partial)
        if watched and isinstance(getattr(layer, "groups", None), dict):
            watched = await _watched(layer, group)
    elif isinstance(getattr(layer, "groups", None), dict):
        watched = await _watched(layer, group)  # in this process: no round trip to save
    else:
        watched = await watch_answers().watched(layer, group, _put_at.get())
    if message.get("type") == "run.status" and message.get("status") in TERMINAL:
        watch_answers().forget(group)
    if watched:
        await layer.group_send(group, message)


class LiveOutbox:
    """Live messages on their way to the channel layer, from one event loop. Never raises.

    `put` never waits: the engine goes on at once. One task per loop sends what waits, in order
    (it ends when nothing waits; the next `put` starts another). At most `limit` messages wait;
    beyond that the oldest go. A failed or slow send drops what waits and whatever is put during
    the next `retry_after_s`; then the outbox tries the layer again. The groups that lost
    messages are remembered: once the layer answers again, each gets a `run.resync`, so a viewer
    whose socket outlived the outage (or reconnected before this process could send again)
    catches up from the stored events instead of missing the run's last messages.
    """

    def __init__(
        self,
        *,
        send: Send = _group_send,
        limit: int = OUTBOX_LIMIT,
        send_timeout_s: float = SEND_TIMEOUT_S,
        retry_after_s: float = RETRY_AFTER_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.send = send
        self.limit = limit
        self.send_timeout_s = send_timeout_s
        self.retry_after_s = retry_after_s
        self.clock = clock
        self.waiting: deque[tuple[str, dict[str, Any]]] = deque()
        # When each waiting message was put, in the same order (see `WatchAnswers`).
        self.put_times: deque[float] = deque()
        self.sent = 0
        self.dropped = 0
        self.failures = 0
        self.down_until: float | None = None  # set while the layer is considered down
        self.lost: set[str] = set()  # groups owed a resync
        self.lost_since: float | None = None
        self._sending = False
        self._task: asyncio.Task[None] | None = None

    def put(self, group: str, message: dict[str, Any]) -> None:
        if self.down_until is not None and self.clock() < self.down_until:
            self.dropped += 1
            self._owe_resync(group)
        else:
            if len(self.waiting) >= self.limit:
                dropped_group, _ = self.waiting.popleft()
                self.put_times.popleft()
                self.dropped += 1
                self._owe_resync(dropped_group)
            self.waiting.append((group, message))
            self.put_times.append(time.monotonic())
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._pump())

    async def flush(self) -> None:
        """Returns once nothing waits to be sent (sent, or dropped while the layer is down).
        For tests and orderly shutdowns; resyncs still owed go on in the background."""
        while (self.waiting or self._sending) and self._task is not None and not self._task.done():
            await asyncio.sleep(0.005)

    def close(self) -> None:
        """Stops sending (resyncs still owed included). For tests."""
        if self._task is not None:
            self._task.cancel()

    def _owe_resync(self, group: str) -> None:
        if not self.lost:
            self.lost_since = self.clock()
        self.lost.add(group)

    async def _pump(self) -> None:
        waiting = self.waiting
        while waiting or self.lost:
            if self.down_until is not None:
                remaining = self.down_until - self.clock()
                if remaining > 0:
                    await asyncio.sleep(min(remaining, self.retry_after_s))
                    continue
            put_at: float | None = None
            if waiting:
                group, message = waiting.popleft()
                put_at = self.put_times.popleft() if self.put_times else None
            else:
                if (
                    self.lost_since is not None
                    and self.clock() - self.lost_since > RESYNC_GIVE_UP_S
                ):
                    logger.warning(
                        "The channel layer stayed down; %d run(s) not told to resync live.",
                        len(self.lost),
                    )
                    self.lost.clear()
                    break
                group, message = self.lost.pop(), {"type": RESYNC}
            self._sending = True
            marked = _put_at.set(put_at)
            try:
                await asyncio.wait_for(self.send(group, message), self.send_timeout_s)
            except Exception as error:  # noqa: BLE001 - a live copy must never fail a run
                self._failed(error, group)
                continue
            finally:
                self._sending = False
                _put_at.reset(marked)
            self.sent += 1
            if self.down_until is not None:
                self.down_until = None
                logger.info("The channel layer answers again; live messages resume.")
        if not self.lost:
            self.lost_since = None

    def _failed(self, error: Exception, group: str) -> None:
        self.failures += 1
        lost = len(self.waiting) + 1
        self._owe_resync(group)
        for waiting_group, _ in self.waiting:
            self._owe_resync(waiting_group)
        self.waiting.clear()
        self.put_times.clear()
        self.dropped += lost
        if self.down_until is None:
            # Once per outage, not once per message: viewers resync from the stored events.
            logger.warning(
                "The channel layer failed (%s); %d live message(s) dropped, viewers will resync.",
                type(error).__name__,
                lost,
            )
        self.down_until = self.clock() + self.retry_after_s


_outboxes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LiveOutbox] = (
    weakref.WeakKeyDictionary()
)


def live_outbox() -> LiveOutbox:
    """The running loop's outbox, created on first use."""
    loop = asyncio.get_running_loop()
    outbox = _outboxes.get(loop)
    if outbox is None:
        outbox = _outboxes[loop] = LiveOutbox()
    return outbox


async def publish_events(run_id: Any, events: Sequence[dict[str, Any]]) -> None:
    if not events:
        return
    outbox = live_outbox()
    finished = [e["step_key"] for e in events if e.get("kind") == "message" and e.get("step_key")]
    if finished:
        # The messages are stored: their partial texts are no longer needed.
        forget = {"type": PARTIALS_FORGET, "run_id": str(run_id), "step_keys": finished}
        outbox.put(run_group(run_id), forget)
    outbox.put(run_group(run_id), {"type": "run.events", "events": list(events)})


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
    message: dict[str, Any] = {**delta, "type": "run.delta", "json": json.dumps(delta)}
    if partial is not None:
        message["partial"] = (str(run_id), step_key, agent, partial)
    live_outbox().put(run_group(run_id), message)


async def publish_status(run_id: Any, status: str, reason: str = "") -> None:
    outbox = live_outbox()
    if status in TERMINAL:
        # Whatever was still streaming will never finish.
        outbox.put(run_group(run_id), {"type": PARTIALS_CLEAR, "run_id": str(run_id)})
    outbox.put(run_group(run_id), {"type": "run.status", "status": status, "reason": reason})


def announce_status(run_id: Any, status: str, reason: str = "") -> None:
    """From synchronous code (a view cancelling a run): sends now, bounded, never raises.

    Not through an outbox: the loop `async_to_sync` lends ends with this call.
    """
    from asgiref.sync import async_to_sync

    message = {"type": "run.status", "status": status, "reason": reason}

    async def send() -> None:
        await asyncio.wait_for(_group_send(run_group(run_id), message), SEND_TIMEOUT_S)

    try:
        async_to_sync(send)()
    except Exception as error:  # noqa: BLE001 - the viewers resync; the change is stored
        logger.warning(
            "Run %s: status %s not announced live (%s)", run_id, status, type(error).__name__
        )


# How long the engine waits to learn whether a run is watched before assuming it is.
WATCHING_TIMEOUT_S = 0.5


async def run_watched(run_id: Any) -> bool:
    """Whether the run's group has a member now: a viewer (run page, SSE or A2A stream, each
    through the replay-then-live path of `workflows.consumers`) in any web process.

    In doubt (the layer down or slow) the answer is yes: the caller then streams as it always
    did, which costs time, never a token shown. A viewer who arrives after the answer sees the
    turn's message when it completes, as after any reconnect.
    """
    layer = get_channel_layer()
    if layer is None:
        return False
    if isinstance(getattr(layer, "groups", None), dict):  # in-memory: no round trip
        return await _watched(layer, run_group(run_id))
    outbox = live_outbox()
    if outbox.down_until is not None:
        return True
    try:
        # Asked now: it answers for the messages of the run put so far, too.
        answer = watch_answers().watched(layer, run_group(run_id), None)
        return await asyncio.wait_for(answer, WATCHING_TIMEOUT_S)
    except Exception:  # noqa: BLE001 - the outbox reports the layer's failures
        return True


class ChannelLive:
    """The engine's LiveSink: token deltas go to the run's viewers, never to the database."""

    async def watching(self, run_id: str) -> bool:
        return await run_watched(run_id)

    async def delta(self, run_id: str, *, step_key: str, agent: str, text: str) -> None:
        offset, partial = partial_advance(run_id, step_key, agent, text)
        await publish_delta(
            run_id, step_key=step_key, agent=agent, text=text, offset=offset, partial=partial
        )
