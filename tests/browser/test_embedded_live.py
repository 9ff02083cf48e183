"""The embedded mode in Chromium: runs execute inside the web process and stream to the page
over the in-memory channel layer (from the executor's thread to the server's loop)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import screenshot
from tests.support.processes import start_daphne

pytestmark = [pytest.mark.browser, pytest.mark.services, pytest.mark.slow]


@pytest.fixture(scope="module")
def embedded_server(
    django_db_setup: None, django_db_blocker: Any, demo_model: Any
) -> Iterator[str]:
    """daphne as `make run` has it: no Redis, the executor in the web process."""
    with django_db_blocker.unblock():
        server, url = start_daphne(
            "daphne-embedded",
            REDIS_URL="",
            A2A_EXECUTION_MODE="embedded",
            A2A_DEMO_MODEL_URL=demo_model.url,
            A2A_OUTBOUND_ALLOWED_HOSTS="127.0.0.1",
        )
    yield url
    server.stop()


def test_a_run_streams_live_in_the_embedded_mode(
    browser: Any, embedded_server: str, transactional_db: None, demo_model: Any
) -> None:
    from a2a_site.accounts.models import Membership, Role, Workspace
    from tests.agents.factories import make_provider
    from tests.conftest import make_user

    demo_model.set_script({"rules": [{"reply": "One word at a time, slowly.", "delay_ms": 300}]})
    user = make_user("emma")
    workspace = Workspace.objects.create(name="Solo", created_by=user)
    Membership.objects.create(workspace=workspace, user=user, role=Role.OWNER)
    make_provider(workspace)
    context = browser.new_context(base_url=embedded_server, viewport={"width": 1280, "height": 820})
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto("/accounts/login/")
        page.get_by_label("Username").fill("emma")
        page.get_by_label("Password").fill("correct horse")
        page.get_by_role("button", name="Log in").click()
        page.get_by_role("heading", name="Solo").wait_for()
        page.goto("/workflows/")
        page.locator(".template-card", has_text="Research pipeline").get_by_role("button").click()
        page.get_by_label("Topic").fill("tidal power")
        page.get_by_role("button", name="Run version 1").click()

        # Each message arrives over the live channel (the page is never reloaded).
        page.locator("#timeline li[data-kind=message]").nth(2).wait_for(timeout=60_000)
        page.locator('#run-state .badge[data-status="succeeded"]').wait_for(timeout=30_000)
        page.locator('#run-builder [data-testid="node-writing"][data-status="done"]').wait_for()
        assert "slowly" in page.locator("#timeline").inner_text()
        screenshot(page, "23-run-embedded")
    finally:
        context.close()
        demo_model.set_script(None)
    assert not errors, f"JavaScript errors on the page: {errors}"
