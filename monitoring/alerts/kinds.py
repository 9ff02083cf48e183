"""What each rule kind measures, in which unit, and the defaults a new workspace starts with.

Defaults follow the figures people first asked for: error rate above 10 %, responses slower than
30 s (p95), worker memory above 1 GB; plus an Ollama node down and a run waiting for a person
longer than an hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from monitoring.alerts.models import RuleKind


@dataclass(frozen=True)
class KindInfo:
    unit: str  # shown after the threshold
    threshold_label: str
    explain: str
    uses_window: bool = True
    uses_min_calls: bool = False
    periodic: bool = True  # False: fired by a signal (budgets), not by the evaluator


KINDS: dict[str, KindInfo] = {
    RuleKind.ERROR_RATE: KindInfo(
        "%",
        "Fires above (percent of calls failed)",
        "Share of provider calls that failed in the window.",
        uses_min_calls=True,
    ),
    RuleKind.LATENCY_P95: KindInfo(
        "s",
        "Fires above (seconds, 95th percentile)",
        "95th-percentile response time of the provider calls completed in the window.",
        uses_min_calls=True,
    ),
    RuleKind.SPEND_RATE: KindInfo(
        "$",
        "Fires above (dollars spent in the window)",
        "Spend of priced calls in the window; calls whose price is unknown are counted apart.",
    ),
    RuleKind.SPEND_SPIKE: KindInfo(
        "×",
        "Fires above (times the usual spend)",
        "Spend in the window against the average of the 24 windows before it (whole hours).",
    ),
    RuleKind.BUDGET: KindInfo(
        "%",
        "Fires at (percent of a budget's limit)",
        "A budget's spend crossing this share of its limit (sent by the budgets as it happens).",
        uses_window=False,
        periodic=False,
    ),
    RuleKind.WORKER_MEMORY: KindInfo(
        "MB",
        "Fires above (megabytes of memory)",
        "Resident memory of the busiest worker process reporting in the window.",
    ),
    RuleKind.OLLAMA_DOWN: KindInfo(
        "nodes",
        "Fires above (nodes down)",
        "Enabled Ollama nodes of this workspace that the last probe found down.",
        uses_window=False,
    ),
    RuleKind.RUN_WAITING: KindInfo(
        "min",
        "Fires when a run has waited longer than (minutes)",
        "Runs waiting for a person's answer or approval for longer than the threshold.",
        uses_window=False,
    ),
}

SPIKE_BASELINE_WINDOWS = 24


@dataclass(frozen=True)
class DefaultRule:
    kind: str
    name: str
    threshold: Decimal
    window_minutes: int = 15


DEFAULT_RULES = (
    DefaultRule(RuleKind.ERROR_RATE, "Error rate above 10 %", Decimal(10)),
    DefaultRule(RuleKind.LATENCY_P95, "Responses slower than 30 s", Decimal(30)),
    DefaultRule(RuleKind.WORKER_MEMORY, "Worker memory above 1 GB", Decimal(1024), 5),
    DefaultRule(RuleKind.OLLAMA_DOWN, "An Ollama node is down", Decimal(0)),
    DefaultRule(RuleKind.RUN_WAITING, "A run waits for a person over an hour", Decimal(60)),
    DefaultRule(RuleKind.BUDGET, "A budget reaches 80 %", Decimal(80)),
)


def threshold_text(kind: str, threshold: Decimal) -> str:
    unit = KINDS[kind].unit
    number = f"{threshold.normalize():f}"
    if unit == "$":
        return f"${number}"
    if unit in ("%", "×", "s"):
        return f"{number} {unit}" if unit != "×" else f"{number}×"
    return f"{number} {unit}"
