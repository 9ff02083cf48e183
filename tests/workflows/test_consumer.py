"""The run WebSocket through the real ASGI stack (origin check, session auth, routing).

The same tests run on the in-memory channel layer (embedded pass) and on Redis (services pass,
REDIS_URL set). Waiting is on messages with bounded timeouts, never on the clock.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from asgiref.sync import SyncToAsync, sync_to_async
from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer, get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import connections
from django.test import Client
from django.utils import timezone

from a2a_site.accounts.models import User, Workspace
from a2a_site.asgi import application
from tests.conftest import Personas
from workflows import consumers, fanout
from workflows.fanout import live_fanout
from workflows.live import publish_delta, publish_events, publish_status, run_group
from workflows.models import Run, RunEvent
from workflows.services.workflows import EMPTY_GRAPH, workflow_create, workflow_publish

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://127.0.0.1")
HOST = (b"host", b"127.0.0.1")
TIMEOUT = 5


def make_run(workspace: Workspace, user: User) -> Run:
    workflow = workflow_create(
        workspace=workspace, user=user, name=f"Live {uuid.uuid4().hex[:8]}", graph=EMPTY_GRAPH
    )
    version = workflow_publish(workflow=workflow, user=user)
    return Run.objects.create(
        workspace=workspace, workflow=workflow, version=version, created_by=user
    )


def add_events(run: Run, count: int, *, start: int = 1, kind: str = "log") -> None:
    RunEvent.objects.bulk_create(
        RunEvent(run=run, seq=seq, kind=kind, step_key=f"step-{seq}", data={"n": seq})
        for seq in range(start, start + count)
    )


def live_event(seq: int, kind: str = "log", **data: Any) -> dict[str, Any]:
    return {
        "seq": seq,
        "kind": kind,
        "step_key": f"step-{seq}",
        "data": data or {"n": seq},
        "at": timezone.now().isoformat(),
    }


@pytest.fixture(autouse=True)
def _close_consumer_connections() -> Iterator[None]:
    yield
    # The consumers' reads ran on asgiref's shared sync thread: close what they opened there, or
    # PostgreSQL refuses to drop the test database at the end of the session.
    asyncio.run(sync_to_async(connections.close_all)())


@pytest.fixture
def run(personas: Personas) -> Run:
    return make_run(personas.workspace, personas.owner)


Headers = list[tuple[bytes, bytes]]


def signed_in(user: User) -> Headers:
    """A browser's handshake headers: its session cookie, the host it asks for and this site's
    origin."""
    client = Client()
    client.force_login(user)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    return [(b"cookie", f"{settings.SESSION_COOKIE_NAME}={session}".encode()), HOST, ORIGIN]


@pytest.fixture
def as_viewer(personas: Personas) -> Headers:
    return signed_in(personas.viewer)


@pytest.fixture
def as_owner(personas: Personas) -> Headers:
    return signed_in(personas.owner)


def communicator(run_id: Any, headers: Headers) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, f"/ws/runs/{run_id}/", headers=headers)


async def open_socket(run_id: Any, headers: Headers) -> WebsocketCommunicator:
    socket = communicator(run_id, headers)
    connected, _ = await socket.connect(timeout=TIMEOUT)
    assert connected
    return socket


async def close_code(socket: WebsocketCommunicator) -> int:
    message = await socket.receive_output(timeout=TIMEOUT)
    assert message["type"] == "websocket.close", message
    return int(message["code"])


async def until(
    socket: WebsocketCommunicator, done: Callable[[dict[str, Any]], bool], limit: int = 5000
) -> list[dict[str, Any]]:
    """Every message up to and including the first for which `done` holds."""
    messages = []
    for _ in range(limit):
        message = await socket.receive_json_from(timeout=TIMEOUT)
        messages.append(message)
        if done(message):
            return messages
    raise AssertionError(f"no final message in {limit}")


def is_status(message: dict[str, Any]) -> bool:
    return message["type"] == "status"


def event_seqs(messages: list[dict[str, Any]]) -> list[int]:
    return [message["seq"] for message in messages if message["type"] == "event"]


async def subscribe(socket: WebsocketCommunicator, after_seq: int) -> list[dict[str, Any]]:
    """Subscribes and returns the replay, up to the status snapshot that ends it."""
    await socket.send_json_to({"type": "subscribe", "after_seq": after_seq})
    return await until(socket, is_status)


# --- who may connect --------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_anonymous_is_refused(run: Run) -> None:
    socket = communicator(run.pk, [HOST, ORIGIN])
    connected, _ = await socket.connect(timeout=TIMEOUT)
    assert connected  # accepted only to say why: a browser cannot read a refused handshake's code
    assert await close_code(socket) == consumers.CLOSE_UNAUTHENTICATED
    await socket.disconnect()


@pytest.mark.asyncio
async def test_other_workspace_and_missing_runs_are_refused_alike(
    personas: Personas, as_owner: Headers
) -> None:
    foreign = await database_sync_to_async(make_run)(personas.other_workspace, personas.outsider)
    for run_id in (foreign.pk, uuid.uuid4()):
        socket = await open_socket(run_id, as_owner)
        assert await close_code(socket) == consumers.CLOSE_NOT_FOUND
        await socket.disconnect()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "origin",
    [
        b"https://evil.example",
        # Another program on the same machine: same host name, another port or scheme.
        b"http://127.0.0.1:9999",
        b"https://127.0.0.1",
        b"null",
        None,
    ],
)
async def test_foreign_origin_is_refused(run: Run, as_owner: Headers, origin: bytes | None) -> None:
    cookie = as_owner[0]
    headers = [cookie, HOST] + ([(b"origin", origin)] if origin is not None else [])
    socket = communicator(run.pk, headers)
    connected, _ = await socket.connect(timeout=TIMEOUT)
    assert not connected
    await socket.disconnect()


@pytest.mark.asyncio
async def test_the_origin_must_match_the_host_and_port_asked_for(
    run: Run, as_owner: Headers, settings: Any
) -> None:
    cookie = as_owner[0]
    served_on_8000 = [cookie, (b"host", b"127.0.0.1:8000")]
    socket = communicator(run.pk, [*served_on_8000, (b"origin", b"http://127.0.0.1:8000")])
    connected, _ = await socket.connect(timeout=TIMEOUT)
    assert connected
    await socket.disconnect()

    socket = communicator(run.pk, [*served_on_8000, (b"origin", b"http://127.0.0.1:9999")])
    connected, _ = await socket.connect(timeout=TIMEOUT)
    assert not connected
    await socket.disconnect()

    # An origin the administrator listed (a proxy on another port) is let in.
    settings.WEBSOCKET_ALLOWED_ORIGINS = ["http://127.0.0.1:9999"]
    socket = communicator(run.pk, [*served_on_8000, (b"origin", b"http://127.0.0.1:9999")])
    connected, _ = await socket.connect(timeout=TIMEOUT)
    assert connected
    await socket.disconnect()


@pytest.mark.asyncio
async def test_a_viewer_may_watch_and_a_bad_subscribe_closes_4400(
    run: Run, as_viewer: Headers
) -> None:
    for bad in ({"type": "subscribe", "after_seq": -1}, {"type": "subscribe"}, {"type": "hello"}):
        socket = await open_socket(run.pk, as_viewer)
        await socket.send_json_to(bad)
        error = await socket.receive_json_from(timeout=TIMEOUT)
        assert error["type"] == "error"
        assert await close_code(socket) == consumers.CLOSE_BAD_REQUEST
        await socket.disconnect()

    socket = await open_socket(run.pk, as_viewer)
    await socket.send_to(text_data="{not json")
    assert (await socket.receive_json_from(timeout=TIMEOUT))["type"] == "error"
    assert await close_code(socket) == consumers.CLOSE_BAD_REQUEST
    await socket.disconnect()


# --- replay, then live ------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_replay_from_zero_is_exact_and_ordered_across_pages(
    run: Run, as_viewer: Headers
) -> None:
    await database_sync_to_async(add_events)(run, 1203)
    socket = await open_socket(run.pk, as_viewer)
    messages = await subscribe(socket, 0)
    assert event_seqs(messages) == list(range(1, 1204))
    assert [m["type"] for m in messages[-2:]] == ["replayed", "status"]
    assert messages[-2]["last_seq"] == 1203
    first = messages[0]
    assert first["kind"] == "log" and first["step_key"] == "step-1"
    assert first["data"] == {"n": 1} and first["at"] and "html" not in first
    await socket.disconnect()


@pytest.mark.asyncio
async def test_replay_after_k_sends_only_later_events_and_resync_replays_again(
    run: Run, as_viewer: Headers
) -> None:
    await database_sync_to_async(add_events)(run, 30)
    socket = await open_socket(run.pk, as_viewer)
    assert event_seqs(await subscribe(socket, 25)) == [26, 27, 28, 29, 30]
    # A client that noticed a gap resubscribes on the same socket.
    assert event_seqs(await subscribe(socket, 10)) == list(range(11, 31))
    assert event_seqs(await subscribe(socket, 30)) == []
    await socket.disconnect()


@pytest.mark.asyncio
async def test_live_events_during_and_after_replay_arrive_once_in_order(
    run: Run,
    as_viewer: Headers,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await database_sync_to_async(add_events)(run, 1200)
    read_page = consumers.event_page

    async def page_with_live_traffic(run_id: str, after_seq: int, limit: int) -> Any:
        if after_seq == consumers.REPLAY_PAGE:
            # Mid-replay: one event this socket has sent already, one it has not read yet, and
            # one the database has not got (as if committed after the replay's last read).
            await publish_events(run.pk, [live_event(3), live_event(700), live_event(1201)])
        return await read_page(run_id, after_seq, limit)

    monkeypatch.setattr(consumers, "event_page", page_with_live_traffic)
    socket = await open_socket(run.pk, as_viewer)
    await socket.send_json_to({"type": "subscribe", "after_seq": 0})
    messages = await until(socket, lambda m: m["type"] == "event" and m["seq"] == 1201)
    messages += await until(socket, is_status) if not any(map(is_status, messages)) else []
    assert event_seqs(messages) == list(range(1, 1202))

    # After the replay: repeats are dropped, new ones pass, in the order published.
    await publish_events(run.pk, [live_event(5), live_event(1201), live_event(1202)])
    await publish_delta(run.pk, step_key="s", agent="a", text="sentinel")
    after = await until(socket, lambda m: m["type"] == "delta")
    assert event_seqs(after) == [1202]
    await socket.disconnect()


@pytest.mark.asyncio
async def test_deltas_pass_through_and_status_carries_current_totals(
    run: Run, as_viewer: Headers
) -> None:
    socket = await open_socket(run.pk, as_viewer)
    snapshot = (await subscribe(socket, 0))[-1]
    assert snapshot["status"] == "queued"
    assert Decimal(snapshot["totals"]["cost"]) == 0 and "E" not in snapshot["totals"]["cost"]

    await publish_delta(run.pk, step_key="draft", agent="Writer", text="Hel")
    await publish_delta(run.pk, step_key="draft", agent="Writer", text="lo")
    deltas = [await socket.receive_json_from(timeout=TIMEOUT) for _ in range(2)]
    assert deltas == [
        {"type": "delta", "step_key": "draft", "agent": "Writer", "text": "Hel"},
        {"type": "delta", "step_key": "draft", "agent": "Writer", "text": "lo"},
    ]

    started = timezone.now()
    await database_sync_to_async(Run.objects.filter(pk=run.pk).update)(
        status="failed",
        reason="Budget exceeded",
        prompt_tokens=120,
        completion_tokens=30,
        cost=Decimal("0.00123400"),
        model_calls=2,
        steps_completed=3,
        started_at=started,
        finished_at=started,
    )
    await publish_status(run.pk, "failed", "Budget exceeded")
    status = await socket.receive_json_from(timeout=TIMEOUT)
    assert status == {
        "type": "status",
        "status": "failed",
        "reason": "Budget exceeded",
        "totals": {
            "prompt_tokens": 120,
            "completion_tokens": 30,
            "cost": "0.00123400",
            "model_calls": 2,
            "steps_completed": 3,
            "started_at": started.isoformat(),
            "finished_at": started.isoformat(),
        },
    }
    await socket.disconnect()


@pytest.mark.asyncio
async def test_message_html_is_sanitized_in_replay_and_live(run: Run, as_viewer: Headers) -> None:
    text = "**hi** <script>alert(1)</script> [x](javascript:alert(2))"
    await database_sync_to_async(RunEvent.objects.create)(
        run=run, seq=1, kind="message", step_key="a", data={"agent": "A", "text": text}
    )
    socket = await open_socket(run.pk, as_viewer)
    replayed = [m for m in await subscribe(socket, 0) if m["type"] == "event"]
    await publish_events(run.pk, [live_event(2, "message", agent="B", text=text)])
    live = await socket.receive_json_from(timeout=TIMEOUT)
    for message in (replayed[0], live):
        assert message["data"]["text"] == text  # the source as written; only html is rendered
        assert "<strong>hi</strong>" in message["html"]
        assert "<script" not in message["html"] and "&lt;script&gt;" in message["html"]
        assert "href" not in message["html"]
    await socket.disconnect()


@pytest.mark.asyncio
async def test_a_slow_viewer_does_not_delay_the_others(
    run: Run, as_viewer: Headers, as_owner: Headers
) -> None:
    reader = await open_socket(run.pk, as_viewer)
    await subscribe(reader, 0)
    idle = await open_socket(run.pk, as_owner)
    await idle.send_json_to({"type": "subscribe", "after_seq": 0})
    # `idle` is never read from. Its subscription is in place once a message sent after it
    # reaches `reader` (both share the group, and the layer keeps a sender's order).
    await publish_delta(run.pk, step_key="s", agent="a", text="ready")
    await until(reader, lambda m: m["type"] == "delta")

    publishing = 0.0
    received: list[dict[str, Any]] = []
    for window in range(20):
        # Bursts of 20 messages, well inside the layer's per-channel capacity (100); a bigger
        # burst with no consumer running in between is dropped by design (resync covers it).
        for seq in range(window * 10 + 1, window * 10 + 11):
            began = time.perf_counter()
            await publish_events(run.pk, [live_event(seq)])
            await publish_delta(run.pk, step_key=f"step-{seq}", agent="a", text="tok")
            publishing += time.perf_counter() - began
        last = window * 10 + 10
        received += await until(
            reader,
            lambda m, last=last: m.get("step_key") == f"step-{last}" and m["type"] == "delta",
        )
    assert event_seqs(received) == list(range(1, 201))
    assert [m["text"] for m in received if m["type"] == "delta"] == ["tok"] * 200
    assert publishing < 2.0, f"group_send took {publishing:.2f}s for 400 messages"
    await idle.disconnect()
    await reader.disconnect()


# --- the process's feed of a run (workflows.fanout) -------------------------------------------


async def group_size(run_id: Any) -> int:
    """How many members the run's group has on the channel layer."""
    layer = get_channel_layer()
    group = run_group(run_id)
    if isinstance(layer, InMemoryChannelLayer):
        return len(layer.groups.get(group, {}))
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(settings.REDIS_URL)
    try:
        return int(await client.zcard(layer._group_key(group)))
    finally:
        await client.aclose()


def viewers_in_process(run_id: Any) -> list[Any]:
    feed = live_fanout(get_channel_layer()).feeds.get(str(run_id))
    return list(feed.viewers) if feed else []


@pytest.mark.asyncio
async def test_viewers_in_one_process_share_one_group_member(
    run: Run, as_viewer: Headers, as_owner: Headers
) -> None:
    sockets = [await open_socket(run.pk, as_viewer if i % 2 else as_owner) for i in range(5)]
    for socket in sockets:
        await subscribe(socket, 0)
    assert await group_size(run.pk) == 1
    assert len(viewers_in_process(run.pk)) == 5

    await publish_events(run.pk, [live_event(1)])
    for socket in sockets:
        assert event_seqs([await socket.receive_json_from(timeout=TIMEOUT)]) == [1]

    # Those who stay keep receiving; the member goes with the last viewer.
    for socket in sockets[:4]:
        await socket.disconnect()
    assert await group_size(run.pk) == 1
    await publish_events(run.pk, [live_event(2)])
    assert event_seqs([await sockets[4].receive_json_from(timeout=TIMEOUT)]) == [2]
    await sockets[4].disconnect()
    assert await group_size(run.pk) == 0
    assert viewers_in_process(run.pk) == []

    # A viewer after that gets a feed of its own again.
    again = await open_socket(run.pk, as_viewer)
    assert event_seqs(await subscribe(again, 0)) == []
    await publish_events(run.pk, [live_event(3)])
    assert event_seqs([await again.receive_json_from(timeout=TIMEOUT)]) == [3]
    await again.disconnect()
    assert await group_size(run.pk) == 0


@pytest.mark.asyncio
async def test_refused_sockets_never_join_the_feed(personas: Personas, as_owner: Headers) -> None:
    foreign = await database_sync_to_async(make_run)(personas.other_workspace, personas.outsider)
    socket = await open_socket(foreign.pk, as_owner)
    await socket.send_json_to({"type": "subscribe", "after_seq": 0})
    assert await close_code(socket) == consumers.CLOSE_NOT_FOUND
    await socket.disconnect()
    assert await group_size(foreign.pk) == 0
    assert viewers_in_process(foreign.pk) == []


@pytest.mark.asyncio
async def test_live_events_and_deltas_cost_no_database_work_and_status_one_read(
    run: Run, as_viewer: Headers, monkeypatch: pytest.MonkeyPatch
) -> None:
    sockets = [await open_socket(run.pk, as_viewer) for _ in range(3)]
    for socket in sockets:
        await subscribe(socket, 0)

    hops = 0
    real_call = SyncToAsync.__call__

    async def counted_call(self: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal hops
        hops += 1
        return await real_call(self, *args, **kwargs)

    monkeypatch.setattr(SyncToAsync, "__call__", counted_call)
    await publish_events(run.pk, [live_event(1, "message", agent="A", text="**hi**")])
    await publish_delta(run.pk, step_key="s", agent="A", text="tok")
    for socket in sockets:
        assert [m["type"] for m in await until(socket, lambda m: m["type"] == "delta")] == [
            "event",
            "delta",
        ]
    assert hops == 0  # no thread hop (and so no query) per viewer or per message

    await publish_status(run.pk, "running")
    for socket in sockets:
        assert (await socket.receive_json_from(timeout=TIMEOUT))["status"] == "queued"
    assert hops == 1  # one snapshot read for the three viewers
    for socket in sockets:
        await socket.disconnect()


@pytest.mark.asyncio
async def test_a_viewer_stuck_on_sending_delays_nobody_then_resyncs_exactly(
    run: Run, as_viewer: Headers, as_owner: Headers
) -> None:
    reader = await open_socket(run.pk, as_viewer)
    await subscribe(reader, 0)
    stuck = await open_socket(run.pk, as_owner)
    await subscribe(stuck, 0)
    first, second = viewers_in_process(run.pk)
    # Every send of the second socket waits (as on a server that applies backpressure).
    gate = asyncio.Event()
    real_send = second.send

    async def send_when_open(*args: Any, **kwargs: Any) -> None:
        await gate.wait()
        await real_send(*args, **kwargs)

    second.send = send_when_open

    # Stored, then published one by one, as the engine does: more messages than the stuck
    # socket may keep waiting.
    count = consumers.INBOX_LIMIT + 50
    await database_sync_to_async(add_events)(run, count)
    publishing = 0.0
    received: list[dict[str, Any]] = []
    for start in range(1, count + 1, 10):
        began = time.perf_counter()
        for seq in range(start, start + 10):
            await publish_events(run.pk, [live_event(seq)])
        publishing += time.perf_counter() - began
        last = start + 9
        received += await until(reader, lambda m, last=last: m.get("seq") == last)
    assert event_seqs(received) == list(range(1, count + 1))
    assert publishing < 2.0, f"publishing took {publishing:.2f}s"
    assert len(second.inbox) <= consumers.INBOX_LIMIT

    # Unstuck, it gets every stored event once, in order, from the database, then a status.
    gate.set()
    caught_up = await until(stuck, is_status)
    assert event_seqs(caught_up) == list(range(1, count + 1))
    assert caught_up[-2] == {"type": "replayed", "last_seq": count}
    await reader.disconnect()
    await stuck.disconnect()


@pytest.mark.asyncio
async def test_a_feed_renews_its_group_membership(
    run: Run, as_viewer: Headers, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A layer forgets a membership `group_expiry` after it was made; a feed outlives its sockets.
    monkeypatch.setattr(fanout, "membership_refresh_seconds", lambda layer: 0.05)
    socket = await open_socket(run.pk, as_viewer)
    await subscribe(socket, 0)
    joined = await member_since(run.pk)
    deadline = time.monotonic() + TIMEOUT
    while await member_since(run.pk) <= joined:
        assert time.monotonic() < deadline, "the membership was never renewed"
        await asyncio.sleep(0.05)
    await socket.disconnect()
    assert await group_size(run.pk) == 0


async def member_since(run_id: Any) -> float:
    """When the run's one group member joined (or last renewed), as the layer records it."""
    layer = get_channel_layer()
    group = run_group(run_id)
    if isinstance(layer, InMemoryChannelLayer):
        (since,) = layer.groups[group].values()
        return float(since)
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(settings.REDIS_URL)
    try:
        ((_, since),) = await client.zrange(layer._group_key(group), 0, -1, withscores=True)
        return float(since)
    finally:
        await client.aclose()


@pytest.mark.asyncio
async def test_a_feed_that_loses_the_layer_closes_its_sockets_and_the_next_starts_afresh(
    run: Run, as_viewer: Headers, monkeypatch: pytest.MonkeyPatch
) -> None:
    sockets = [await open_socket(run.pk, as_viewer) for _ in range(2)]
    for socket in sockets:
        await subscribe(socket, 0)
    layer = get_channel_layer()

    async def broken_receive(channel: str) -> dict[str, Any]:
        raise ConnectionError("the layer went away")

    # The feed is waiting on a receive already: the next one, after this event, fails.
    monkeypatch.setattr(layer, "receive", broken_receive)
    await publish_events(run.pk, [live_event(1)])
    for socket in sockets:
        assert event_seqs([await socket.receive_json_from(timeout=TIMEOUT)]) == [1]
        # Not silence: the page reconnects and resyncs from its last seq.
        assert await close_code(socket) == consumers.CLOSE_INTERNAL
        await socket.disconnect()
    assert viewers_in_process(run.pk) == []
    assert await group_size(run.pk) == 0

    monkeypatch.undo()
    again = await open_socket(run.pk, as_viewer)
    await subscribe(again, 1)
    await publish_events(run.pk, [live_event(2)])
    assert event_seqs([await again.receive_json_from(timeout=TIMEOUT)]) == [2]
    await again.disconnect()


# --- a viewer arriving mid-message ------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_viewer_arriving_mid_message_gets_it_from_its_first_word(
    run: Run, as_viewer: Headers
) -> None:
    from workflows.live import ChannelLive

    live = ChannelLive()
    # Streamed before anyone watched.
    await live.delta(str(run.pk), step_key="draft", agent="Writer", text="Once upon")
    await live.delta(str(run.pk), step_key="draft", agent="Writer", text=" a time ✨")

    socket = await open_socket(run.pk, as_viewer)
    await subscribe(socket, 0)
    restored = await socket.receive_json_from(timeout=TIMEOUT)
    assert restored == {
        "type": "delta",
        "step_key": "draft",
        "agent": "Writer",
        "text": "Once upon a time ✨",
        "offset": 0,
    }
    # The next batch says where it starts (in characters), so the page keeps each once.
    await live.delta(str(run.pk), step_key="draft", agent="Writer", text=" there")
    following = await socket.receive_json_from(timeout=TIMEOUT)
    assert (following["text"], following["offset"]) == (" there", len("Once upon a time ✨"))

    # Once the message is stored, a new viewer gets the message, not the partial text.
    stored = {**live_event(1, kind="message", text="Once upon a time there"), "step_key": "draft"}
    await publish_events(run.pk, [stored])
    late = await open_socket(run.pk, as_viewer)
    await subscribe(late, 0)
    assert await late.receive_nothing(timeout=0.3)
    await socket.disconnect()
    await late.disconnect()


@pytest.mark.asyncio
async def test_a_finished_run_leaves_no_partial_text(run: Run, as_viewer: Headers) -> None:
    from workflows.live import ChannelLive

    await ChannelLive().delta(str(run.pk), step_key="draft", agent="Writer", text="Half a")
    await publish_status(run.pk, "failed", "The provider stopped answering")

    socket = await open_socket(run.pk, as_viewer)
    await subscribe(socket, 0)
    assert await socket.receive_nothing(timeout=0.3)
    await socket.disconnect()


@pytest.mark.asyncio
async def test_a_resync_sends_what_the_viewer_missed_from_the_database(
    run: Run, as_viewer: Headers
) -> None:
    socket = await open_socket(run.pk, as_viewer)
    await subscribe(socket, 0)
    # Stored while the layer was down: their live copies were lost on the way.
    await database_sync_to_async(add_events)(run, 3)

    layer = get_channel_layer()
    assert layer is not None
    await layer.group_send(run_group(run.pk), {"type": "run.resync"})

    caught_up = await until(socket, is_status)
    assert event_seqs(caught_up) == [1, 2, 3]
    await socket.disconnect()
