"""The measures rules fire on, each read over its window with a bounded query on an index.

Calls come from the ledger (`(workspace, started_at)` index), workers from their heartbeat rows,
Ollama nodes from their last probe, waiting runs from `(status, …)`. A measure that cannot be
computed (too few calls, no baseline) says why and leaves the incident as it is: unknown is not
zero, so it neither fires nor resolves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from agents.models import LedgerEntry, OllamaNode
from monitoring.alerts.kinds import SPIKE_BASELINE_WINDOWS
from monitoring.alerts.models import AlertRule, RuleKind
from workflows.models import RunStatus, Worker

# Runs read when looking for long waits: a workspace with more runs waiting than this has a
# bigger problem than which of them waited longest, and the count says "at least".
WAITING_SCAN_LIMIT = 1000
MB = 2**20


@dataclass(frozen=True)
class Measurement:
    value: Decimal | None  # None: not computable now (see `note`)
    firing: bool
    summary: str  # one sentence for people: what was measured, against what
    note: str = ""


def _unknown(note: str) -> Measurement:
    return Measurement(None, False, note, note)


def _window(rule: AlertRule, now: datetime) -> tuple[datetime, datetime]:
    return now - timedelta(minutes=rule.window_minutes), now


def _finished_calls(rule: AlertRule, start: datetime, end: datetime) -> QuerySet[LedgerEntry]:
    return LedgerEntry.objects.filter(
        workspace_id=rule.workspace_id,
        started_at__gte=start,
        started_at__lt=end,
        status__in=(LedgerEntry.Status.COMPLETED, LedgerEntry.Status.FAILED),
    )


def _minutes(rule: AlertRule) -> str:
    minutes = rule.window_minutes
    return f"{minutes // 60} h" if minutes % 60 == 0 and minutes >= 60 else f"{minutes} min"


def measure_error_rate(rule: AlertRule, now: datetime) -> Measurement:
    start, end = _window(rule, now)
    counts = _finished_calls(rule, start, end).aggregate(
        total=Count("call_id"), failed=Count("call_id", filter=Q(status=LedgerEntry.Status.FAILED))
    )
    total, failed = counts["total"], counts["failed"]
    if total < max(rule.min_calls, 1):
        return _unknown(
            f"{total} call(s) in the last {_minutes(rule)}; the rule needs {rule.min_calls}."
        )
    rate = (Decimal(failed) * 100 / Decimal(total)).quantize(Decimal("0.01"))
    return Measurement(
        rate,
        rate > rule.threshold,
        f"Error rate {rate.normalize():f} % over the last {_minutes(rule)} "
        f"({failed} of {total} calls failed); threshold {rule.threshold.normalize():f} %.",
    )


def measure_latency_p95(rule: AlertRule, now: datetime) -> Measurement:
    start, end = _window(rule, now)
    timed = _finished_calls(rule, start, end).filter(
        status=LedgerEntry.Status.COMPLETED, latency_ms__isnull=False
    )
    total = timed.count()
    if total < max(rule.min_calls, 1):
        return _unknown(
            f"{total} timed call(s) in the last {_minutes(rule)}; the rule needs {rule.min_calls}."
        )
    # The nearest-rank 95th percentile: the smallest latency at least 95 % of calls do not exceed.
    rank = math.ceil(total * 0.95) - 1
    p95_ms = timed.order_by("latency_ms").values_list("latency_ms", flat=True)[rank]
    seconds = (Decimal(p95_ms or 0) / 1000).quantize(Decimal("0.001"))
    return Measurement(
        seconds,
        seconds > rule.threshold,
        f"95 % of {total} calls over the last {_minutes(rule)} answered within "
        f"{seconds.normalize():f} s; threshold {rule.threshold.normalize():f} s.",
    )


def _spend(rule: AlertRule, start: datetime, end: datetime) -> tuple[Decimal, int]:
    """Spend of priced calls, and how many calls in the range have no known price."""
    rows = LedgerEntry.objects.filter(
        workspace_id=rule.workspace_id, started_at__gte=start, started_at__lt=end
    ).aggregate(
        spend=Sum("cost", filter=~Q(price_source=LedgerEntry.PriceSource.UNKNOWN)),
        unpriced=Count("call_id", filter=Q(price_source=LedgerEntry.PriceSource.UNKNOWN)),
    )
    return Decimal(rows["spend"] or 0), rows["unpriced"]


def _unpriced_note(unpriced: int) -> str:
    return f" {unpriced} call(s) with an unknown price are not counted." if unpriced else ""


def measure_spend_rate(rule: AlertRule, now: datetime) -> Measurement:
    start, end = _window(rule, now)
    spend, unpriced = _spend(rule, start, end)
    return Measurement(
        spend,
        spend > rule.threshold,
        f"${spend.quantize(Decimal('0.0001')).normalize():f} spent over the last "
        f"{_minutes(rule)}; threshold ${rule.threshold.normalize():f}.{_unpriced_note(unpriced)}",
    )


def _usual_spend(rule: AlertRule, start: datetime) -> Decimal:
    """The spend of an ordinary window: the average over the SPIKE_BASELINE_WINDOWS before this
    one, read from the dashboards' hourly rollups (whole hours ending before the window) through
    their metrics query, so a day of baseline costs a few dozen rows, not the raw ledger."""
    from monitoring.metrics.answer import metrics_answer
    from monitoring.metrics.query import MetricsQuery

    end = start.replace(minute=0, second=0, microsecond=0)
    hours = max(1, math.ceil(rule.window_minutes * SPIKE_BASELINE_WINDOWS / 60))
    query = MetricsQuery(
        measures=("cost",), start=end - timedelta(hours=hours), end=end, range_name="custom"
    )
    rows = metrics_answer(rule.workspace_id, query)["rows"]
    total = sum((Decimal(str(row.get("cost") or 0)) for row in rows), Decimal(0))
    return total * rule.window_minutes / (hours * 60)


def measure_spend_spike(rule: AlertRule, now: datetime) -> Measurement:
    start, end = _window(rule, now)
    spend, unpriced = _spend(rule, start, end)
    baseline = _usual_spend(rule, start)
    if baseline <= 0:
        return _unknown(
            f"No priced spend in the {SPIKE_BASELINE_WINDOWS} windows before the last "
            f"{_minutes(rule)} to compare with."
        )
    ratio = (spend / baseline).quantize(Decimal("0.01"))
    return Measurement(
        ratio,
        ratio > rule.threshold,
        f"${spend.quantize(Decimal('0.0001')).normalize():f} over the last {_minutes(rule)}, "
        f"{ratio.normalize():f}× the usual ${baseline.quantize(Decimal('0.0001')).normalize():f};"
        f" threshold {rule.threshold.normalize():f}×.{_unpriced_note(unpriced)}",
    )


def measure_worker_memory(rule: AlertRule, now: datetime) -> Measurement:
    start, _ = _window(rule, now)
    busiest = (
        Worker.objects.filter(stopped_at__isnull=True, last_seen_at__gte=start)
        .order_by("-rss_bytes")
        .values("name", "rss_bytes")
        .first()
    )
    if busiest is None:
        return _unknown(f"No worker reported in the last {_minutes(rule)}.")
    megabytes = (Decimal(busiest["rss_bytes"]) / MB).quantize(Decimal("0.1"))
    return Measurement(
        megabytes,
        megabytes > rule.threshold,
        f"Worker {busiest['name']} uses {megabytes.normalize():f} MB; "
        f"threshold {rule.threshold.normalize():f} MB.",
    )


def measure_ollama_down(rule: AlertRule, now: datetime) -> Measurement:
    down = list(
        OllamaNode.objects.filter(
            provider__workspace_id=rule.workspace_id,
            enabled=True,
            status=OllamaNode.Status.DOWN,
        )
        .order_by("name")
        .values_list("name", flat=True)[:20]
    )
    count = Decimal(len(down))
    names = ", ".join(down) if down else "none"
    return Measurement(
        count,
        count > rule.threshold,
        f"Ollama nodes down: {names}.",
    )


def measure_run_waiting(rule: AlertRule, now: datetime) -> Measurement:
    limit = now - timedelta(minutes=float(rule.threshold))
    # Top-level runs: a sub-run's question is its parent's too, and counts once.
    waiting = (
        rule.workspace.runs.filter(status=RunStatus.WAITING, parent__isnull=True)
        .order_by()
        .values_list("waiting_request", "created_at")[:WAITING_SCAN_LIMIT]
    )
    late = 0
    for request, created_at in waiting:
        since = parse_datetime(str((request or {}).get("since") or "")) or created_at
        if timezone.is_naive(since):
            since = timezone.make_aware(since)
        if since < limit:
            late += 1
    return Measurement(
        Decimal(late),
        late > 0,
        f"{late} run(s) waiting for a person longer than {rule.threshold.normalize():f} min.",
    )


MEASURES = {
    RuleKind.ERROR_RATE: measure_error_rate,
    RuleKind.LATENCY_P95: measure_latency_p95,
    RuleKind.SPEND_RATE: measure_spend_rate,
    RuleKind.SPEND_SPIKE: measure_spend_spike,
    RuleKind.WORKER_MEMORY: measure_worker_memory,
    RuleKind.OLLAMA_DOWN: measure_ollama_down,
    RuleKind.RUN_WAITING: measure_run_waiting,
}
