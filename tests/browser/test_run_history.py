"""The run history in Chromium: filter and search, and a bookmarked URL that shows the same view.

A real daphne serves the pages; the runs are stored rows shaped as the engine leaves them (see
tests/monitoring/factories.py), since what is tested is reading them back, not executing them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.browser.conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.services]


@pytest.fixture
def csp_refusals(page: Any) -> list[str]:
    found: list[str] = []
    page.on(
        "console",
        lambda message: (
            found.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    return found


@pytest.fixture
def history(logged_in: Any) -> dict[str, Any]:
    from a2a_site.accounts.models import User, Workspace
    from tests.monitoring.factories import make_run, make_workflow

    lab = Workspace.objects.get(name="Lab")
    olivia = User.objects.get(username="olivia")
    triage, report = make_workflow(lab, "Triage"), make_workflow(lab, "Report")
    runs = {
        "invoice_failed": make_run(
            triage,
            text="Invoice 42 was charged twice",
            status="failed",
            error_kind="rate_limit",
            by=olivia,
            ago=timedelta(hours=2),
        ),
        "invoice_ok": make_run(
            triage,
            text="Invoice 43 refund request",
            answer="Refunded",
            by=olivia,
            ago=timedelta(hours=3),
        ),
        "weekly": make_run(report, text="Weekly numbers", via="schedule", ago=timedelta(days=2)),
        "waiting": make_run(triage, text="Approve the invoice template", status="waiting"),
    }
    for day in range(8):
        make_run(report, text=f"Daily digest {day}", via="api", ago=timedelta(days=3 + day))
    return runs


def _row_ids(page: Any) -> set[str]:
    rows = page.get_by_test_id("history-row")
    return {rows.nth(i).get_attribute("data-run") for i in range(rows.count())}


def test_filter_and_search_then_open_the_bookmarked_view(
    logged_in: Any,
    history: dict[str, Any],
    browser: Any,
    daphne_server: str,
    csp_refusals: list[str],
) -> None:
    page = logged_in
    page.get_by_role("link", name="Runs").first.click()
    page.get_by_test_id("history-results").wait_for()
    assert page.get_by_test_id("history-row").count() == 12
    screenshot(page, "history-list-light", theme="light")
    screenshot(page, "history-list-dark", theme="dark")

    # Search: the word is in three runs' inputs.
    page.get_by_test_id("history-q").fill("invoice")
    page.get_by_test_id("history-apply").click()
    page.wait_for_url("**/runs/?q=invoice*")
    assert _row_ids(page) == {
        str(history[k].pk) for k in ("invoice_failed", "invoice_ok", "waiting")
    }

    # A filter on top: only the failed one is left, and it says why it failed.
    page.get_by_text("Filters", exact=True).click()
    page.get_by_test_id("status-failed").check()
    page.get_by_test_id("history-error").select_option("rate_limit")
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url("**status=failed*")
    assert _row_ids(page) == {str(history["invoice_failed"].pk)}
    assert "1</strong> run matches" in page.get_by_test_id("history-count").inner_html()
    bookmarked = page.url
    assert "q=invoice" in bookmarked and "error=rate_limit" in bookmarked

    # The bookmark, opened elsewhere, shows the same view with its filters filled in.
    other = browser.new_context(base_url=daphne_server, viewport={"width": 390, "height": 844})
    try:
        phone = other.new_page()
        phone.goto("/accounts/login/")
        phone.get_by_label("Username").fill("olivia")
        phone.get_by_label("Password").fill("correct horse")
        phone.get_by_role("button", name="Log in").click()
        phone.wait_for_url("**/")
        phone.goto(bookmarked)
        assert _row_ids(phone) == {str(history["invoice_failed"].pk)}
        assert phone.get_by_test_id("history-q").input_value() == "invoice"
        assert phone.get_by_test_id("status-failed").is_checked()
        screenshot(phone, "history-filtered-phone", theme="light")
    finally:
        other.close()

    # Nothing matches: the page says so and offers the way back.
    page.goto("/runs/?q=nothing+like+this&status=cancelled")
    page.get_by_test_id("history-no-results").wait_for()
    screenshot(page, "history-no-results-dark", theme="dark")
    # A broken address: explained, no rows, no error page.
    page.goto("/runs/?min_cost=cheap&from=2026-13-40")
    page.get_by_test_id("history-errors").wait_for()
    assert "min_cost" in page.get_by_test_id("history-errors").inner_text()
    screenshot(page, "history-bad-query-light", theme="light")

    # The workflow's Runs tab, a bulk delete asked for, and the retention setting.
    page.goto(f"/workflows/{history['weekly'].workflow_id}/runs/")
    page.get_by_test_id("workflow-runs-tab").wait_for()
    assert str(history["weekly"].pk) in _row_ids(page)
    page.locator(f'input[name="run"][value="{history["weekly"].pk}"]').check()
    page.get_by_test_id("bulk-delete").click()
    page.get_by_test_id("bulk-confirm").wait_for()
    screenshot(page, "history-bulk-confirm-dark", theme="dark")
    page.get_by_test_id("bulk-confirm").click()
    page.get_by_test_id("bulk-result").wait_for()
    from workflows.models import Run

    assert not Run.objects.filter(pk=history["weekly"].pk).exists()
    page.goto("/workspace/")
    page.get_by_test_id("retention-days-mode").check()
    page.get_by_test_id("retention-days").fill("30")
    page.get_by_role("button", name="Save retention").click()
    page.get_by_text("older than 30 days").first.wait_for()
    screenshot(page, "history-retention-light", theme="light")
    assert csp_refusals == []
