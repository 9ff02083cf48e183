"""bench/peers/run.py in a tiny configuration: A2A Studio in both modes and the raw baseline.

The peers' virtual environments are not created here (CI has no package index): LangGraph is
asked for with an empty environments folder, so the bench must say it could not set it up, still
print everything else, and leave every ratio to LangGraph unknown rather than made up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
# One model latency is enough to go through every path the bench has (50 ms: a pipeline's three
# calls one after another then show in its time); the bench's own default also runs 0 ms.
CELLS = {"W1_50ms", "W2_50ms", "W3_50ms"}


def _bench_database_url() -> str:
    database = settings.DATABASES["default"]
    user = database.get("USER") or "postgres"
    password = f":{database['PASSWORD']}" if database.get("PASSWORD") else ""
    host = database.get("HOST") or "127.0.0.1"
    port = database.get("PORT") or 5432
    # A database of the bench's own, beside the test database (the bench migrates it).
    name = f"{database['NAME']}_peers_bench"[:63]
    return f"postgres://{user}{password}@{host}:{port}/{name}"


@pytest.mark.services
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_bench_runs_studio_and_the_baseline_and_names_the_peer_it_could_not_set_up(
    tmp_path: Path,
) -> None:
    env = {
        **os.environ,
        "BENCH_PEERS_VENVS": str(tmp_path / "no-venvs"),
        "BENCH_PEERS_DATABASE_URL": _bench_database_url(),
        "BENCH_PEERS_REDIS_URL": str(settings.REDIS_URL),
    }
    command = [
        sys.executable,
        "bench/peers/run.py",
        "--quick",
        "--no-install",
        "--systems",
        "raw,langgraph,a2a_embedded,a2a_distributed",
        "--latencies",
        "50",
        "--runs",
        "3",
        "--pipelines",
        "2",
        "--capacity",
        "3",
    ]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=850)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    summary = json.loads(lines[-1])

    # The peer that could not be set up is named, on the screen and in the figures.
    assert "NOT SET UP: LangGraph" in done.stdout
    assert "no environment" in summary["not_set_up"]["langgraph"]
    assert "langgraph:plain" not in summary["cells"]
    for key in (
        "ratio_embedded_vs_langgraph",
        "ratio_distributed_vs_langgraph_streamed",
        "ratio_distributed_vs_langgraph",
    ):
        assert key in summary
        assert summary[key] is None, f"{key} without LangGraph must be unknown"
    assert "LangGraph did not run" in done.stdout

    # Everything else ran and measured something, and nothing failed.
    assert summary["failed"] == {}
    for unit in ("raw:plain", "raw:streamed", "a2a_embedded", "a2a_distributed"):
        cells = summary["cells"][unit]
        assert set(cells) == CELLS, unit
        assert all(isinstance(v, int | float) for v in cells.values()), (unit, cells)
        # A pipeline at 50 ms makes three calls one after another: at least 150 ms.
        assert cells["W3_50ms"] >= 150, (unit, cells)
        assert summary["per_step_mean_ms"][unit] is not None
    # The fake server saw what each system asked for.
    assert summary["streamed_share"]["raw:plain"] == 0
    assert summary["streamed_share"]["raw:streamed"] == 1
    assert summary["streamed_share"]["a2a_distributed"] is not None

    # Studio is also timed until the launching process saw the result, which comes later.
    for unit in ("a2a_embedded", "a2a_distributed"):
        assert summary["per_step_mean_seen_ms"][unit] is not None
        phases = summary["studio_phases_p50_ms"][unit]["W1_50ms"]
        assert set(phases) == {"launch", "hop", "engine", "noticed"}
        assert phases["engine"] > 0 and phases["noticed"] >= 0

    # The distributed mode's own timestamps give the Celery hop.
    assert summary["celery_hop_p50_ms"] > 0
    capacity = summary["capacity"]
    assert capacity["succeeded"] == 3 and capacity["failed"] == 0
    assert capacity["wall_s"] >= 3.0  # three calls at 1 s each, one after another
    assert capacity["worker_rss_peak_mb"] > 0
    # Where its time went: the last lease, then each wave of calls (three runs' firsts, ...).
    assert 0 <= capacity["last_leased_s"] < capacity["wall_s"]
    assert len(capacity["call_waves_spread_s"]) == 3
    assert all(0 <= spread < 3.0 for spread in capacity["call_waves_spread_s"])
    assert summary["capacity_busy"] is None  # not asked for

    # The table is printed, one row per system that ran.
    assert any(line.startswith("| raw aiohttp, plain") for line in lines)
    assert any(line.startswith("| A2A Studio, distributed") for line in lines)
