"""What `/metrics` says, computed when it is scraped.

Counters are not kept in process memory: the ledger's daily rollups (`agents.rollups`) already
hold every finished model call's count, tokens, cost and latency buckets exactly, in the
transaction that finished the call. Summing them at scrape time is right across any number of
web and worker processes and machines, survives restarts without resets, and costs the model
call nothing — where prometheus_client's multiprocess mode would need a shared directory of
mmapped files per host, one more write per call, and a cleanup of dead processes' files, and
per-process endpoints would need every worker to serve HTTP and be discovered. Runs and steps by
status are counted from their tables; queue depth is read from Redis; what only a process knows
(its memory, event-loop lag, WebSockets) comes from the reports each one keeps in Redis
(`a2a_site.process_gauges`).

Names follow Prometheus conventions: a `a2a_` prefix, base units (seconds, bytes, USD) in the
name, `_total` on counters. A price that is not known is never counted as $0: such calls' tokens
go to `a2a_model_unpriced_tokens_total`, and the cost counter covers priced calls only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any, Final

from django.conf import settings
from django.db.models import Count, Sum
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from a2a_site.process_gauges import process_gauges_read
from agents.histogram import BUCKET_EDGES_MS, FIRST_TOKEN_COLUMNS, LATENCY_COLUMNS
from agents.models import LedgerRollupDay, Provider
from workflows.models import Run, RunStatus, Step

logger = logging.getLogger(__name__)

CALL_LABELS: Final = ("provider", "model")
BUCKET_BOUNDS: Final = tuple(str(edge / 1000) for edge in BUCKET_EDGES_MS) + ("+Inf",)
# kombu's Redis transport keeps a queue's messages under its name, and priority messages under
# the name plus a separator and the priority step.
PRIORITY_SUFFIXES: Final = ("", "\x06\x163", "\x06\x166", "\x06\x169")


def _histogram(
    family: HistogramMetricFamily, labels: list[str], counts: list[int], sum_ms: float
) -> None:
    running, cumulative = 0, []
    for bound, count in zip(BUCKET_BOUNDS, counts, strict=True):
        running += count
        cumulative.append((bound, float(running)))
    family.add_metric(labels, cumulative, sum_ms / 1000)


class StudioCollector(Collector):
    """Reads the database, Redis and the process reports on every `collect()`."""

    def collect(self) -> Iterator[Metric]:
        yield from self._runs_and_steps()
        yield from self._model_calls()
        yield from self._queues()
        yield from self._processes()

    # --- runs and steps ----------------------------------------------------------------------

    def _runs_and_steps(self) -> Iterator[Metric]:
        runs = GaugeMetricFamily("a2a_runs", "Runs kept, by status.", labels=["status"])
        counted = dict(Run.objects.values_list("status").annotate(n=Count("id")).order_by())
        for status in RunStatus.values:
            runs.add_metric([status], counted.get(status, 0))
        yield runs
        steps = GaugeMetricFamily(
            "a2a_steps",
            "Steps of the runs kept, by status and node type.",
            labels=["status", "type"],
        )
        for status, node_type, n in (
            Step.objects.values_list("status", "node_type").annotate(n=Count("id")).order_by()
        ):
            steps.add_metric([status, node_type], n)
        yield steps

    # --- model calls -------------------------------------------------------------------------

    def _model_calls(self) -> Iterator[Metric]:
        kinds = {str(pk): kind for pk, kind in Provider.objects.values_list("pk", "kind")}
        columns = (
            "calls",
            "retries",
            "prompt_tokens",
            "completion_tokens",
            "cached_tokens",
            "cost",
            "unpriced_calls",
            "unpriced_tokens",
            "latency_ms_sum",
            "first_token_ms_sum",
            "first_token_count",
            *LATENCY_COLUMNS,
            *FIRST_TOKEN_COLUMNS,
        )
        rows = (
            LedgerRollupDay.objects.values_list("provider_id", "model", "error_kind")
            .annotate(**{f"s_{name}": Sum(name) for name in columns})
            .order_by()
        )
        # Several providers of one kind (or a deleted provider) fold into one label set.
        by_call: dict[tuple[str, str, str], list[Any]] = {}
        for provider_id, model, error_kind, *sums in rows:
            key = (kinds.get(provider_id, "unknown"), model or "unknown", error_kind or "ok")
            into = by_call.setdefault(key, [0] * len(columns))
            for index, value in enumerate(sums):
                into[index] += value or 0
        by_model: dict[tuple[str, str], list[Any]] = {}
        for (provider, model, _status), sums in by_call.items():
            into = by_model.setdefault((provider, model), [0] * len(columns))
            for index, value in enumerate(sums):
                into[index] += value
        at = {name: index for index, name in enumerate(columns)}

        calls = CounterMetricFamily(
            "a2a_model_calls",
            "Finished model calls (attempts), by provider kind, model and outcome "
            "(ok, or the error kind).",
            labels=[*CALL_LABELS, "status"],
        )
        for (provider, model, status), sums in sorted(by_call.items()):
            calls.add_metric([provider, model, status], sums[at["calls"]])
        yield calls
        families = {
            "retries": CounterMetricFamily(
                "a2a_model_call_retries",
                "Model call attempts after a request's first.",
                labels=list(CALL_LABELS),
            ),
            "tokens": CounterMetricFamily(
                "a2a_model_tokens",
                "Tokens of finished model calls, by kind (prompt, completion; cached is part "
                "of prompt).",
                labels=[*CALL_LABELS, "kind"],
            ),
            "cost": CounterMetricFamily(
                "a2a_model_cost_usd",
                "Cost of priced model calls in US dollars; calls whose price is unknown add "
                "nothing here (see a2a_model_unpriced_tokens_total).",
                labels=list(CALL_LABELS),
            ),
            "unpriced_calls": CounterMetricFamily(
                "a2a_model_unpriced_calls",
                "Model calls whose price is unknown: their cost is not known, not zero.",
                labels=list(CALL_LABELS),
            ),
            "unpriced_tokens": CounterMetricFamily(
                "a2a_model_unpriced_tokens",
                "Tokens (prompt and completion) of model calls whose price is unknown.",
                labels=list(CALL_LABELS),
            ),
        }
        latency = HistogramMetricFamily(
            "a2a_model_call_duration_seconds",
            "Model call latency, from the request to the last byte of the answer.",
            labels=list(CALL_LABELS),
        )
        first_token = HistogramMetricFamily(
            "a2a_model_time_to_first_token_seconds",
            "Streamed model calls: from the request to the first token of the answer.",
            labels=list(CALL_LABELS),
        )
        latency_at = [at[name] for name in LATENCY_COLUMNS]
        first_at = [at[name] for name in FIRST_TOKEN_COLUMNS]
        for (provider, model), sums in sorted(by_model.items()):
            labels = [provider, model]
            families["retries"].add_metric(labels, sums[at["retries"]])
            for kind in ("prompt", "completion", "cached"):
                families["tokens"].add_metric([*labels, kind], sums[at[f"{kind}_tokens"]])
            families["cost"].add_metric(labels, float(sums[at["cost"]]))
            families["unpriced_calls"].add_metric(labels, sums[at["unpriced_calls"]])
            families["unpriced_tokens"].add_metric(labels, sums[at["unpriced_tokens"]])
            _histogram(
                latency, labels, [sums[i] for i in latency_at], float(sums[at["latency_ms_sum"]])
            )
            if sums[at["first_token_count"]]:
                _histogram(
                    first_token,
                    labels,
                    [sums[i] for i in first_at],
                    float(sums[at["first_token_ms_sum"]]),
                )
        yield from families.values()
        yield latency
        yield first_token

    # --- queues and processes ----------------------------------------------------------------

    def _queues(self) -> Iterator[Metric]:
        if not settings.REDIS_URL:
            return  # the embedded mode has no broker: queued runs are a2a_runs{status="queued"}
        import redis

        up = GaugeMetricFamily("a2a_redis_up", "1 if Redis answered this scrape, else 0.")
        depth = GaugeMetricFamily(
            "a2a_celery_queue_messages", "Messages waiting in a Celery queue.", labels=["queue"]
        )
        unacked = GaugeMetricFamily(
            "a2a_celery_unacked_messages",
            "Messages delivered to a worker and not yet acknowledged.",
        )
        prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("global_keyprefix", "")
        queue = getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", "celery")
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1
        )
        try:
            pipe = client.pipeline(transaction=False)
            for suffix in PRIORITY_SUFFIXES:
                pipe.llen(f"{prefix}{queue}{suffix}")
            pipe.hlen(f"{prefix}unacked")
            *lengths, waiting_ack = pipe.execute()
        except (redis.RedisError, OSError) as error:
            logger.warning("metrics: Redis did not answer (%s)", type(error).__name__)
            up.add_metric([], 0)
            yield up
            return
        finally:
            client.close()
        up.add_metric([], 1)
        depth.add_metric([queue], sum(lengths))
        unacked.add_metric([], waiting_ack)
        yield from (up, depth, unacked)

    def _processes(self) -> Iterator[Metric]:
        labels = ["process", "kind"]
        memory = GaugeMetricFamily(
            "a2a_process_resident_memory_bytes",
            "Resident memory of each live process.",
            labels=labels,
        )
        lag = GaugeMetricFamily(
            "a2a_process_event_loop_lag_seconds",
            "Worst delay of the process's event loop since its last report.",
            labels=labels,
        )
        sockets = GaugeMetricFamily(
            "a2a_websocket_connections",
            "Open WebSocket connections of each process.",
            labels=labels,
        )
        in_flight = GaugeMetricFamily(
            "a2a_process_runs_in_flight", "Runs executing in each process.", labels=labels
        )
        capacity = GaugeMetricFamily(
            "a2a_process_runs_capacity",
            "Runs each process may execute at once.",
            labels=labels,
        )
        for reading in process_gauges_read():
            names = [str(reading.get("process", "")), str(reading.get("kind", ""))]
            memory.add_metric(names, float(reading.get("resident_memory_bytes") or 0))
            if reading.get("event_loop_lag_seconds") not in (None, ""):
                lag.add_metric(names, float(reading["event_loop_lag_seconds"]))
            sockets.add_metric(names, float(reading.get("websocket_connections") or 0))
            if reading.get("kind") != "web":
                in_flight.add_metric(names, float(reading.get("runs_in_flight") or 0))
                capacity.add_metric(names, float(reading.get("runs_capacity") or 0))
        yield from (memory, lag, sockets, in_flight, capacity)


def metrics_registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StudioCollector())
    return registry
