"""A small MCP server the tests start as a real process: `python -m tests.support.mcp_sample_server
--port N [--token T]` (streamable HTTP at /mcp) or `--stdio`. No Django.

Tools: `add` (two numbers), `echo` (text, with an optional repeat), `fail` (always an error
result), `slow` (sleeps, then answers), `calls` (how many times each tool was called so far).
"""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter

from mcp.server.mcpserver import MCPServer

calls: Counter[str] = Counter()
server = MCPServer("studio-test-tools")


@server.tool(description="Add two numbers.")
def add(a: float, b: float) -> str:
    calls["add"] += 1
    total = a + b
    return str(int(total) if total == int(total) else total)


@server.tool(description="Repeat a text.")
def echo(text: str, times: int = 1) -> str:
    calls["echo"] += 1
    return " ".join([text] * times)


@server.tool(description="Always fails.")
def fail(reason: str = "no reason") -> str:
    calls["fail"] += 1
    raise ValueError(f"The tool refused: {reason}")


@server.tool(description="Sleep, then answer.")
async def slow(seconds: float) -> str:
    calls["slow"] += 1
    await asyncio.sleep(seconds)
    return f"Slept {seconds} s."


@server.tool(description="How many times each tool was called.")
def count() -> str:
    return ", ".join(f"{name}={number}" for name, number in sorted(calls.items())) or "none"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--stdio", action="store_true")
    args = parser.parse_args()
    if args.stdio:
        server.run("stdio")
    else:
        server.run("streamable-http", host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
