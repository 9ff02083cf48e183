"""Starting the sample MCP server (tests/support/mcp_sample_server.py) as a real process."""

from __future__ import annotations

import socket
import sys

from tests.support.processes import ServerProcess, child_environment, free_port
from tests.support.waiting import wait_for

SAMPLE_ARGV = [sys.executable, "-m", "tests.support.mcp_sample_server"]


def start_mcp_sample(name: str = "mcp-sample") -> tuple[ServerProcess, str]:
    """The process and its streamable HTTP endpoint's URL, once it listens."""
    port = free_port()
    process = ServerProcess(name, [*SAMPLE_ARGV, "--port", str(port)], child_environment())

    def listening() -> bool:
        process.assert_running()
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0

    wait_for(listening, timeout=30, interval=0.05, what="the sample MCP server to listen")
    return process, f"http://127.0.0.1:{port}/mcp"
