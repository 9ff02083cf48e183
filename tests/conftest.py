"""Fixtures every test can use: personas, clients, and the real services and processes.

Tests marked `services` need PostgreSQL and Redis (DATABASE_URL, REDIS_URL); tests marked `browser`
also need Debian's Chromium. Without them they skip with the reason — except under
A2A_REQUIRE_SERVICES=1 (CI and `make test`), where a skip of any kind is a failure.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from a2a_site.accounts.models import Membership, Role, User, Workspace
from tests.support import canary
from tests.support.chromium import CHROMIUM
from tests.support.processes import ARTIFACTS, ARTIFACTS_ROOT

REQUIRE_SERVICES = os.environ.get("A2A_REQUIRE_SERVICES") == "1"


@cache
def services_missing() -> str | None:
    if not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        return "DATABASE_URL does not point at PostgreSQL"
    if not settings.REDIS_URL:
        return "REDIS_URL is not set"
    import redis

    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2)
        client.ping()
        client.close()
    except redis.RedisError as error:
        return f"Redis does not answer at REDIS_URL ({type(error).__name__})"
    return None


@cache
def browser_missing() -> str | None:
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        return f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        reason = None
        if "services" in item.keywords or "browser" in item.keywords:
            reason = services_missing()
        if reason is None and "browser" in item.keywords:
            reason = browser_missing()
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))


def pytest_configure(config: pytest.Config) -> None:
    logging.getLogger().addHandler(canary.watch)
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        for stale in ARTIFACTS_ROOT.rglob(SIGHTINGS):
            stale.unlink()
    _flush_retries_deadlocks()


def _flush_retries_deadlocks() -> None:
    """Emptying the database after a test that used real processes retries a deadlock.

    The processes a test starts (daphne, Celery workers) keep their own connections and may be
    renewing a lease or recording a heartbeat when the test ends; PostgreSQL may then pick the
    TRUNCATE as a deadlock's victim. The victim's work is undone whole, so trying again is safe —
    and the alternative is the next test starting on the last one's rows.
    """
    import time

    from django.db import OperationalError
    from django.test import TransactionTestCase

    teardown = TransactionTestCase._fixture_teardown

    def _fixture_teardown(self: TransactionTestCase) -> None:
        for attempt in range(5):
            try:
                teardown(self)
                return
            except Exception as error:  # CommandError wraps the OperationalError
                cause = error.__cause__ or error
                if attempt == 4 or not (
                    isinstance(cause, OperationalError) and "deadlock" in str(cause)
                ):
                    raise
                time.sleep(0.2 * (attempt + 1))

    TransactionTestCase._fixture_teardown = _fixture_teardown  # type: ignore[method-assign]


# A pytest-xdist worker leaves what its log handler saw here; the controlling process reads it.
SIGHTINGS = "canary-sightings.txt"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    sightings = list(canary.watch.sightings)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        if sightings:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            (ARTIFACTS / SIGHTINGS).write_text("\n".join(sightings))
        return
    for path in ARTIFACTS_ROOT.rglob(SIGHTINGS):
        sightings.extend(path.read_text().splitlines())
        path.unlink()
    for log in ARTIFACTS_ROOT.rglob("*.log"):
        if canary.canary_parts(log.read_text(errors="replace")):
            sightings.append(f"process log {log.relative_to(ARTIFACTS_ROOT)}")
    if sightings:
        session.config.get_terminal_writer().line(
            "The canary credential leaked: " + "; ".join(sightings), red=True
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if REQUIRE_SERVICES and report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"A2A_REQUIRE_SERVICES=1 turns every skip into a failure: {reason}"
    return report


@pytest.fixture(scope="session", autouse=True)
def _clean_redis() -> Iterator[None]:
    """The suite owns its Redis database: start from empty so no earlier run's messages leak in."""
    if settings.REDIS_URL and services_missing() is None:
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL)
        client.flushdb()
        client.close()
    yield


@pytest.fixture(scope="session", autouse=True)
def _close_pool_connections(django_db_setup: None) -> Iterator[None]:
    """Executors query on a pool of threads; their connections must close before the test
    database is dropped at the end of the session."""
    yield
    from a2a_site.db import db_threads_close

    db_threads_close()


@pytest.fixture(autouse=True)
def _no_stray_executor() -> Iterator[None]:
    """A test that executes runs uses the `executor` fixture: an executor started behind its
    back would keep reaping and probing through the tests that follow."""
    yield
    from workflows import executor as executor_module

    stray = executor_module._executor
    if stray is not None and not getattr(stray, "owned_by_fixture", False):
        executor_module._executor = None
        stray.shutdown()
        pytest.fail("This test started a process executor; use the `executor` fixture.")


# --- Personas -------------------------------------------------------------------------------------


@dataclass
class Personas:
    owner: User
    editor: User
    viewer: User
    outsider: User
    workspace: Workspace
    other_workspace: Workspace

    def membership(self, user: User) -> Membership:
        return Membership.objects.get(user=user, workspace=self.workspace)


def make_user(username: str, **extra: Any) -> User:
    return User.objects.create_user(
        username=username, email=f"{username}@example.com", password="correct horse", **extra
    )


@pytest.fixture
def personas(db: None) -> Personas:
    """Olivia owns “Lab”, Eddie edits in it, Vera views it; Oscar owns only his own “Elsewhere”."""
    owner, editor, viewer, outsider = (
        make_user(name) for name in ("olivia", "eddie", "vera", "oscar")
    )
    workspace = Workspace.objects.create(name="Lab", created_by=owner)
    Membership.objects.create(workspace=workspace, user=owner, role=Role.OWNER)
    Membership.objects.create(workspace=workspace, user=editor, role=Role.EDITOR)
    Membership.objects.create(workspace=workspace, user=viewer, role=Role.VIEWER)
    other = Workspace.objects.create(name="Elsewhere", created_by=outsider)
    Membership.objects.create(workspace=other, user=outsider, role=Role.OWNER)
    return Personas(owner, editor, viewer, outsider, workspace, other)


@pytest.fixture
def client_for() -> Callable[[User | None], Client]:
    def make(user: User | None) -> Client:
        client = Client()
        if user is not None:
            client.force_login(user)
        return client

    return make


@pytest.fixture
def llm_server(settings: Any) -> Iterator[Any]:
    """A fresh fake provider on loopback, also serving as the demo model; loopback is
    allow-listed as an administrator would for local nodes."""
    from agents.fakellm import start_in_thread

    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    with start_in_thread(name="node-a") as server:
        settings.DEMO_MODEL_URL = server.url
        yield server
