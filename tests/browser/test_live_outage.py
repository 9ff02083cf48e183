"""The run page through a Redis outage: it notices, catches up from the stored events while
Redis is down, and follows live again once Redis is back — never frozen on a silent socket.

A daphne and a Celery worker on a Redis of the test's own (tests/support/outage.py); the test
kills that Redis while the run streams, and starts it again once the run went on without it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import screenshot
from tests.conftest import Personas
from tests.support.outage import Stack, outage_stack, priced_pipeline, session_cookie
from tests.support.waiting import wait_for
from workflows.models import Run, RunEvent

pytestmark = [
    pytest.mark.browser,
    pytest.mark.services,
    pytest.mark.slow,
    pytest.mark.serial,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def stack(llm_server: Any) -> Iterator[Stack]:
    with outage_stack(llm_server.url, name="browser-outage") as stack:
        yield stack


@pytest.fixture
def olivia_page(browser: Any, stack: Stack, personas: Personas) -> Iterator[Any]:
    context = browser.new_context(base_url=stack.url, viewport={"width": 1280, "height": 820})
    context.set_default_timeout(15_000)
    name, value = session_cookie(personas.owner)
    context.add_cookies([{"name": name, "value": value, "url": stack.url}])
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def test_the_run_page_reconnects_and_catches_up_after_a_redis_outage(
    olivia_page: Any, stack: Stack, personas: Personas, llm_server: Any
) -> None:
    page = olivia_page
    llm_server.set_script(
        {
            "rules": [
                {
                    "reply": "A steady answer, in many small pieces.",
                    "chunks": 12,
                    "chunk_delay_ms": 250,
                }
            ]
        }
    )
    workflow = priced_pipeline(personas.workspace, personas.owner)
    page.goto(f"/workflows/{workflow.pk}/")
    page.get_by_label("Topic").fill("resilience")
    page.get_by_role("button", name="Run version 1").click()
    page.wait_for_url("**/runs/*/")
    run = Run.objects.get()
    timeline = page.locator("#timeline")
    # Following live: the first answer streams in.
    page.locator("#timeline .tl-streaming").first.wait_for()
    assert timeline.get_attribute("data-live") == "connected"

    stack.redis.stop()
    calls_at_stop = len(llm_server.requests)
    # The server's feed is gone: the page is told so (4500) and says it is catching up.
    page.locator('#timeline[data-live="reconnecting"]').wait_for()
    assert "reconnecting" in page.locator("#live-status").inner_text()
    screenshot(page, "60-run-live-redis-down")
    # While Redis is down the run goes on, and each reconnect replays what was stored.
    wait_for(
        lambda: len(llm_server.requests) >= calls_at_stop + 1, timeout=30, what="the next step"
    )
    page.locator("#timeline li[data-kind=message]").first.wait_for()

    stack.redis.start()
    page.locator('#run-state .badge[data-status="succeeded"]').wait_for(timeout=45_000)
    page.locator("#timeline li[data-kind=message]").nth(2).wait_for()
    page.locator('#timeline[data-live="connected"]').wait_for()
    assert int(timeline.get_attribute("data-reconnects") or 0) >= 1

    # The page shows every stored event once, as an uninterrupted viewer would.
    shown = page.locator("#timeline li[data-seq]").evaluate_all(
        "items => items.map(item => Number(item.dataset.seq))"
    )
    stored = list(RunEvent.objects.filter(run=run).order_by("seq").values_list("seq", flat=True))
    assert sorted(shown) == stored
    assert page.locator("#timeline .tl-streaming").count() == 0
    assert page.locator("#live-status").inner_text() == ""
    screenshot(page, "61-run-live-after-redis-outage")


def test_an_event_dropped_on_its_way_is_fetched_again(logged_in: Any) -> None:
    """The live copy is best-effort: when one is lost (the publisher's outbox dropped it) but
    later ones arrive, the page asks for the missing ones instead of showing a hole."""
    from a2a_site.accounts.models import User, Workspace
    from workflows.live import live_outbox, publish_events
    from workflows.services.workflows import EMPTY_GRAPH, workflow_create, workflow_publish

    page = logged_in
    owner = User.objects.get(username="olivia")
    workspace = Workspace.objects.get(name="Lab")
    workflow = workflow_create(workspace=workspace, user=owner, name="Gaps", graph=EMPTY_GRAPH)
    version = workflow_publish(workflow=workflow, user=owner)
    run = Run.objects.create(
        workspace=workspace, workflow=workflow, version=version, created_by=owner, status="running"
    )

    def store(seq: int) -> dict[str, Any]:
        RunEvent.objects.create(run=run, seq=seq, kind="log", step_key=f"s{seq}", data={})
        return {"seq": seq, "kind": "log", "step_key": f"s{seq}", "data": {}, "at": ""}

    store(1)
    page.goto(f"/runs/{run.pk}/")
    page.locator('#timeline li[data-seq="1"]').wait_for()
    page.locator('#timeline[data-replayed="true"]').wait_for()
    store(2)
    third = store(3)

    async def publish_only_the_third() -> None:
        await publish_events(run.pk, [third])
        await live_outbox().flush()

    # From a thread of its own: Playwright keeps an event loop running in this one.
    publisher = threading.Thread(target=asyncio.run, args=(publish_only_the_third(),))
    publisher.start()
    publisher.join(10)
    page.locator('#timeline li[data-seq="3"]').wait_for()
    page.locator('#timeline li[data-seq="2"]').wait_for()  # fetched again, not left out
    shown = page.locator("#timeline li[data-seq]").evaluate_all(
        "items => items.map(item => Number(item.dataset.seq))"
    )
    assert sorted(shown) == [1, 2, 3]
