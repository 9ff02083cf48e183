"""`make dev-distributed`: the distributed topology on one machine, started and stopped as one.

Migrates, seeds the demo account, then starts the demo model, daphne, two Celery workers and
beat against the PostgreSQL and Redis named by DATABASE_URL and REDIS_URL, and prints their
output prefixed with each one's name. Ctrl-C (or SIGTERM) stops them all: the workers first (a
warm shutdown hands their runs back), then the rest; whatever has not exited after a grace
period is killed, so nothing is left running. Any of them exiting on its own stops the others
too: a half-started topology would only mislead.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

ROOT = Path(__file__).resolve().parents[3]
GRACE_SECONDS = 20


class Child:
    def __init__(self, name: str, args: list[str], env: dict[str, str], out: IO[str]) -> None:
        self.name = name
        # A session of its own: the terminal's Ctrl-C reaches only the supervisor, which stops
        # the children in order (and each child's own children with it, by process group).
        self.process = subprocess.Popen(
            args,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,
        )
        self._relay = threading.Thread(target=self._copy, args=(out,), daemon=True)
        self._relay.start()

    def _copy(self, out: IO[str]) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            out.write(f"{self.name:>9} | {line}")
            out.flush()

    def signal(self, number: int) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, number)


class Command(BaseCommand):
    help = (
        "Starts the distributed mode on this machine (demo model, daphne, two Celery workers, "
        "beat) against DATABASE_URL and REDIS_URL; Ctrl-C stops everything."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--demo-port", type=int, default=8911)
        parser.add_argument("--workers", type=int, default=2)

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.REDIS_URL or settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
            raise CommandError(
                "The distributed mode needs PostgreSQL and Redis: set DATABASE_URL (postgres://…) "
                "and REDIS_URL (redis://…), or use `make dev-distributed`, which defaults them to "
                "this machine's."
            )
        self._database_ensure()
        env = self._environment(options)
        python = sys.executable
        for step in (["migrate", "--noinput"], ["seed_demo"]):
            if subprocess.run([python, "manage.py", *step], cwd=ROOT, env=env).returncode != 0:
                raise CommandError(f"`manage.py {' '.join(step)}` failed; see above.")
        host, port, demo = options["host"], options["port"], options["demo_port"]
        out = sys.stdout
        children = [
            Child(
                "demo",
                [python, "manage.py", "fakellm", "--host", "127.0.0.1", "--port", str(demo)],
                env,
                out,
            ),
            Child(
                "daphne",
                [python, "-m", "daphne", "-b", host, "-p", str(port), "a2a_site.asgi:application"],
                env,
                out,
            ),
            *(
                Child(
                    f"worker{index}",
                    [
                        *(python, "-m", "celery", "-A", "a2a_site", "worker", "--loglevel=INFO"),
                        *("--pool=solo", "-n", f"worker{index}@%h"),
                    ],
                    env,
                    out,
                )
                for index in range(1, options["workers"] + 1)
            ),
            Child(
                "beat",
                [
                    # WARNING: at INFO beat says every second that it sent the reaper.
                    *(python, "-m", "celery", "-A", "a2a_site", "beat", "--loglevel=WARNING"),
                    *("--schedule", str(Path(settings.VAR_DIR) / "celerybeat-schedule")),
                ],
                env,
                out,
            ),
        ]
        self.stdout.write(
            f"Open http://{host}:{port}/ (log in as above). Metrics: http://{host}:{port}/metrics. "
            "Ctrl-C stops everything."
        )
        stopping = threading.Event()

        def stop(signum: int, frame: Any) -> None:
            stopping.set()

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        failed = None
        while not stopping.wait(0.5):
            failed = next((c for c in children if c.process.poll() is not None), None)
            if failed is not None:
                break
        self._stop_all(children)
        if failed is not None:
            raise CommandError(
                f"{failed.name} exited with {failed.process.returncode}; everything was stopped."
            )
        self.stdout.write("Everything stopped.")

    def _stop_all(self, children: list[Child]) -> None:
        self.stdout.write("Stopping: the workers first, then the rest…")
        ordered = sorted(children, key=lambda child: not child.name.startswith("worker"))
        workers = [child for child in ordered if child.name.startswith("worker")]
        for group in (workers, [child for child in ordered if child not in workers]):
            for child in group:
                child.signal(signal.SIGTERM)
            deadline = time.monotonic() + GRACE_SECONDS
            for child in group:
                try:
                    child.process.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    self.stdout.write(f"{child.name} did not stop in time: killed.")
                    child.signal(signal.SIGKILL)
                    child.process.wait()
        for child in children:
            child.signal(signal.SIGKILL)  # anything a child left in its group

    def _database_ensure(self) -> None:
        """Creates the database if the server has no such database yet."""
        import psycopg

        config = settings.DATABASES["default"]
        params: dict[str, Any] = {
            "host": config.get("HOST") or "127.0.0.1",
            "port": config.get("PORT") or 5432,
            "user": config.get("USER") or None,
            "password": config.get("PASSWORD") or None,
        }
        name = config["NAME"]
        try:
            with psycopg.connect(dbname="postgres", autocommit=True, **params) as connection:
                exists = connection.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", [name]
                ).fetchone()
                if not exists:
                    connection.execute(f'CREATE DATABASE "{name}"')
                    self.stdout.write(f"Created the database {name}.")
        except psycopg.Error as error:
            raise CommandError(
                f"PostgreSQL at {params['host']}:{params['port']} does not answer "
                f"({type(error).__name__}). Start it, or point DATABASE_URL elsewhere."
            ) from None

    def _environment(self, options: dict[str, Any]) -> dict[str, str]:
        env = dict(os.environ)
        env.setdefault("A2A_DEMO_MODEL_URL", f"http://127.0.0.1:{options['demo_port']}")
        # The demo model listens on loopback, which the distributed mode refuses unless allowed.
        env.setdefault("A2A_OUTBOUND_ALLOWED_HOSTS", "127.0.0.1")
        env.setdefault("A2A_METRICS_ALLOWED_NETWORKS", "127.0.0.1,::1")
        env["PYTHONUNBUFFERED"] = "1"
        return env
