"""Database threads: a call's answer or error reaches its caller; a call cancelled before it
began is not made; the number of threads stays bounded."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest

from a2a_site.db import _DbThreads, _threads, db_thread_submit, in_db_thread

who: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="nobody")


def test_a_call_returns_its_answer_in_the_callers_context() -> None:
    async def main() -> tuple[str, str]:
        who.set("the caller")
        return await in_db_thread(lambda: (who.get(), threading.current_thread().name))

    seen, thread = asyncio.run(main())
    assert seen == "the caller"
    assert thread.startswith("a2a-db")


def test_a_calls_error_is_raised_to_its_caller() -> None:
    def fails(message: str) -> None:
        raise LookupError(message)

    async def main() -> None:
        await in_db_thread(fails, "no such row")

    with pytest.raises(LookupError, match="no such row"):
        asyncio.run(main())


def test_a_call_cancelled_before_it_began_is_not_made() -> None:
    threads = _DbThreads(1)
    release = threading.Event()
    made: list[str] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        busy: asyncio.Future[None] = loop.create_future()
        later: asyncio.Future[None] = loop.create_future()
        context = contextvars.copy_context()
        threads.put((loop, busy, context, lambda: release.wait(10) and None))
        threads.put((loop, later, context, lambda: made.append("made")))
        later.cancel()  # while the only thread is still busy with the first call
        release.set()
        await busy
        # A call queued after the cancelled one runs: the cancelled one was passed over.
        after: asyncio.Future[str] = loop.create_future()
        threads.put((loop, after, context, lambda: "after"))
        assert await after == "after"

    asyncio.run(main())
    assert made == []


def test_threads_start_as_needed_up_to_the_bound() -> None:
    threads = _DbThreads(2)
    gate = threading.Barrier(3)
    futures = []
    for _ in range(2):
        future = db_thread_submit_on(threads, lambda: gate.wait(10))
        futures.append(future)
    gate.wait(10)  # both calls run at once, each on a thread of its own
    for future in futures:
        future.result(timeout=10)
    assert threads.started == 2
    for _ in range(5):
        db_thread_submit_on(threads, lambda: None).result(timeout=10)
    assert threads.started == 2


def test_code_off_the_loop_submits_and_waits() -> None:
    assert db_thread_submit(lambda: 6 * 7).result(timeout=10) == 42
    assert _threads().started <= _threads().size


def db_thread_submit_on(threads: _DbThreads, func):  # type: ignore[no-untyped-def]
    import concurrent.futures

    future: concurrent.futures.Future[object] = concurrent.futures.Future()
    threads.put((None, future, contextvars.copy_context(), func))
    return future


def test_at_exit_the_threads_finish_what_is_queued_then_take_nothing_more() -> None:
    threads = _DbThreads(1)
    release = threading.Event()
    first = db_thread_submit_on(threads, lambda: release.wait(10))
    queued = db_thread_submit_on(threads, lambda: "written")
    drainer = threading.Thread(target=threads.drain)
    drainer.start()  # it waits for the busy thread, and what is queued behind it
    release.set()
    drainer.join(10)
    assert not drainer.is_alive()
    assert first.done() and queued.result(timeout=0) == "written"
    with pytest.raises(RuntimeError, match="after interpreter shutdown"):
        db_thread_submit_on(threads, lambda: None)
