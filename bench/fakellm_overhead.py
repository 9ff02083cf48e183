"""fakellm's own cost per request, so that it cannot be mistaken for the gateway's.

Starts `python -m agents.fakellm` in a subprocess on loopback, drives it with aiohttp from this
process, and reads the server's CPU time with psutil before and after each phase. Phases: plain and
streamed (50 chunks, with the usage chunk) chat completions, sequential and 50 at a time.

    .venv/bin/python bench/fakellm_overhead.py

The last line is one JSON object with the figures.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import psutil

REPO = Path(__file__).resolve().parents[1]
WARMUP = 100
SEQUENTIAL_PLAIN = 1000
SEQUENTIAL_STREAM = 300
CONCURRENCY = 50
CONCURRENT_ROUNDS = 20
STREAM_CHUNKS = 50

MESSAGES = [
    {"role": "system", "content": "You are a researcher. Cite evidence and stay neutral."},
    {"role": "user", "content": "Summarize recent findings about solar panels."},
]
PLAIN = json.dumps({"model": "demo", "messages": MESSAGES}).encode()
STREAM = json.dumps(
    {
        "model": "bench-stream",
        "messages": MESSAGES,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
).encode()
SCRIPT = {"rules": [{"model": "bench-stream", "chunks": STREAM_CHUNKS}]}
HEADERS = {"Content-Type": "application/json", "Authorization": "Bearer sk-bench-0000"}


def start_server() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "agents.fakellm", "--port", "0", "--name", "bench"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("fakellm listening on "):
        proc.kill()
        raise SystemExit(f"fakellm did not start: {line!r}")
    return proc, line.split()[-1]


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


async def one(session: aiohttp.ClientSession, url: str, body: bytes, stream: bool) -> float:
    started = time.perf_counter()
    async with session.post(url, data=body, headers=HEADERS) as resp:
        if stream:
            async for _ in resp.content.iter_any():
                pass
        else:
            await resp.read()
        if resp.status != 200:
            raise SystemExit(f"unexpected status {resp.status}")
    return time.perf_counter() - started


async def phase(
    session: aiohttp.ClientSession,
    url: str,
    process: psutil.Process,
    *,
    stream: bool,
    concurrency: int,
    total: int,
) -> dict[str, float]:
    body = STREAM if stream else PLAIN
    latencies: list[float] = []
    cpu_before = cpu_seconds(process)
    wall_before = time.perf_counter()
    if concurrency == 1:
        for _ in range(total):
            latencies.append(await one(session, url, body, stream))
    else:
        for _ in range(total // concurrency):
            batch = [one(session, url, body, stream) for _ in range(concurrency)]
            latencies.extend(await asyncio.gather(*batch))
    wall = time.perf_counter() - wall_before
    cpu = cpu_seconds(process) - cpu_before
    ordered = sorted(latencies)
    return {
        "requests": len(latencies),
        "p50_ms": statistics.median(ordered) * 1000,
        "p95_ms": ordered[int(len(ordered) * 0.95) - 1] * 1000,
        "server_cpu_ms_per_request": cpu / len(latencies) * 1000,
        "requests_per_s": len(latencies) / wall,
    }


async def main() -> dict[str, Any]:
    proc, base = start_server()
    process = psutil.Process(proc.pid)
    url = base + "/v1/chat/completions"
    try:
        connector = aiohttp.TCPConnector(limit=CONCURRENCY)
        async with aiohttp.ClientSession(connector=connector) as session:
            async with session.post(base + "/_fakellm/script", json=SCRIPT) as resp:
                assert resp.status == 200
            for body, stream in ((PLAIN, False), (STREAM, True)):
                for _ in range(WARMUP):
                    await one(session, url, body, stream)
            results = {
                "plain": await phase(
                    session, url, process, stream=False, concurrency=1, total=SEQUENTIAL_PLAIN
                ),
                "stream": await phase(
                    session, url, process, stream=True, concurrency=1, total=SEQUENTIAL_STREAM
                ),
                "plain_concurrent": await phase(
                    session,
                    url,
                    process,
                    stream=False,
                    concurrency=CONCURRENCY,
                    total=CONCURRENCY * CONCURRENT_ROUNDS,
                ),
                "stream_concurrent": await phase(
                    session,
                    url,
                    process,
                    stream=True,
                    concurrency=CONCURRENCY,
                    total=CONCURRENCY * CONCURRENT_ROUNDS,
                ),
            }
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return results


def report(results: dict[str, dict[str, float]]) -> None:
    print(f"fakellm overhead (stream = {STREAM_CHUNKS} chunks + usage chunk; loopback)")
    print(f"{'phase':<20}{'requests':>9}{'p50 ms':>9}{'p95 ms':>9}{'cpu ms/req':>12}{'req/s':>9}")
    for name, r in results.items():
        print(
            f"{name:<20}{r['requests']:>9.0f}{r['p50_ms']:>9.3f}{r['p95_ms']:>9.3f}"
            f"{r['server_cpu_ms_per_request']:>12.3f}{r['requests_per_s']:>9.0f}"
        )
    summary = {
        "plain_p50_ms": round(results["plain"]["p50_ms"], 3),
        "plain_p95_ms": round(results["plain"]["p95_ms"], 3),
        "stream_p50_ms": round(results["stream"]["p50_ms"], 3),
        "stream_p95_ms": round(results["stream"]["p95_ms"], 3),
        "concurrent_plain_p50_ms": round(results["plain_concurrent"]["p50_ms"], 3),
        "concurrent_stream_p50_ms": round(results["stream_concurrent"]["p50_ms"], 3),
        "server_cpu_ms_per_plain_request": round(results["plain"]["server_cpu_ms_per_request"], 3),
        "server_cpu_ms_per_stream_request": round(
            results["stream"]["server_cpu_ms_per_request"], 3
        ),
        "server_cpu_ms_per_concurrent_plain_request": round(
            results["plain_concurrent"]["server_cpu_ms_per_request"], 3
        ),
        "server_cpu_ms_per_concurrent_stream_request": round(
            results["stream_concurrent"]["server_cpu_ms_per_request"], 3
        ),
        "stream_chunks": STREAM_CHUNKS,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    report(asyncio.run(main()))
