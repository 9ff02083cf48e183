"""A2A Studio beside its peers: the same workloads, the same fake model server, one run.

    python bench/peers/run.py                  # everything, 3 batches
    python bench/peers/run.py --busy           # and the capacity check again under a load
    python bench/peers/run.py --quick --systems raw,a2a_embedded,a2a_distributed --no-install

Workloads (each at 0 and 50 ms model latency, plain and streamed model calls):
  W1  three model calls in sequence, each reading the previous answer
  W2  four model calls at once, then one combining their answers
  W3  50 concurrent W1 pipelines (wall time, launch to the last result)

Systems: a raw aiohttp baseline (no framework), LangGraph, AutoGen AgentChat, the OpenAI Agents
SDK — each pinned in bench/peers/requirements-<name>.txt and installed in a virtual environment
of its own that this script creates under .bench-venvs/ on first use — and A2A Studio embedded
(SQLite, in-process executor) and distributed (PostgreSQL, one Celery worker, Redis; launch to
result). Every system runs as a subprocess of this script (bench/peers/drivers/) against the
project's fake OpenAI-compatible server, which this script starts; the order of the systems
rotates from batch to batch, and each figure is the median of the batches' medians.

Overhead per step = (run time - model latency on the run's critical path) / model calls. A2A
Studio's figures run from `run_start` until the run's result is stored (its `finished_at`) and
include persisting every step and event, leases, the ledger and live publishing; the time until
the launching process saw the run finished is printed beside them ("seen"), with where a run's
time went by its own timestamps. A2A Studio decides itself whether to stream a model call, so it
has one row per mode and the share of its calls that were streamed (from the fake server's log).

After the batches: --capacity N (200) concurrent three-step runs at 1 s latency on one Celery
worker (ideal 3 s; the worker's peak RSS), and with --busy the same again while a load generator
started here keeps a core busy. A peer whose environment cannot be set up is reported as such,
and everything else still runs. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DRIVERS = HERE / "drivers"
VENVS = Path(os.environ.get("BENCH_PEERS_VENVS", ROOT / ".bench-venvs"))
REPLY = "A short, useful answer."
DRIVER_TIMEOUT_S = 1200
INSTALL_TIMEOUT_S = 1200

# name: (label, driver, its virtual environment (None: the project's), the driver's variant)
PEERS: dict[str, tuple[str, str, str | None, str]] = {
    "raw": ("raw aiohttp", "raw_aiohttp.py", None, ""),
    "langgraph": ("LangGraph", "langgraph_peer.py", "langgraph", ""),
    "autogen": ("AutoGen AgentChat, GraphFlow team", "autogen_peer.py", "autogen", ""),
    "autogen_agents": ("AutoGen AgentChat, agents in code", "autogen_peer.py", "autogen", "agents"),
    "openai_agents": ("OpenAI Agents SDK", "openai_agents_peer.py", "openai_agents", ""),
}
STUDIO: dict[str, str] = {
    "a2a_embedded": "A2A Studio, embedded (SQLite, in-process)",
    "a2a_distributed": "A2A Studio, distributed (PostgreSQL, Celery, Redis)",
}
ALL_SYSTEMS = [*PEERS, *STUDIO]


# --- the fake model server --------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fake_request(url: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url + path, data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def start_fakellm(latencies: list[int]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "agents.fakellm", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            fake_request(url, "/_fakellm/health")
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the fake model server did not start") from None
            time.sleep(0.05)  # a process starting up: nothing to await but its port
    # One model name per latency (bench-50ms answers after 50 ms), so no system changes the
    # server's script while another runs; the capacity check uses 1 s.
    names = sorted({*latencies, 1000})
    fake_request(
        url,
        "/_fakellm/script",
        {
            "models": [f"bench-{ms}ms" for ms in names],
            "rules": [{"model": f"bench-{ms}ms", "reply": REPLY, "delay_ms": ms} for ms in names]
            + [{"reply": REPLY}],
        },
    )
    return process, url


def streamed_share(url: str) -> float | None:
    """Of the chat requests the fake server logged since its last reset, the share streamed."""
    logged = fake_request(url, "/_fakellm/requests")
    entries = logged.get("requests", []) if isinstance(logged, dict) else logged
    bodies = [
        entry.get("body") or {}
        for entry in entries
        if entry.get("path", "").endswith("/chat/completions")
    ]
    if not bodies:
        return None
    return round(sum(1 for b in bodies if b.get("stream")) / len(bodies), 3)


# --- the peers' environments -------------------------------------------------------------------


def venv_python(name: str) -> Path:
    return VENVS / name / "bin" / "python"


def peer_setup(name: str, install: bool) -> tuple[str | None, str]:
    """(interpreter, "") when the peer can run, else (None, why not)."""
    if PEERS[name][2] is None:
        return sys.executable, ""
    name = PEERS[name][2]
    requirements = HERE / f"requirements-{name}.txt"
    wanted = requirements.read_text()
    marker = VENVS / name / ".bench-requirements"
    python = venv_python(name)
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return str(python), ""
    if not install:
        return None, f"no environment at {VENVS / name} (run without --no-install to create it)"
    print(f"setting up {name}: {requirements.relative_to(ROOT)} into {VENVS / name}", flush=True)
    VENVS.mkdir(parents=True, exist_ok=True)
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(VENVS / name)],
        [str(python), "-m", "pip", "install", "-q", "-r", str(requirements)],
    ]
    for step in steps:
        try:
            done = subprocess.run(step, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return None, f"{' '.join(step[:4])} took over {INSTALL_TIMEOUT_S} s"
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            return None, f"{' '.join(step[:4])} failed: {' / '.join(tail)}"
    marker.write_text(wanted)
    return str(python), ""


# --- one driver run ----------------------------------------------------------------------------


def plan_for(args: argparse.Namespace, stream: bool) -> list[dict[str, Any]]:
    cases = []
    for latency in args.latencies:
        runs = args.runs if latency == 0 else max(3, args.runs // 3)
        cases.append({"workload": "W1", "latency_ms": latency, "stream": stream, "runs": runs})
        cases.append(
            {"workload": "W2", "latency_ms": latency, "stream": stream, "runs": max(3, runs // 2)}
        )
        if args.pipelines:
            cases.append(
                {
                    "workload": "W3",
                    "latency_ms": latency,
                    "stream": stream,
                    "pipelines": args.pipelines,
                }
            )
    return cases


def run_driver(command: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    done = subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=DRIVER_TIMEOUT_S,
        env={**os.environ, **(env or {})},
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = done.stderr.strip().splitlines()[-6:]
        raise RuntimeError(f"exit {done.returncode}: " + " / ".join(tail))
    return dict(json.loads(lines[-1]))


def unit_command(unit: str, python: str, url: str, plan: list[dict[str, Any]]) -> list[str]:
    system = unit.split(":")[0]
    if system in STUDIO:
        mode = system.removeprefix("a2a_")
        return [
            sys.executable,
            str(DRIVERS / "a2a_studio.py"),
            "--mode",
            mode,
            "--base-url",
            f"{url}/v1",
            "--plan",
            json.dumps(plan),
        ]
    driver = str(DRIVERS / PEERS[system][1])
    command = [python, driver, "--base-url", f"{url}/v1", "--plan", json.dumps(plan)]
    return command + (["--variant", PEERS[system][3]] if PEERS[system][3] else [])


# --- figures -----------------------------------------------------------------------------------

COLUMNS = [
    ("W1", 0, "3 seq, 0 ms"),
    ("W1", 50, "3 seq, 50 ms"),
    ("W2", 0, "4 par + 1, 0 ms"),
    ("W2", 50, "4 par + 1, 50 ms"),
    ("W3", 0, "50 pipelines, 0 ms"),
    ("W3", 50, "50 pipelines, 50 ms"),
]


def cell_key(workload: str, latency: int) -> str:
    return f"{workload}_{latency}ms"


def median_or_none(values: list[float]) -> float | None:
    return round(statistics.median(values), 2) if values else None


def per_step_mean(cells: dict[str, float | None]) -> float | None:
    """The row's mean overhead per step over the W1 and W2 cells measured."""
    values = [v for k, v in cells.items() if k.startswith(("W1", "W2")) and v is not None]
    return round(statistics.fmean(values), 3) if values else None


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b <= 0:
        return None
    return round(a / b, 3)


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))], 2)


def print_table(rows: dict[str, dict[str, Any]], labels: dict[str, str], columns: list) -> None:
    headers = [
        "system",
        *[c[2] for c in columns],
        "per step, mean",
        "CPU per call",
        "streamed calls",
    ]
    lines = []
    for unit, row in rows.items():
        cells = []
        for workload, latency, _ in columns:
            value = row["cells"].get(cell_key(workload, latency))
            unit_text = " ms" if workload == "W3" else ""
            cells.append("—" if value is None else f"{value:.1f}{unit_text}")
        mean = row.get("per_step_mean")
        share = row.get("streamed_share")
        cpu = row.get("cpu_per_call")
        lines.append(
            [
                labels[unit],
                *cells,
                "—" if mean is None else f"{mean:.2f}",
                "—" if cpu is None else f"{cpu:.2f}",
                "—" if share is None else f"{share:.0%}",
            ]
        )
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(headers)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for line in lines:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |")


# --- the background load -----------------------------------------------------------------------


def start_load(procs: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(HERE / "load.py"), "--procs", str(procs), "--seconds", "1800"],
        cwd=ROOT,
        start_new_session=True,  # its own process group: stopped whole by its id
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop_load(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    process.wait(30)


# --- main --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", default=",".join(ALL_SYSTEMS), help="comma-separated")
    parser.add_argument("--batches", type=int, help="3 (--quick: 1)")
    parser.add_argument("--runs", type=int, help="timed W1 runs per batch at 0 ms: 20 (4)")
    parser.add_argument("--pipelines", type=int, help="W3's concurrent pipelines: 50 (10)")
    parser.add_argument("--latencies", default="0,50", help="model latencies in ms")
    parser.add_argument(
        "--capacity", type=int, help="concurrent runs on one worker: 200 (20); 0 skips the check"
    )
    parser.add_argument("--busy", action="store_true", help="also run the capacity check loaded")
    parser.add_argument("--busy-procs", type=int, default=1, help="busy processes for --busy")
    parser.add_argument("--no-install", action="store_true", help="never create a peer's venv")
    parser.add_argument("--quick", action="store_true", help="a small configuration, for tests")
    args = parser.parse_args()
    defaults = {"batches": 3, "runs": 20, "pipelines": 50, "capacity": 200}
    if args.quick:
        defaults = {"batches": 1, "runs": 4, "pipelines": 10, "capacity": 20}
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.latencies = [int(x) for x in args.latencies.split(",") if x.strip()]
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = [s for s in systems if s not in ALL_SYSTEMS]
    if unknown:
        parser.error(f"unknown systems {unknown}; known: {', '.join(ALL_SYSTEMS)}")

    started_at = datetime.datetime.now(datetime.UTC)
    load_before = os.getloadavg()
    not_set_up: dict[str, str] = {}
    interpreters: dict[str, str] = {}
    for name in systems:
        if name in STUDIO:
            interpreters[name] = sys.executable
            continue
        python, why = peer_setup(name, install=not args.no_install)
        if python is None:
            not_set_up[name] = why
            print(f"NOT SET UP: {PEERS[name][0]}: {why}", flush=True)
        else:
            interpreters[name] = python

    units: list[str] = []
    labels: dict[str, str] = {}
    for name in systems:
        if name not in interpreters:
            continue
        if name in STUDIO:
            units.append(name)
            labels[name] = STUDIO[name]
        else:
            for stream in (False, True):
                unit = f"{name}:{'streamed' if stream else 'plain'}"
                units.append(unit)
                labels[unit] = f"{PEERS[name][0]}, {'streamed' if stream else 'plain'}"

    fake, url = start_fakellm(args.latencies)
    samples: dict[str, dict[str, list[float]]] = {unit: {} for unit in units}
    shares: dict[str, list[float]] = {unit: [] for unit in units}
    hops: dict[str, list[float]] = {unit: [] for unit in units}
    phases: dict[str, dict[str, dict[str, list[float]]]] = {unit: {} for unit in units}
    # A2A Studio's figures until its launching process saw the run finished (not to the row).
    seen: dict[str, dict[str, list[float]]] = {unit: {} for unit in units}
    cpu: dict[str, dict[str, list[float]]] = {unit: {} for unit in units}
    versions: dict[str, dict[str, str]] = {}
    failures: dict[str, str] = {}
    capacity: dict[str, Any] = {}
    try:
        for batch in range(args.batches):
            # Each batch starts elsewhere in the list, so no system always runs first or last.
            shift = batch * len(units) // max(1, args.batches)
            order = units[shift:] + units[:shift]
            print(f"batch {batch + 1}/{args.batches}: {', '.join(order)}", flush=True)
            for unit in order:
                if unit in failures:
                    continue
                system = unit.split(":")[0]
                stream = unit.endswith(":streamed")
                fake_request(url, "/_fakellm/reset", {})
                command = unit_command(unit, interpreters[system], url, plan_for(args, stream))
                began = time.monotonic()
                try:
                    out = run_driver(command)
                except (RuntimeError, subprocess.TimeoutExpired, ValueError) as error:
                    failures[unit] = str(error)[:800]
                    print(f"  {unit}: FAILED {failures[unit]}", flush=True)
                    continue
                versions[system] = out.get("versions", {})
                for case in out["cases"]:
                    key = cell_key(case["workload"], case["latency_ms"])
                    value = case.get("overhead_per_step_ms", case.get("wall_ms"))
                    samples[unit].setdefault(key, []).append(float(value))
                    if case.get("cpu_per_call_ms") is not None:
                        cpu[unit].setdefault(key, []).append(float(case["cpu_per_call_ms"]))
                    seen_value = case.get("overhead_per_step_seen_ms", case.get("wall_seen_ms"))
                    if seen_value is not None:
                        seen[unit].setdefault(key, []).append(float(seen_value))
                    for phase, ms in case.get("phases_p50_ms", {}).items():
                        phases[unit].setdefault(key, {}).setdefault(phase, []).append(ms)
                share = streamed_share(url)
                if share is not None:
                    shares[unit].append(share)
                hops[unit].extend(out.get("hops_ms", []))
                print(f"  {unit}: {time.monotonic() - began:.1f} s", flush=True)
        if args.capacity and "a2a_distributed" in interpreters:
            runs = [("quiet", False)] + ([("busy", True)] if args.busy else [])
            for name, loaded in runs:
                load = start_load(args.busy_procs) if loaded else None
                try:
                    print(f"capacity ({name}): {args.capacity} runs on one worker", flush=True)
                    runs_w1 = max(3, args.runs // 2)
                    plan = [{"workload": "W1", "latency_ms": 0, "stream": False, "runs": runs_w1}]
                    command = unit_command("a2a_distributed", sys.executable, url, plan)
                    out = run_driver([*command, "--capacity", str(args.capacity)])
                    capacity[name] = {
                        **out["capacity"],
                        "w1_0ms_overhead_per_step_ms": out["cases"][0]["overhead_per_step_ms"],
                        "celery_hop_p50_ms": percentile(out.get("hops_ms", []), 0.5),
                        "loadavg_1m": round(os.getloadavg()[0], 2),
                    }
                except (RuntimeError, subprocess.TimeoutExpired, ValueError) as error:
                    capacity[name] = {"error": str(error)[:800]}
                finally:
                    if load is not None:
                        stop_load(load)
    finally:
        fake.terminate()
        fake.wait(30)

    rows: dict[str, dict[str, Any]] = {}
    for unit in units:
        cells = {key: median_or_none(values) for key, values in samples[unit].items()}
        cpu_cells = {key: median_or_none(values) for key, values in cpu[unit].items()}
        rows[unit] = {
            "cells": cells,
            "per_step_mean": per_step_mean(cells),
            "cpu_per_call": per_step_mean(cpu_cells),
            "streamed_share": median_or_none(shares[unit]),
            "batches": max((len(v) for v in samples[unit].values()), default=0),
        }
        if unit in failures:
            rows[unit]["error"] = failures[unit]
    columns = [c for c in COLUMNS if c[1] in args.latencies]
    if args.pipelines != 50:
        columns = [
            (w, lat, text.replace("50 pipelines", f"{args.pipelines} pipelines"))
            for w, lat, text in columns
        ]

    print()
    print(
        f"{started_at:%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, load "
        f"{load_before[0]:.1f} → {os.getloadavg()[0]:.1f}; {args.batches} batches; "
        "per-step cells: overhead in ms per model call; pipelines: wall ms; CPU: ms per call"
    )
    print_table(rows, labels, columns)

    def mean_of(unit: str) -> float | None:
        return rows.get(unit, {}).get("per_step_mean")

    lg_plain, lg_streamed = mean_of("langgraph:plain"), mean_of("langgraph:streamed")
    lg_cpu = rows.get("langgraph:plain", {}).get("cpu_per_call")
    lg_cpu_streamed = rows.get("langgraph:streamed", {}).get("cpu_per_call")
    print()
    if lg_plain is None:
        print("ratios to LangGraph: LangGraph did not run, so there are none")
    else:
        print("per-step overhead relative to LangGraph (plain / streamed):")
        for unit in units:
            print(
                f"  {labels[unit]}: {ratio(mean_of(unit), lg_plain)}× / "
                f"{ratio(mean_of(unit), lg_streamed)}×"
            )
    seen_means: dict[str, float | None] = {}
    for unit in units:
        if not seen[unit]:
            continue
        seen_cells = {key: median_or_none(values) for key, values in seen[unit].items()}
        seen_means[unit] = per_step_mean(seen_cells)
        print(
            f"  {labels[unit]}, until the launching process saw the result: per step, mean "
            f"{seen_means[unit]} ({ratio(seen_means[unit], lg_plain)}× / "
            f"{ratio(seen_means[unit], lg_streamed)}×); "
            + ", ".join(f"{k} {v}" for k, v in sorted(seen_cells.items()))
        )
    for unit in units:
        for key, by_phase in sorted(phases[unit].items()):
            if key.startswith("W1"):
                parts = ", ".join(
                    f"{phase} {median_or_none(values)}" for phase, values in by_phase.items()
                )
                print(f"  {labels[unit]}, {key}, a run's time, p50 ms: {parts}")
    all_hops = hops.get("a2a_distributed", [])
    for name, figures in capacity.items():
        print(f"capacity ({name}): {json.dumps(figures)}")
    for name, why in not_set_up.items():
        print(f"NOT SET UP: {name}: {why}")
    for unit, why in failures.items():
        print(f"FAILED: {unit}: {why}")

    summary = {
        "ratio_embedded_vs_langgraph": ratio(mean_of("a2a_embedded"), lg_plain),
        "ratio_distributed_vs_langgraph_streamed": ratio(mean_of("a2a_distributed"), lg_streamed),
        "ratio_distributed_vs_langgraph": ratio(mean_of("a2a_distributed"), lg_plain),
        "ratio_embedded_vs_langgraph_streamed": ratio(mean_of("a2a_embedded"), lg_streamed),
        "ratio_embedded_vs_langgraph_seen": ratio(seen_means.get("a2a_embedded"), lg_plain),
        "ratio_distributed_vs_langgraph_streamed_seen": ratio(
            seen_means.get("a2a_distributed"), lg_streamed
        ),
        "per_step_mean_seen_ms": seen_means,
        # CPU time per model call (W1 and W2 cells' mean): the system's own processes; A2A
        # Studio distributed counts its worker and its launches, not PostgreSQL's or Redis's.
        "cpu_per_call_ms": {unit: rows[unit]["cpu_per_call"] for unit in units},
        "ratio_embedded_vs_langgraph_cpu": ratio(
            rows.get("a2a_embedded", {}).get("cpu_per_call"), lg_cpu
        ),
        "ratio_distributed_vs_langgraph_streamed_cpu": ratio(
            rows.get("a2a_distributed", {}).get("cpu_per_call"), lg_cpu_streamed
        ),
        "celery_hop_p50_ms": percentile(all_hops, 0.5),
        "celery_hop_p95_ms": percentile(all_hops, 0.95),
        "embedded_hop_p50_ms": percentile(hops.get("a2a_embedded", []), 0.5),
        "per_step_mean_ms": {unit: mean_of(unit) for unit in units},
        # A2A Studio's runs, from their own timestamps: launch (run_start until the row's
        # dispatch time), hop (until a worker holds the lease), engine (until finished), noticed
        # (until the launching process saw it finished).
        "studio_phases_p50_ms": {
            unit: {
                key: {phase: median_or_none(values) for phase, values in by_phase.items()}
                for key, by_phase in phases[unit].items()
            }
            for unit in units
            if phases[unit]
        },
        "cells": {unit: rows[unit]["cells"] for unit in units},
        "streamed_share": {unit: rows[unit]["streamed_share"] for unit in units},
        "capacity": capacity.get("quiet"),
        "capacity_busy": capacity.get("busy"),
        "not_set_up": not_set_up,
        "failed": failures,
        "versions": versions,
        "batches": args.batches,
        "runs": args.runs,
        "pipelines": args.pipelines,
        "latencies_ms": args.latencies,
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_start": round(load_before[0], 2),
            "loadavg_end": round(os.getloadavg()[0], 2),
        },
        "date": started_at.strftime("%Y-%m-%d %H:%M UTC"),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
