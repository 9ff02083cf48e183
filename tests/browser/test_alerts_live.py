"""An alert fires and its notification appears live, in both modes: sent by a Celery worker's
alert round through Redis, and by the embedded executor's own round through the in-memory layer."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from tests.browser.conftest import screenshot
from tests.support.processes import ServerProcess, start_daphne
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.services, pytest.mark.slow]


def error_burst(workspace_name: str) -> None:
    """Three of ten provider calls failed a minute ago, as the ledger records them."""
    from a2a_site.accounts.models import Workspace
    from tests.monitoring.alerts.conftest import ledger_call

    workspace = Workspace.objects.get(name=workspace_name)
    at = timezone.now() - timedelta(minutes=1)
    for n in range(10):
        ledger_call(workspace, at=at, failed=n < 3)


def test_an_alert_fires_and_its_notification_appears_live(
    logged_in: Any, worker: ServerProcess
) -> None:
    from monitoring.alerts.models import AlertIncident
    from monitoring.tasks import alerts_round

    page = logged_in
    csp_refusals: list[str] = []

    def on_console(message: Any) -> None:
        if "Content Security Policy" in message.text:
            csp_refusals.append(message.text)

    page.on("console", on_console)
    page.goto("/workflows/")
    page.wait_for_selector('[data-notifications][data-live="connected"]', state="attached")
    assert page.locator("[data-unread-count]").first.is_hidden()

    error_burst("Lab")
    alerts_round.delay()  # what Celery beat sends every ALERTS_ROUND_SECONDS

    toast = page.get_by_test_id("toast")
    toast.wait_for(timeout=30_000)
    assert "Alert: Error rate above 10 %" in toast.inner_text()
    assert "3 of 10 calls failed" in toast.inner_text()
    badge = page.locator(".sidebar [data-unread-count]")
    assert badge.inner_text() == "1" and badge.is_visible()
    screenshot(page, "60-alert-toast")

    toast.get_by_role("link").click()
    incident = page.get_by_test_id("incident").first
    incident.wait_for()
    assert incident.get_attribute("data-state") == "open"
    screenshot(page, "61-alerts-open")
    screenshot(page, "61-alerts-open-dark", theme="dark")
    page.get_by_role("button", name="Acknowledge").click()
    page.locator('[data-testid="incident"][data-state="acknowledged"]').wait_for()
    assert AlertIncident.objects.get().state == "acknowledged"
    # Read: the header's count is gone, rendered by the server.
    assert page.locator(".sidebar [data-unread-count]").is_hidden()

    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "62-alerts-phone")
    page.goto("/alerts/rules/")
    screenshot(page, "63-alert-rules-phone")
    page.set_viewport_size({"width": 1280, "height": 820})
    screenshot(page, "63-alert-rules")
    page.goto("/alerts/rules/new/")
    page.get_by_label("Name").fill("Spend spike")
    page.get_by_label("Measure").select_option("spend_spike")
    page.get_by_label("Threshold").fill("0.5")
    page.get_by_role("button", name="Create rule").click()
    page.get_by_text("give a ratio above 1").wait_for()
    explained = page.get_by_test_id("kind-help").inner_text()
    assert "times the usual spend" in explained and "calls failed" not in explained
    screenshot(page, "66-alert-rule-refused")
    page.goto("/alerts/channels/new/")
    page.get_by_label("Name").fill("Local hook")
    assert page.get_by_label("Send to (e-mail channels)").is_hidden()
    page.get_by_label("URL (webhooks)").fill("http://10.0.0.7/hook")
    page.get_by_role("button", name="Create channel").click()
    page.get_by_text("is a private address").wait_for()
    screenshot(page, "64-alert-channel-refused-dark", theme="dark")

    # A port nobody listens on, on a host the administrator allowed: made, then retried.
    page.get_by_label("URL (webhooks)").fill("http://127.0.0.1:9/hook")
    page.get_by_role("button", name="Create channel").click()
    secret = page.get_by_test_id("webhook-secret")
    secret.wait_for()
    assert "whsec_" in secret.inner_text()
    page.get_by_role("button", name="Send a test message").click()
    assert "whsec_" not in page.content()  # shown once

    def attempted() -> bool:
        page.reload()
        return "Could not connect" in page.get_by_test_id("deliveries").inner_text()

    wait_for(attempted, timeout=30, interval=0.5, what="the worker's first attempt")
    page.get_by_test_id("deliveries").locator("summary").first.click()
    screenshot(page, "65-alert-channel-deliveries")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "65-alert-channel-deliveries-phone-dark", theme="dark")
    assert not csp_refusals, csp_refusals


@pytest.fixture(scope="module")
def embedded_alerts_server(django_db_setup: None, django_db_blocker: Any) -> Iterator[str]:
    """daphne as `make run` has it, its executor's housekeeping running the alert rounds."""
    with django_db_blocker.unblock():
        server, url = start_daphne(
            "daphne-embedded-alerts",
            REDIS_URL="",
            A2A_EXECUTION_MODE="embedded",
            A2A_EXECUTOR_AUTOSTART="true",
            A2A_ALERTS_ROUND_SECONDS="1",
            A2A_ALERTS_EVALUATE_SECONDS="1",
        )
    yield url
    server.stop()


def test_the_embedded_mode_fires_alerts_live_too(
    browser: Any, embedded_alerts_server: str, transactional_db: None
) -> None:
    from a2a_site.accounts.models import Membership, Role, Workspace
    from tests.conftest import make_user

    user = make_user("emma")
    workspace = Workspace.objects.create(name="Solo", created_by=user)
    Membership.objects.create(workspace=workspace, user=user, role=Role.OWNER)
    context = browser.new_context(base_url=embedded_alerts_server)
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
        page.goto("/alerts/")
        page.get_by_test_id("empty-alerts").wait_for()
        page.wait_for_selector('[data-notifications][data-live="connected"]', state="attached")

        error_burst("Solo")

        toast = page.get_by_test_id("toast")
        toast.wait_for(timeout=30_000)
        assert "Error rate above 10 %" in toast.inner_text()
        # The history on screen follows: the alert appears in it, and it counts as read.
        page.locator('[data-testid="incident"][data-state="open"]').wait_for()
        page.locator(".sidebar [data-unread-count]").wait_for(state="hidden")
    finally:
        context.close()
    assert not errors, errors
