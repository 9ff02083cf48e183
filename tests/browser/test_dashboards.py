"""The dashboards in Chromium: charts that fill in live as runs finish, and a range picker and
filters that every chart follows (a real daphne, a real Celery worker, the demo model)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import screenshot
from tests.conftest import Personas  # noqa: F401  (fixtures' types)
from tests.support.processes import ServerProcess
from tests.support.waiting import wait_for
from workflows.models import TERMINAL_STATUSES, Run

pytestmark = [pytest.mark.browser, pytest.mark.services, pytest.mark.slow]

CHARTS = "#dashboard [data-chart]"


@pytest.fixture
def lab(logged_in: Any, demo_model: Any, worker: ServerProcess, settings: Any) -> Any:
    from a2a_site.accounts.models import User, Workspace
    from tests.agents.factories import make_agent, make_provider
    from workflows.graph import examples
    from workflows.services.workflows import workflow_create, workflow_publish

    settings.EXECUTION_MODE = "celery"  # run_start below dispatches to the worker
    demo_model.set_script(None)
    demo_model.reset()
    workspace = Workspace.objects.get(name="Lab")
    provider = make_provider(workspace)
    agents = [
        str(make_agent(workspace, name=name, provider=provider).pk)
        for name in ("Researcher", "Analyst", "Writer")
    ]
    owner = User.objects.get(username="olivia")
    workflow = workflow_create(
        workspace=workspace,
        user=owner,
        name="Research pipeline",
        graph=examples.research_pipeline(*agents),
    )
    workflow_publish(workflow=workflow, user=owner)
    logged_in.lab = {"workflow": workflow, "owner": owner}
    return logged_in


def _launch(page: Any, count: int) -> list[Run]:
    from workflows.services.runs import run_start

    lab = page.lab
    return [
        run_start(workflow=lab["workflow"], user=lab["owner"], inputs={"topic": f"tea {index}"})
        for index in range(count)
    ]


def _finished(runs: list[Run]) -> None:
    ids = [run.pk for run in runs]
    wait_for(
        lambda: Run.objects.filter(pk__in=ids, status__in=TERMINAL_STATUSES).count() == len(ids),
        timeout=60,
        what="the runs to finish",
    )


def _charts(page: Any) -> list[dict[str, str]]:
    return page.locator(CHARTS).evaluate_all(
        "figures => figures.map(f => ({id: f.id, state: f.dataset.state || '',"
        " query: f.dataset.query || '', rows: f.dataset.rows || ''}))"
    )


def _settled(page: Any, wanted: str = "") -> list[dict[str, str]]:
    """Every chart answered (drawn or empty), each asked with `wanted` in its query."""

    def done() -> list[dict[str, str]] | None:
        charts = _charts(page)
        if all(c["state"] in ("drawn", "empty") and wanted in c["query"] for c in charts):
            return charts
        return None

    return wait_for(done, timeout=20, interval=0.1, what=f"every chart to answer {wanted!r}")


def test_the_dashboard_renders_charts_with_data_after_runs_live(lab: Any) -> None:
    page = lab
    page.goto("/dashboards/")
    page.get_by_test_id("dashboard-empty").wait_for()
    assert {c["state"] for c in _settled(page)} == {"empty"}
    screenshot(page, "60-dashboards-empty")

    _finished(_launch(page, 2))

    # No reload: the page's poll sees the new calls and finished runs, and asks again.
    page.get_by_test_id("dashboard-headline").wait_for(timeout=30_000)
    outcomes = page.locator("#chart-outcomes [data-chart-table] thead")
    wait_for(
        lambda: (
            "succeeded" in (outcomes.text_content() or "")
            and "running" not in (outcomes.text_content() or "")
        ),
        timeout=30,
        what="the run outcomes to show the finished runs",
    )
    charts = {c["id"]: c for c in _settled(page)}
    for drawn in ("chart-calls", "chart-tokens", "chart-outcomes", "chart-latency-model"):
        assert charts[drawn]["state"] == "drawn", charts[drawn]
    assert charts["chart-spend"]["state"] == "empty"  # the demo model is free, not unknown
    assert page.url.endswith("/dashboards/")
    headline = page.get_by_test_id("dashboard-headline")
    wait_for(lambda: "6" in headline.inner_text(), timeout=15, what="6 calls")  # 2 runs × 3
    calls_table = page.locator("#chart-calls [data-chart-table] tbody tr")
    assert calls_table.count() >= 1
    report = page.get_by_test_id("agent-report")
    for name in ("Researcher", "Analyst", "Writer"):
        assert name in report.inner_text()
    screenshot(page, "61-dashboards-light")
    page.get_by_role("button", name="Light / dark theme").click()
    page.locator("#chart-calls[data-state=loading]").wait_for(state="detached")
    _settled(page)  # redrawn in the dark theme's colours
    screenshot(page, "62-dashboards-dark")


def test_the_range_picker_and_a_filter_change_every_chart(lab: Any) -> None:
    page = lab
    _finished(_launch(page, 1))
    page.goto("/dashboards/")
    before = _settled(page, "range=7d")
    assert len(before) == 10

    page.get_by_label("Range").select_option("30d")
    after = _settled(page, "range=30d")
    assert "range=30d" in page.url  # kept in the URL
    assert all("granularity=auto" in c["query"] or "granularity=total" in c["query"] for c in after)

    workflow = page.lab["workflow"]
    page.get_by_label("Workflow").select_option(str(workflow.pk))
    filtered = _settled(page, f"workflow={workflow.pk}")
    assert all("range=30d" in c["query"] for c in filtered)
    assert f"workflow={workflow.pk}" in page.url
    assert {c["id"]: c["state"] for c in filtered}["chart-calls"] == "drawn"

    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "63-dashboards-phone")
