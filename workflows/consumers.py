"""The run page's WebSocket: stored events replayed from the database, then the live feed.

Protocol (JSON text frames):

    client → {"type": "subscribe", "after_seq": N}      N ≥ 0; again at any time to resync
    server → {"type": "event", seq, kind, step_key, data, at[, html]}   html for kind "message"
             {"type": "replayed", "last_seq": M}         stored events up to M have been sent
             {"type": "status", status, reason, totals}  after the replay and on each change
             {"type": "delta", step_key, agent, text[, offset]}  token batches, never stored;
                 `offset` is where `text` starts in the step's message (in characters); after
                 the replay, each message still streaming is sent whole from offset 0
             {"type": "error", "error": "..."}           then close 4400

Close codes: 4401 not signed in, 4404 no such run for this user (missing and foreign look the
same), 4400 a malformed message. These are sent after accepting, so a browser can read them
(a refused handshake reaches it as a bare 1006) and stop reconnecting. 4500: the live feed was
lost (the channel layer failed): reconnect, with backoff, and resubscribe from the last `seq`.
(Not 1011: the WebSocket server refuses to send it, and the socket would stay open and silent.)
When the layer is down at subscribe time, the stored events are still replayed before that close,
so a viewer catches up from the database whatever the state of Redis.

The channel layer delivers at most once; `seq` makes the feed whole: the consumer joins the run's
feed before reading the database, so an event is either in the replay or arrives live (or both,
and then it is sent once). A client that sees a gap resubscribes with its last `seq`.

Live messages reach a consumer through its process's feed of the run (`workflows.fanout`): one
group member per process, not per socket. Each consumer queues what the feed delivers and sends it
from a task of its own, so a socket that is slow to take its frames holds up only itself; one that
falls `INBOX_LIMIT` messages behind drops them and resyncs itself from the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import OrderedDict, deque
from functools import lru_cache
from typing import Any

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer
from django.http import Http404

from a2a_site.accounts.access import get_for_member
from a2a_site.json_input import JsonInputError, json_parse
from a2a_site.process_gauges import gauges
from workflows.fanout import live_fanout
from workflows.live import RESYNC, run_group
from workflows.models import Run, RunEvent
from workflows.partials import partials_of
from workflows.rendering import markdown_html

logger = logging.getLogger(__name__)

CLOSE_BAD_REQUEST = 4400
CLOSE_UNAUTHENTICATED = 4401
CLOSE_NOT_FOUND = 4404
# Application codes must be 1000 or 3000–4999: the server refuses to send 1011 ("internal error").
CLOSE_INTERNAL = 4500
REPLAY_PAGE = 500
# Live messages a socket may have waiting before it gives up on them and resyncs from the database
# (the channel layer's own per-channel capacity).
INBOX_LIMIT = 100
EVENT_FIELDS = ("seq", "kind", "step_key", "data", "created_at")
TOTAL_FIELDS = ("prompt_tokens", "completion_tokens", "cost", "model_calls", "steps_completed")


# --- database reads (on the DB thread, never on the loop) ------------------------------------


def _can_watch(user: Any, run_id: str) -> bool:
    # Any role may watch; a foreign run answers exactly like a missing one.
    try:
        get_for_member(Run.objects.only("pk", "workspace_id"), user, run_id)
    except Http404:
        return False
    return True


def _event_page(run_id: str, after_seq: int, limit: int) -> list[dict[str, Any]]:
    rows = (
        RunEvent.objects.filter(run_id=run_id, seq__gt=after_seq)
        .order_by("seq")
        .values(*EVENT_FIELDS)[:limit]
    )
    return [
        {
            "seq": row["seq"],
            "kind": row["kind"],
            "step_key": row["step_key"],
            "data": row["data"],
            "at": row["created_at"].isoformat(),
        }
        for row in rows
    ]


def _status_snapshot(run_id: str) -> dict[str, Any] | None:
    row = (
        Run.objects.filter(pk=run_id)
        .values("status", "reason", "started_at", "finished_at", *TOTAL_FIELDS)
        .first()
    )
    if row is None:
        return None
    totals = {name: row[name] for name in TOTAL_FIELDS}
    # A Decimal: exact as a string, never a float; fixed-point, never "0E-8".
    totals["cost"] = f"{row['cost']:f}"
    for name in ("started_at", "finished_at"):
        totals[name] = row[name].isoformat() if row[name] else None
    return {"type": "status", "status": row["status"], "reason": row["reason"], "totals": totals}


can_watch = database_sync_to_async(_can_watch)
event_page = database_sync_to_async(_event_page)
status_snapshot = database_sync_to_async(_status_snapshot)


# --- pure helpers -----------------------------------------------------------------------------


@lru_cache(maxsize=512)
def _cached_html(text: str) -> str:
    # Every viewer of a run renders the same message: render it once per process, not per viewer.
    return markdown_html(text)


def event_message(event: dict[str, Any]) -> dict[str, Any]:
    message = {
        "type": "event",
        "seq": event["seq"],
        "kind": event["kind"],
        "step_key": event.get("step_key", ""),
        "data": event.get("data", {}),
        "at": event.get("at"),
    }
    if event["kind"] == "message":
        text = message["data"].get("text") if isinstance(message["data"], dict) else None
        message["html"] = _cached_html(text if isinstance(text, str) else "")
    return message


# The JSON of recent events, shared by every viewer in this process: 200 viewers of a run cost
# one serialization per event instead of 200.
_EVENT_TEXT_LIMIT = 4096
_event_texts: OrderedDict[tuple[str, int], str] = OrderedDict()


def event_text(run_id: str, event: dict[str, Any]) -> str:
    key = (run_id, int(event["seq"]))
    text = _event_texts.get(key)
    if text is None:
        text = json.dumps(event_message(event))
        _event_texts[key] = text
        if len(_event_texts) > _EVENT_TEXT_LIMIT:
            _event_texts.popitem(last=False)
    return text


async def status_text(run_id: str) -> str | None:
    snapshot = await status_snapshot(run_id)
    return None if snapshot is None else json.dumps(snapshot)


def prepare_live(run_id: str, message: dict[str, Any]) -> dict[str, Any]:
    """What every viewer of the run in this process sends for a live message, worked out once:
    the JSON of each event, one read of the status snapshot. The result is shared by the
    viewers: read-only."""
    kind = message.get("type")
    if kind == "run.events":
        events = message.get("events", [])
        texts = [(int(event["seq"]), event_text(run_id, event)) for event in events]
        return {"type": "run.events", "events": events, "texts": texts}
    if kind == "run.status":
        # Started now, awaited by each viewer in its turn: one database read per process.
        return {**message, "snapshot": asyncio.ensure_future(status_text(run_id))}
    return message


def parse_subscribe(content: Any) -> int:
    """The `after_seq` of a subscribe message; ValueError says what is wrong with it."""
    if not isinstance(content, dict) or content.get("type") != "subscribe":
        raise ValueError('Expected {"type": "subscribe", "after_seq": N}.')
    after_seq = content.get("after_seq")
    # bool is an int to Python, not to the protocol; seq is a 64-bit column.
    if not isinstance(after_seq, int) or isinstance(after_seq, bool) or not 0 <= after_seq < 2**63:
        raise ValueError("after_seq must be an integer ≥ 0.")
    return after_seq


def parse_frame(text_data: str | None) -> int:
    """The `after_seq` of a client's frame; ValueError says what is wrong with the frame."""
    if text_data is None:
        raise ValueError("Send JSON in text frames, not binary ones.")
    try:
        content = json_parse(text_data, what="The message", max_depth=8)
    except JsonInputError as error:
        raise ValueError(str(error)) from None
    return parse_subscribe(content)


class SentSeqs:
    """Which seqs this socket has sent: everything ≤ `floor`, plus `above`.

    Not just a high-water mark: concurrent branches may publish seq 8 before 7, and 7 must still
    go out when it comes.
    """

    def __init__(self, floor: int) -> None:
        self.floor = floor
        self.above: set[int] = set()

    @property
    def last(self) -> int:
        return max(self.above, default=self.floor)

    def add(self, seq: int) -> bool:
        """Records `seq`; False if it was sent already."""
        if seq <= self.floor or seq in self.above:
            return False
        self.above.add(seq)
        while self.floor + 1 in self.above:
            self.floor += 1
            self.above.discard(self.floor)
        return True


# --- the consumer -----------------------------------------------------------------------------


class RunConsumer(AsyncJsonWebsocketConsumer):
    # No layer channel of its own: live messages come through the process's feed of the run.
    channel_layer_alias = None

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels' dispatch first runs `close_old_connections` on the shared sync thread, one
        # thread hop per message: with many viewers, hops queued on one thread. This consumer
        # never touches the database on the loop; its reads go through
        # `database_sync_to_async`, which closes stale connections before and after each read.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def connect(self) -> None:
        self.run_id = str(self.scope["url_route"]["kwargs"]["run_id"])
        self.live_layer = get_channel_layer()
        self.joined = False
        self.sent = SentSeqs(0)
        self.replaying = False
        self.buffered: list[dict[str, Any]] = []
        self.replay_task: asyncio.Task[None] | None = None
        self.inbox: deque[dict[str, Any]] = deque()
        self.inbox_waiter: asyncio.Future[None] | None = None
        self.overflowed = False
        self.sender_task: asyncio.Task[None] | None = None
        self.closing: asyncio.Future[None] | None = None
        self.authorized = False
        user = self.scope.get("user")
        await self.accept()
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
        elif not await can_watch(user, self.run_id):
            await self.close(code=CLOSE_NOT_FOUND)
        else:
            self.authorized = True

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        gauges.websocket_opened()
        try:
            await super().__call__(scope, receive, send)
        finally:
            gauges.websocket_closed()
            # Also when the consumer failed or was cancelled: the feed must not keep a dead
            # socket (nor its tasks) alive.
            await self._leave_live()

    async def disconnect(self, code: int) -> None:
        await self._leave_live()

    async def _leave_live(self) -> None:
        # Out of the feed before the first await: nothing is delivered to this socket after.
        if getattr(self, "joined", False):
            self.joined = False
            await live_fanout(self.live_layer).leave(self.run_id, self)
        for name in ("replay_task", "sender_task"):
            task = getattr(self, name, None)
            setattr(self, name, None)
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not self.authorized:  # closing already; whatever the client sent meanwhile is moot
            return
        try:
            after_seq = parse_frame(text_data)
        except ValueError as error:
            await self.send_json({"type": "error", "error": str(error)})
            await self.close(code=CLOSE_BAD_REQUEST)
            return
        await self.subscribe(after_seq)

    async def subscribe(self, after_seq: int) -> None:
        # Checked again on every subscribe: membership may have ended since the socket opened.
        if not await can_watch(self.scope["user"], self.run_id):
            self.authorized = False
            await self.close(code=CLOSE_NOT_FOUND)
            return
        if not self.joined and self.live_layer is not None:
            # Join before reading the database: an event committed after the read is then
            # published to us; one committed before it is in the read.
            if self.sender_task is None:
                self.sender_task = asyncio.create_task(self._send_live())
            try:
                await live_fanout(self.live_layer).join(self.run_id, self, prepare_live)
            except Exception as error:  # noqa: BLE001 - the layer is down (Redis restarting)
                logger.warning(
                    "Run %s: live feed unavailable (%s); replaying stored events only.",
                    self.run_id,
                    type(error).__name__,
                )
                await self._replay_then_close(after_seq)
                return
            self.joined = True
        await self._start_replay(SentSeqs(after_seq))

    async def _replay_then_close(self, after_seq: int) -> None:
        """Without a live feed, the viewer still catches up from the database; the close then
        asks it to reconnect (with backoff) for the live part."""
        await self._stop_replay()
        self.sent = SentSeqs(after_seq)
        self.replaying = True
        self.replay_task = asyncio.create_task(self._replay(after_seq, close_after=True))

    async def _start_replay(self, sent: SentSeqs) -> None:
        await self._stop_replay()
        self.sent = sent
        self.buffered = []
        self.replaying = True
        # A task, not inline: live messages keep arriving (into `buffered`) while it runs.
        self.replay_task = asyncio.create_task(self._replay(sent.floor))

    async def _stop_replay(self) -> None:
        task, self.replay_task = self.replay_task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _replay(self, after_seq: int, *, close_after: bool = False) -> None:
        try:
            cursor = after_seq
            while True:
                page = await event_page(self.run_id, cursor, REPLAY_PAGE)
                await self._send_events(page)
                if len(page) < REPLAY_PAGE:
                    break
                cursor = page[-1]["seq"]
            await self._drain()
            await self.send_json({"type": "replayed", "last_seq": self.sent.last})
            await self._send_status()
            await self._send_partials()
            await self._drain()
            # No await between the drain finding the buffer empty and this: nothing slips by.
            self.replaying = False
            if close_after:
                self.authorized = False
                await self.close(code=CLOSE_INTERNAL)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("Replay of run %s failed", self.run_id)
            await self.close(code=CLOSE_INTERNAL)

    async def _drain(self) -> None:
        while self.buffered:
            pending, self.buffered = self.buffered, []
            for message in pending:
                await self._forward(message)

    # Live messages, from the run's feed in this process (see workflows.fanout).

    def deliver(self, message: dict[str, Any]) -> None:
        """Called by the feed for each message; queues it for `_send_live`, never waits."""
        if len(self.inbox) >= INBOX_LIMIT:
            # Hopelessly behind: drop what waits and replay the stored events instead (deltas
            # in between are lost, as the layer would drop them).
            self.inbox.clear()
            self.overflowed = True
        self.inbox.append(message)
        waiter, self.inbox_waiter = self.inbox_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def feed_lost(self) -> None:
        """The feed failed: close, so the page reconnects and resyncs from its last seq."""
        self.joined = False
        self.closing = asyncio.ensure_future(self.close(code=CLOSE_INTERNAL))

    async def _send_live(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                while self.inbox:
                    if self.overflowed:
                        self.overflowed = False
                        # Keeps what was sent: the replay sends only what is missing.
                        await self._start_replay(self.sent)
                    message = self.inbox.popleft()
                    if message.get("type") == RESYNC:
                        # Live messages to this run were lost on the way (the layer was down):
                        # send from the database whatever this socket has not had yet.
                        await self._start_replay(self.sent)
                    elif self.replaying:
                        self.buffered.append(message)
                    else:
                        await self._forward(message)
                self.inbox_waiter = loop.create_future()
                await self.inbox_waiter
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("Live feed of run %s failed", self.run_id)
            await self.close(code=CLOSE_INTERNAL)

    async def _forward(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "run.events":
            texts = message.get("texts")
            if texts is None:
                await self._send_events(message.get("events", []))
            else:
                for seq, text in texts:
                    if self.sent.add(seq):
                        await self.send(text_data=text)
        elif kind == "run.delta":
            # Serialized once by the publisher for every viewer.
            await self.send(text_data=message["json"])
        elif kind == "run.status":
            # The message names the new status only; the row has the current totals too.
            snapshot = message.get("snapshot")
            if snapshot is None:
                await self._send_status()
            else:
                await self._send_status_text(await snapshot)

    async def _send_events(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            if self.sent.add(event["seq"]):
                await self.send(text_data=event_text(self.run_id, event))

    async def _send_partials(self) -> None:
        """Messages still streaming, from their first character: deltas queued meanwhile say
        where they start, and the page keeps each character once."""
        layer = self.live_layer or get_channel_layer()
        if layer is None:
            return
        for partial in await partials_of(layer, run_group(self.run_id), self.run_id):
            await self.send_json({"type": "delta", **partial, "offset": 0})

    async def _send_status(self) -> None:
        await self._send_status_text(await status_text(self.run_id))

    async def _send_status_text(self, text: str | None) -> None:
        if text is None:  # deleted while watched
            await self.close(code=CLOSE_NOT_FOUND)
        else:
            await self.send(text_data=text)
