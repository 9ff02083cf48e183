"""The operations pages in Chromium, read as a newcomer would: the workers (two alive, one
killed), the Ollama fleet (two fake nodes, one down) and the capacity planner."""

from __future__ import annotations

import signal
import uuid
from typing import Any

import pytest

from tests.browser.conftest import screenshot
from tests.support.processes import ServerProcess, free_port, start_celery_worker
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.services, pytest.mark.slow]


def probe_outside_the_browser_loop(probe: Any) -> None:
    """Probes run their own event loop: in a thread of their own, as the beat task runs them,
    not on this thread, where Playwright's loop runs."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections

    def run() -> None:
        try:
            probe()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(run).result(timeout=30)


@pytest.fixture
def three_workers(transactional_db: None) -> Any:
    tag = uuid.uuid4().hex[:6]
    workers = [start_celery_worker(f"ops-{tag}-{n}") for n in range(3)]
    yield workers
    for worker in workers:
        worker.stop()


def test_workers_alive_and_killed_on_the_monitoring_page(
    logged_in: Any, three_workers: list[ServerProcess]
) -> None:
    from workflows.models import Worker

    page = logged_in

    def beating() -> bool:
        for worker in three_workers:
            worker.assert_running()
        return (
            Worker.objects.filter(
                pid__in=[w.process.pid for w in three_workers], stopped_at=None
            ).count()
            == 3
        )

    wait_for(beating, timeout=90, interval=0.2, what="three workers' heartbeats")
    killed = three_workers[2]
    killed_row = Worker.objects.get(pid=killed.process.pid)
    killed.process.send_signal(signal.SIGKILL)
    killed.process.wait(10)

    page.goto("/monitoring/")
    page.get_by_role("heading", name="Workers").wait_for()
    live = page.locator("[data-testid=workers] > .table-wrap [data-testid=worker-row]")
    # Killed without a goodbye, on this host: it leaves the live list for the history once its
    # heartbeat is overdue (3 beats of 1 s here), without waiting for the 10-minute window.
    wait_for(
        lambda: (page.reload(), live.count())[1] == 2,
        timeout=30,
        interval=0.5,
        what="the killed worker to leave the live list",
    )
    for row in live.all():
        assert row.get_attribute("data-status") == "alive"
        text = row.inner_text()
        assert "of 300" in text  # runs in flight against A2A_RUNS_PER_PROCESS
        assert "open files" in text and "threads" in text
    assert killed_row.name not in page.locator("[data-testid=workers] > .table-wrap").inner_text()
    earlier = page.get_by_test_id("workers-earlier")
    earlier.locator("summary").click()
    lost = earlier.locator(f"[data-worker='{killed_row.name}']")
    assert lost.get_attribute("data-status") == "lost"
    assert "ended without goodbye" in lost.inner_text()
    # The history of the live ones: a sparkline per figure (described for screen readers) once
    # a second minute began, and until then words that say so.
    for row in live.all():
        cpu = row.locator("td").nth(2)
        assert (
            cpu.locator("svg.sparkline[aria-label^='CPU']").count() == 1
            or "1 point so far" in cpu.inner_text()
        )
    # Redis is used in this mode and says for what; the queues are counted.
    assert "run dispatch (Celery broker)" in page.get_by_test_id("health").inner_text()
    assert "waiting" in page.get_by_test_id("queues").inner_text()
    screenshot(page, "monitoring-workers")
    page.get_by_role("link", name="Last day").click()
    page.wait_for_url("**span=day")
    screenshot(page, "monitoring-workers-day", theme="dark")


def test_the_fleet_page_with_one_node_down_and_the_planner(logged_in: Any, settings: Any) -> None:
    from a2a_site.accounts.models import Workspace
    from agents.fakellm import start_in_thread
    from agents.models import OllamaNode
    from agents.services.nodes import fleet_probe
    from tests.agents.factories import make_agent, make_provider

    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    page = logged_in
    workspace = Workspace.objects.get(name="Lab")
    page.goto("/monitoring/fleet/")
    assert "No Ollama provider in this workspace" in page.get_by_test_id("fleet-empty").inner_text()
    screenshot(page, "fleet-empty")

    provider = make_provider(workspace, kind="ollama", name="Office GPUs")
    with start_in_thread({"models": ["llama3.1:8b", "llama3.2"]}, name="gpu-a") as node_a:
        OllamaNode.objects.create(
            provider=provider, name="gpu-a", base_url=node_a.url, max_parallel=4, memory_gb=24
        )
        OllamaNode.objects.create(
            provider=provider,
            name="gpu-b",
            base_url=f"http://127.0.0.1:{free_port()}",  # nothing listens: down
            memory_gb=16,
        )
        for name, model in (("Writer", "llama3.1:8b"), ("Coder", "qwen2.5:7b")):
            make_agent(
                workspace,
                name=name,
                provider=provider,
                model={"provider_id": str(provider.pk), "model": model},
            )
        probe_outside_the_browser_loop(fleet_probe)
        probe_outside_the_browser_loop(fleet_probe)
        page.goto("/monitoring/fleet/")
        up = page.locator("[data-testid=fleet-node][data-node=gpu-a]")
        down = page.locator("[data-testid=fleet-node][data-node=gpu-b]")
        assert up.get_attribute("data-status") == "up"
        assert "llama3.1:8b" in up.inner_text() and "0 of 4" in up.inner_text()
        assert down.get_attribute("data-status") == "down"
        assert "refused" in down.inner_text()
        warning = page.get_by_test_id("fleet-warning")
        assert warning.count() == 1
        assert "Coder" in warning.inner_text() and "no node has pulled it" in warning.inner_text()
        screenshot(page, "fleet-one-node-down")

        page.get_by_role("link", name="Capacity planner").click()
        page.get_by_label("Writer").check()
        page.get_by_label("Other models").fill("llama3.1:70b")
        page.get_by_label("Parallel requests per model (per agent)").fill("2")
        page.get_by_role("button", name="Plan").click()
        plan = page.get_by_test_id("planner-plan")
        plan.wait_for()
        assert "Office GPUs / gpu-a" in plan.inner_text()
        assert "gpu-b" in plan.inner_text()  # named as not counted: down
        shortfall = page.get_by_test_id("planner-shortfall")
        assert "llama3.1:70b" in shortfall.inner_text() and "more node" in shortfall.inner_text()
        screenshot(page, "capacity-planner")
