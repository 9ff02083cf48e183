"""Playwright driving Debian's Chromium against a real daphne process on the test database."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agents.fakellm import RunningServer, start_in_thread
from tests.support.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.support.processes import ARTIFACTS, ServerProcess, start_celery_worker, start_daphne

SCREENSHOTS = ARTIFACTS / "screenshots"


@pytest.fixture(scope="session")
def demo_model() -> Iterator[RunningServer]:
    """The offline demo model the live server's demo providers talk to."""
    with start_in_thread(name="demo") as server:
        yield server


@pytest.fixture(scope="session")
def daphne_server(
    django_db_setup: None, django_db_blocker: Any, demo_model: RunningServer
) -> Iterator[str]:
    with django_db_blocker.unblock():
        server: ServerProcess
        # The workers the suite starts beat every second (start_celery_worker); the server that
        # judges them alive or overdue knows it, as every process of a deployment shares it.
        server, url = start_daphne(
            A2A_DEMO_MODEL_URL=demo_model.url,
            A2A_OUTBOUND_ALLOWED_HOSTS="127.0.0.1",
            A2A_WORKER_HEARTBEAT_SECONDS="1",
        )
    yield url
    server.stop()


@pytest.fixture(scope="module")
def worker(
    demo_model: RunningServer, django_db_setup: None, django_db_blocker: Any
) -> Iterator[ServerProcess]:
    """A Celery worker process executing the runs the live server dispatches."""
    with django_db_blocker.unblock():
        process = start_celery_worker(
            f"browser-{uuid.uuid4().hex[:6]}",
            A2A_DEMO_MODEL_URL=demo_model.url,
            A2A_OUTBOUND_ALLOWED_HOSTS="127.0.0.1",
            A2A_RUN_HEARTBEAT_SECONDS="1",
        )
    yield process
    process.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium per test module.

    Playwright's sync API keeps an event loop running in this thread while it is open, which
    would break the asyncio tests that pytest-django's reordering may run afterwards; closing it
    at the end of each module ends that loop. The ORM calls the tests make around it are ordinary
    synchronous calls.
    """
    from playwright.sync_api import sync_playwright

    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def logged_in(page: Any) -> Any:
    """Olivia, owner of the workspace “Lab”, logged in."""
    from a2a_site.accounts.models import Membership, Role, Workspace
    from tests.conftest import make_user

    user = make_user("olivia")
    workspace = Workspace.objects.create(name="Lab", created_by=user)
    Membership.objects.create(workspace=workspace, user=user, role=Role.OWNER)
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("olivia")
    page.get_by_label("Password").fill("correct horse")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Lab").wait_for()
    return page


@pytest.fixture
def page(browser: Any, daphne_server: str, transactional_db: None) -> Iterator[Any]:
    context = browser.new_context(base_url=daphne_server, viewport={"width": 1280, "height": 820})
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def screenshot(page: Any, name: str, *, theme: str | None = None) -> Path:
    """Saves a full-page screenshot under test-artifacts/screenshots/ for people to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    if theme:
        page.evaluate(f"document.documentElement.dataset.theme = {theme!r}")
    path = SCREENSHOTS / f"{name}.png"
    # Transitions would catch a theme change half-way: "disabled" finishes them first. (A style
    # tag would do it too, but the Content-Security-Policy refuses inline styles.)
    page.screenshot(path=str(path), full_page=True, animations="disabled")
    return path


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Iterator[None]:
    """A browser test that fails while a worker ran its runs says where those runs stood and what
    the worker printed: a transcript that never finished is otherwise only a locator timeout."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    worker = getattr(item, "funcargs", {}).get("worker")
    if worker is None:
        return
    try:
        from workflows.models import Run

        runs = "\n".join(
            f"run {run.pk} {run.status} {run.reason!r} steps="
            + ",".join(f"{step.key}:{step.status}" for step in run.steps.all())
            for run in Run.objects.order_by("created_at").prefetch_related("steps")
        )
    except Exception as error:  # noqa: BLE001 - a report, not a test: say why it is missing
        runs = f"(the runs could not be read: {error!r})"
    text = f"{runs or '(no runs)'}\n--- worker log\n{worker.log()}"
    report.sections.append(("runs and worker", text))
