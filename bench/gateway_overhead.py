"""The gateway's cost per call beside a raw aiohttp call to the same fakellm endpoint.

Starts `python -m agents.fakellm` in a subprocess on loopback, then in this process measures p50
and p95 latency of plain and streamed (50 chunks, usage chunk) chat completions, one at a time
and 50 in flight, through `Gateway.complete` (with an InMemoryLedger) and through a bare aiohttp
POST that reads the whole body; plus CPU ms per call at 50 in flight and resident memory.

    .venv/bin/python bench/gateway_overhead.py

The last line is one JSON object with the figures.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agents.llm import (  # noqa: E402
    Deployment,
    Gateway,
    InMemoryLedger,
    LLMRequest,
    Route,
    RoutePlan,
)

WARMUP = 50
SEQUENTIAL = 300
CONCURRENT_TOTAL = 1000
CONCURRENCY = 50
STREAM_CHUNKS = 50
KEY = "sk-bench-0000"
MESSAGES = [
    {"role": "system", "content": "You are a researcher. Cite evidence and stay neutral."},
    {"role": "user", "content": "Summarize recent findings about solar panels."},
]
SCRIPT = {"rules": [{"model": "bench-stream", "chunks": STREAM_CHUNKS}]}
HEADERS = {"Content-Type": "application/json", "Authorization": "Bearer " + KEY}


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


async def wait_ready(session: aiohttp.ClientSession, url: str) -> None:
    for _ in range(100):
        try:
            async with session.get(url + "/_fakellm/health") as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.05)
    raise SystemExit("fakellm does not answer")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def timed(fn: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await fn()
    return (time.perf_counter() - started) * 1000


async def sequential(fn: Callable[[], Awaitable[Any]], n: int) -> list[float]:
    return [await timed(fn) for _ in range(n)]


async def concurrent(fn: Callable[[], Awaitable[Any]], n: int) -> tuple[list[float], float]:
    semaphore = asyncio.Semaphore(CONCURRENCY)

    async def one() -> float:
        async with semaphore:
            return await timed(fn)

    cpu = time.process_time()
    latencies = await asyncio.gather(*(one() for _ in range(n)))
    return list(latencies), (time.process_time() - cpu) * 1000 / n


async def main() -> dict[str, Any]:
    proc, url = start_server()
    try:
        return await run(url)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


async def run(url: str) -> dict[str, Any]:
    connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
    raw_session = aiohttp.ClientSession(connector=connector)
    await wait_ready(raw_session, url)
    async with raw_session.post(url + "/_fakellm/script", json=SCRIPT) as resp:
        assert resp.status == 200
    endpoint = url + "/v1/chat/completions"
    plain_body = json.dumps({"model": "gpt-4o-mini", "messages": MESSAGES}).encode()
    stream_body = json.dumps(
        {
            "model": "bench-stream",
            "messages": MESSAGES,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    ).encode()

    async def raw_plain() -> None:
        async with raw_session.post(endpoint, data=plain_body, headers=HEADERS) as r:
            json.loads(await r.read())
            assert r.status == 200

    async def raw_stream() -> None:
        async with raw_session.post(endpoint, data=stream_body, headers=HEADERS) as r:
            async for _ in r.content.iter_any():
                pass
            assert r.status == 200

    ledger = InMemoryLedger()
    gateway = Gateway(ledger=ledger)
    plain_plan = RoutePlan(Route([Deployment("bench", "openai", "gpt-4o-mini", url + "/v1", KEY)]))
    stream_plan = RoutePlan(
        Route([Deployment("bench-s", "openai", "bench-stream", url + "/v1", KEY)])
    )
    plain_request = LLMRequest(MESSAGES, stream=False)
    stream_request = LLMRequest(MESSAGES, stream=True)
    deltas: list[str] = []

    async def gw_plain() -> None:
        await gateway.complete(plain_request, plain_plan)

    async def gw_stream() -> None:
        await gateway.complete(stream_request, stream_plan, on_delta=deltas.append)

    out: dict[str, Any] = {}
    cases = {
        "": (gw_plain, raw_plain),
        "stream_": (gw_stream, raw_stream),
    }
    for label, (gw_fn, raw_fn) in cases.items():
        await sequential(gw_fn, WARMUP)
        await sequential(raw_fn, WARMUP)
        # Interleaved halves, so that drift in the machine's load hits both alike.
        gw_lat: list[float] = []
        raw_lat: list[float] = []
        for _ in range(2):
            gw_lat += await sequential(gw_fn, SEQUENTIAL // 2)
            raw_lat += await sequential(raw_fn, SEQUENTIAL // 2)
        ledger.clear()
        deltas.clear()
        out[f"gateway_{label}p50_ms"] = round(statistics.median(gw_lat), 3)
        out[f"gateway_{label}p95_ms"] = round(percentile(gw_lat, 0.95), 3)
        out[f"raw_{label}p50_ms"] = round(statistics.median(raw_lat), 3)
        out[f"raw_{label}p95_ms"] = round(percentile(raw_lat, 0.95), 3)

        gw_c, gw_cpu = await concurrent(gw_fn, CONCURRENT_TOTAL)
        raw_c, raw_cpu = await concurrent(raw_fn, CONCURRENT_TOTAL)
        ledger.clear()
        deltas.clear()
        out[f"gateway_{label}c50_p50_ms"] = round(statistics.median(gw_c), 3)
        out[f"gateway_{label}c50_p95_ms"] = round(percentile(gw_c, 0.95), 3)
        out[f"raw_{label}c50_p50_ms"] = round(statistics.median(raw_c), 3)
        out[f"raw_{label}c50_p95_ms"] = round(percentile(raw_c, 0.95), 3)
        out[f"gateway_{label}c50_cpu_ms_per_call"] = round(gw_cpu, 3)
        out[f"raw_{label}c50_cpu_ms_per_call"] = round(raw_cpu, 3)
        print(
            f"{label or 'plain_'}: gateway p50 {out[f'gateway_{label}p50_ms']} ms, "
            f"raw p50 {out[f'raw_{label}p50_ms']} ms; c50 gateway p50 "
            f"{out[f'gateway_{label}c50_p50_ms']} ms, raw {out[f'raw_{label}c50_p50_ms']} ms; "
            f"c50 CPU/call gateway {gw_cpu:.3f} ms, raw {raw_cpu:.3f} ms",
            flush=True,
        )

    await gateway.aclose()
    await raw_session.close()
    out["rss_mb"] = round(psutil.Process().memory_info().rss / 2**20, 1)
    out["litellm_imported"] = "litellm" in sys.modules
    return out


if __name__ == "__main__":
    result = asyncio.run(main())
    print(json.dumps(result, sort_keys=True))
