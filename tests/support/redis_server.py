"""A Redis server of the test's own, on a free port, that the test may stop and start again.

Fault tests take Redis away from the processes they start; they never touch the shared Redis
(REDIS_URL) the rest of the suite uses. Nothing is persisted: a restart starts empty, as a Redis
that lost its memory would.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from tests.support.processes import ARTIFACTS, free_port
from tests.support.waiting import wait_for

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


class PrivateRedis:
    def __init__(self, name: str = "redis-private") -> None:
        self.port = free_port()
        self.name = name
        self.dir = tempfile.mkdtemp(prefix="a2a-redis-")
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        assert self.process is None, "already running"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        log = ARTIFACTS / f"{self.name}.log"
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    REDIS_SERVER,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    self.dir,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_for(self.answers, timeout=10, interval=0.02, what=f"redis on port {self.port}")

    def answers(self) -> bool:
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def stop(self) -> None:
        """Kills the server at once, as a crash or a restart would: clients see refused
        connections until `start` is called again."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextmanager
def private_redis(name: str = "redis-private") -> Iterator[PrivateRedis]:
    server = PrivateRedis(name)
    server.start()
    try:
        yield server
    finally:
        server.close()
