"""The webhooks page in Chromium, against daphne and a Celery worker: an owner subscribes a
receiver, sees the secret once, sends a test event that fails then is retried and delivered,
reads the log, and redelivers it; a private address is refused with the reason."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import screenshot
from tests.monitoring.alerts.conftest import (  # noqa: F401 - the fixture
    WebhookReceiver,
    standard_webhook_verify,
    webhook_receiver,
)
from tests.support.processes import ServerProcess, start_celery_worker
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.services, pytest.mark.slow]


@pytest.fixture(scope="module")
def hook_worker(django_db_setup: None, django_db_blocker: Any) -> Iterator[ServerProcess]:
    """A worker sending deliveries, retrying after 2 s (not 30 s) so the test sees a retry."""
    with django_db_blocker.unblock():
        process = start_celery_worker(
            f"hooks-{uuid.uuid4().hex[:6]}",
            A2A_OUTBOUND_ALLOWED_HOSTS="127.0.0.1",
            A2A_WEBHOOKS_BACKOFF_SECONDS="2",
        )
    yield process
    process.stop()


def test_an_owner_subscribes_tests_reads_the_log_and_redelivers(
    logged_in: Any,
    hook_worker: ServerProcess,
    webhook_receiver: WebhookReceiver,  # noqa: F811
) -> None:
    from workflows.webhooks.models import WebhookDelivery, WebhookSubscription

    page = logged_in
    page.goto("/workspace/")
    page.get_by_test_id("webhooks-settings").get_by_role("link", name="Manage webhooks").click()
    page.get_by_test_id("empty-webhooks").wait_for()
    screenshot(page, "webhooks-empty")
    page.get_by_role("link", name="New webhook").first.click()

    # A private address: refused, with what to do about it.
    page.get_by_label("Name").fill("Deploy bot")
    page.get_by_label("URL").fill("http://10.1.2.3/hooks")
    page.get_by_label("run.failed — A run failed").check()
    page.get_by_role("button", name="Create webhook").click()
    page.get_by_text("A2A_OUTBOUND_ALLOWED_HOSTS").first.wait_for()
    screenshot(page, "webhooks-refused-url")
    assert not WebhookSubscription.objects.exists()

    page.get_by_label("URL").fill(webhook_receiver.url)
    page.get_by_role("button", name="Create webhook").click()
    secret = page.get_by_test_id("webhook-secret").locator("code.secret-box").inner_text()
    assert secret.startswith("whsec_")
    subscription = WebhookSubscription.objects.get()
    assert subscription.events == ["run.succeeded", "run.failed"]
    screenshot(page, "webhooks-created")

    # The receiver fails the first attempt; the worker retries it 2 s later.
    webhook_receiver.answers = [500]
    page.get_by_role("button", name="Send a test event").click()
    page.get_by_role("status").filter(has_text="Test message queued").wait_for()

    def delivery() -> WebhookDelivery:
        return WebhookDelivery.objects.get(subscription=subscription)

    wait_for(lambda: delivery().attempts == 1, timeout=30, what="the first attempt")
    page.reload()
    row = page.get_by_test_id("delivery").first
    row.get_by_text("Retrying").wait_for()
    assert "HTTP 500" in row.inner_text()
    row.get_by_test_id("next-attempt").wait_for()
    screenshot(page, "webhooks-retrying")

    wait_for(lambda: delivery().status == "delivered", timeout=30, what="the retry")
    page.reload()
    row = page.get_by_test_id("delivery").first
    row.get_by_text("Delivered").wait_for()
    row.locator("summary").click()
    assert "HTTP 500" in row.inner_text() and "HTTP 200" in row.inner_text()
    screenshot(page, "webhooks-delivered")
    first, retry = webhook_receiver.requests
    assert first.headers["webhook-id"] == retry.headers["webhook-id"]
    assert standard_webhook_verify(secret, retry)

    row.get_by_role("button", name="Redeliver").click()
    page.get_by_role("status").filter(has_text="queued again").wait_for()
    wait_for(lambda: len(webhook_receiver.requests) == 3, timeout=30, what="the redelivery")
    assert webhook_receiver.requests[2].headers["webhook-id"] == first.headers["webhook-id"]
    wait_for(lambda: delivery().status == "delivered", timeout=30, what="the redelivery logged")
    page.goto("/workspace/webhooks/")
    page.get_by_test_id("webhook-subscriptions").get_by_text("Deploy bot").wait_for()
    screenshot(page, "webhooks-list")
