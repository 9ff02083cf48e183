"""What every driver of bench/peers/run.py shares: the plan it is given, the timing, the report.

Standard library only: the drivers run in the peers' own virtual environments. A driver is

    python <driver>.py --base-url http://127.0.0.1:PORT/v1 --plan '<JSON list of cases>'

and prints one JSON line: {"cases": [...], "versions": {...}}. A case names a workload, the
model latency (through the model name the fake server is scripted with), whether the model
calls are streamed and how many runs to time. The driver adapts one system to three callables:

    sequential(topic)  three model calls, each reading the previous answer
    fan_out(topic)     four model calls at once, then one reading their four answers
    (W3 is 50 concurrent `sequential` pipelines)

Each timed case starts with one untimed run (connections and lazy imports warmed), and the
caller of the harness keeps one set of clients for the whole process, as an application would.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

# Model calls per run and on the run's critical path (the calls that happen one after another).
CALLS = {"W1": 3, "W2": 5}
CRITICAL = {"W1": 3, "W2": 2}
PROMPTS = {
    "W1": (
        "Research this topic: {topic}",
        "Analyse these findings:\n{previous}",
        "Write a report from:\n{previous}",
    ),
    "W2": tuple(f"Study {{topic}} from angle {i}" for i in range(4)) + ("Combine: {previous}",),
}


def model_name(latency_ms: int) -> str:
    """The fake server answers this model after `latency_ms` (bench/peers/run.py scripts it)."""
    return f"bench-{latency_ms}ms"


class Workloads:
    """What a driver implements for one (stream, latency) setting."""

    async def sequential(self, topic: str) -> str:
        raise NotImplementedError

    async def fan_out(self, topic: str) -> str:
        raise NotImplementedError

    async def close(self) -> None:
        """Releases the clients (connection pools) the driver opened."""


# (base URL, model name, stream, variant): a driver may offer more than one way to run.
Factory = Callable[[str, str, bool, str], Awaitable[Workloads]]


async def time_case(case: dict[str, Any], workloads: Workloads) -> dict[str, Any]:
    kind = case["workload"]
    latency = float(case["latency_ms"])
    run = workloads.sequential if kind in ("W1", "W3") else workloads.fan_out
    warm = await run("warm-up")
    if not isinstance(warm, str) or not warm:
        raise RuntimeError(f"{kind}: the run returned no text ({warm!r})")
    result: dict[str, Any] = dict(case)
    if kind == "W3":
        count = int(case["pipelines"])
        started = time.perf_counter()
        answers = await asyncio.gather(*(run(f"topic {i}") for i in range(count)))
        wall_ms = (time.perf_counter() - started) * 1000
        result["wall_ms"] = round(wall_ms, 2)
        result["failed"] = sum(1 for answer in answers if not answer)
        return result
    samples = []
    # The CPU time of this process (every thread) per model call: what the system itself spends,
    # which other work on the machine inflates far less than the wall time.
    cpu_started = time.process_time()
    for i in range(int(case["runs"])):
        started = time.perf_counter()
        answer = await run(f"topic {i}")
        elapsed_ms = (time.perf_counter() - started) * 1000
        if not answer:
            raise RuntimeError(f"{kind}: run {i} returned no text")
        samples.append((elapsed_ms - latency * CRITICAL[kind]) / CALLS[kind])
    cpu_ms = (time.process_time() - cpu_started) * 1000
    result["overhead_per_step_ms"] = round(statistics.median(samples), 3)
    result["cpu_per_call_ms"] = round(cpu_ms / (len(samples) * CALLS[kind]), 3)
    result["samples"] = len(samples)
    return result


def main(factory: Factory, versions: Callable[[], dict[str, str]]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True, help="the fake server's OpenAI base URL")
    parser.add_argument("--plan", required=True, help="JSON list of cases")
    parser.add_argument("--variant", default="", help="a driver's other way to run")
    args = parser.parse_args()
    plan = json.loads(args.plan)

    async def all_cases() -> list[dict[str, Any]]:
        out = []
        built: dict[tuple[bool, int], Workloads] = {}
        for case in plan:
            key = (bool(case["stream"]), int(case["latency_ms"]))
            if key not in built:
                built[key] = await factory(args.base_url, model_name(key[1]), key[0], args.variant)
            out.append(await time_case(case, built[key]))
        for workloads in built.values():
            await workloads.close()
        return out

    cases = asyncio.run(all_cases())
    sys.stdout.write(json.dumps({"cases": cases, "versions": versions()}) + "\n")


def installed(*names: str) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "missing"
    return found
