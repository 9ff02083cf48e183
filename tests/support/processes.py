"""Real server processes for the integration and browser tests: daphne and Celery workers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from django.db import connection

from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
# Under pytest-xdist each worker keeps its processes' logs in a folder of its own.
ARTIFACTS_ROOT = ROOT / "test-artifacts"
ARTIFACTS = ARTIFACTS_ROOT / os.environ.get("PYTEST_XDIST_WORKER", "")
# Its sitecustomize spares a process the tests started its interpreter teardown once it exited.
QUICK_EXIT = Path(__file__).resolve().parent / "quick_exit"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_database_url() -> str:
    """The URL of the test database, as the processes we start must see it."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings['NAME']}"
    user = quote(settings.get("USER") or "", safe="")
    password = quote(settings.get("PASSWORD") or "", safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings.get("HOST") or "127.0.0.1"
    port = settings.get("PORT") or "5432"
    return f"postgres://{auth}{host}:{port}/{settings['NAME']}"


def child_environment(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    env["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    env["DATABASE_URL"] = test_database_url()
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(QUICK_EXIT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


class ServerProcess:
    def __init__(self, name: str, args: list[str], env: dict[str, str]) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log_path = ARTIFACTS / f"{name}.log"
        self._log: IO[bytes] = self.log_path.open("wb")
        self.process = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def assert_running(self) -> None:
        code = self.process.poll()
        if code is not None:
            raise AssertionError(f"{self.name} exited with {code}:\n{self.log()}")

    def stop(self, timeout: float = 15.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        self._log.close()


def start_daphne(name: str = "daphne", **env: str) -> tuple[ServerProcess, str]:
    port = free_port()
    server = ServerProcess(
        name,
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "a2a_site.asgi:application",
        ],
        child_environment(**env),
    )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        server.assert_running()
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
            return bool(response.status == 200)

    wait_for(healthy, timeout=60, interval=0.1, what="daphne to answer /healthz")
    return server, url


def start_celery_worker(name: str, *, pool: str = "solo", **env: str) -> ServerProcess:
    return ServerProcess(
        f"celery-{name}",
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "a2a_site",
            "worker",
            f"--pool={pool}",
            "--concurrency=1",
            "--loglevel=INFO",
            "-n",
            f"{name}@%h",
            "--without-mingle",
            "--without-gossip",
        ],
        child_environment(A2A_WORKER_HEARTBEAT_SECONDS="1", **env),
    )


class A2APeer:
    """The test A2A agent (`tests/support/a2a_peer.py`) as a real process on a free port."""

    def __init__(self, *, streaming: bool = True, token: str = "") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = child_environment(PEER_TOKEN=token)
        args = [sys.executable, "-m", "tests.support.a2a_peer", str(self.port)]
        self.server = ServerProcess(
            f"a2a-peer-{self.port}", [*args, "1" if streaming else "0"], env
        )

        def ready() -> bool:
            self.server.assert_running()
            return bool(self.calls() is not None)

        wait_for(ready, timeout=30, interval=0.05, what="the A2A peer to answer")

    def _get(self, path: str) -> Any:
        import json

        with urllib.request.urlopen(f"{self.url}{path}", timeout=5) as response:
            return json.loads(response.read())

    def calls(self) -> dict[str, Any]:
        return dict(self._get("/calls"))

    def release(self) -> None:
        self._get("/release")

    def stop(self) -> None:
        self.server.stop()
