"""What `/metrics` says, computed when it is scraped.

Counters are not kept in process memory: the ledger's daily rollups (`agents.rollups`) already
hold every finished model call's count, tokens, cost and latency buckets exactly, in the
transaction that finished the call. Summing them at scrape time is right across any number of
web and worker processes and machines, survives restarts without resets, and costs the model
call nothing — where prometheus_client's multiprocess mode would need a shared directory of
mmapped files per host, one more write per call, and a cleanup of dead processes' files, and
per-process endpoints would need every worker to serve HTTP and be discovered. Runs by status
are counted from their table, and the steps of runs still under way from theirs; queue depth is
read from Redis; what only a process knows (its memory, event-loop lag, WebSockets) comes from
the reports each one keeps in Redis (`a2a_site.process_gauges`).

Names follow Prometheus conventions: a `a2a_` prefix, base units (seconds, bytes, USD) in the
name, `_total` on counters. A price that is not known is never counted as $0: such calls' tokens
go to `a2a_model_unpriced_tokens_total`, and the cost counter covers priced calls only.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Final

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Count

from a2a_site.accounts.models import Workspace
from a2a_site.db import Columns
from a2a_site.process_gauges import process_gauges_read
from agents.histogram import BUCKET_EDGES_MS, FIRST_TOKEN_COLUMNS, LATENCY_COLUMNS
from agents.models import LedgerRollupDay, Provider
from agents.rollups import DAYS_VERSION_PREFIX, rollup_days_version
from monitoring.health import celery_queue_names
from monitoring.prometheus.exposition import Counter, Family, Gauge, Histogram, render
from workflows.models import Run, RunStatus, Step

logger = logging.getLogger(__name__)

CALL_LABELS: Final = ("provider", "model")
BUCKET_BOUNDS: Final = tuple(str(edge / 1000) for edge in BUCKET_EDGES_MS) + ("+Inf",)
# kombu's Redis transport keeps a queue's messages under its name, and priority messages under
# the name plus a separator and the priority step.
PRIORITY_SUFFIXES: Final = ("", "\x06\x163", "\x06\x166", "\x06\x169")
ACTIVE_STATUSES: Final = (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.WAITING)
PAST_DAYS_PREFIX: Final = "metrics:prometheus-past-days:"
PAST_DAYS_SECONDS: Final = 3600


def _rollup_sql(columns: tuple[str, ...], where: str) -> str:
    # The sums come back as integers (the cost as a float): PostgreSQL sums bigints as numeric,
    # and turning ~20k numerics into Decimals took longer than the query itself.
    table = Columns(LedgerRollupDay)
    sums = ", ".join(
        f"CAST(SUM({table[name]}) AS {'DOUBLE PRECISION' if name == 'cost' else 'BIGINT'})"
        for name in columns
    )
    keys = ", ".join(table[name] for name in ("provider_id", "model", "error_kind"))
    return f"SELECT {keys}, {sums} FROM {table.table} WHERE {table['day']} {where} GROUP BY {keys}"


def _rollup_read(columns: tuple[str, ...], where: str, today: datetime) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(_rollup_sql(columns, where), [today])
        return list(cursor.fetchall())


def _past_days_key(columns: tuple[str, ...], today: datetime) -> str | None:
    """Where the sums of whole past days are kept: they change only when a late call lands on
    such a day, which gives its workspace a new days version (agents/rollups.py). None when the
    cache cannot say."""
    ids = [str(pk) for pk in Workspace.objects.order_by("pk").values_list("pk", flat=True)]
    try:
        found = cache.get_many([DAYS_VERSION_PREFIX + pk for pk in ids])
    except Exception:  # noqa: BLE001 - without the cache every scrape reads every day
        return None
    versions = []
    for pk in ids:
        version = found.get(DAYS_VERSION_PREFIX + pk) or rollup_days_version(pk)
        if version is None:
            return None
        versions.append(f"{pk}={version}")
    asked = repr((today.isoformat(), columns, versions))
    return PAST_DAYS_PREFIX + hashlib.sha256(asked.encode()).hexdigest()


def _rollup_sums(columns: tuple[str, ...]) -> list[tuple[Any, ...]]:
    """Every daily rollup summed per (provider, model, outcome): the days before today from the
    cache when it has them, today's rows read at every scrape."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    key = _past_days_key(columns, today)
    past = None
    if key is not None:
        try:
            past = cache.get(key)
        except Exception:  # noqa: BLE001 - read them instead
            past = None
    if past is None:
        past = _rollup_read(columns, "< %s", today)
        if key is not None:
            try:
                cache.set(key, past, PAST_DAYS_SECONDS)
            except Exception:  # noqa: BLE001 - kept or not, the figures are the same
                logger.warning("metrics: could not keep the past days' sums")
    return [*past, *_rollup_read(columns, ">= %s", today)]


def _histogram(family: Histogram, labels: list[str], counts: list[int], sum_ms: float) -> None:
    family.add_histogram(labels, BUCKET_BOUNDS, counts, sum_ms / 1000)


class StudioCollector:
    """Reads the database, Redis and the process reports on every `collect()`."""

    def collect(self) -> Iterator[Family]:
        yield from self._runs_and_steps()
        yield from self._model_calls()
        yield from self._queues()
        yield from self._processes()

    # --- runs and steps ----------------------------------------------------------------------

    def _runs_and_steps(self) -> Iterator[Family]:
        runs = Gauge("a2a_runs", "Runs kept, by status.", labels=["status"])
        counted = dict(Run.objects.values_list("status").annotate(n=Count("id")).order_by())
        for status in RunStatus.values:
            runs.add_metric([status], counted.get(status, 0))
        yield runs
        # Only the steps of runs still under way: they are found through the runs' status index,
        # where counting every step ever kept (millions) would take longer than a scrape may.
        steps = Gauge(
            "a2a_active_run_steps",
            "Steps of the runs not finished yet (queued, running, waiting), by status and "
            "node type.",
            labels=["status", "type"],
        )
        for status, node_type, n in (
            Step.objects.filter(run__status__in=ACTIVE_STATUSES)
            .values_list("status", "node_type")
            .annotate(n=Count("id"))
            .order_by()
        ):
            steps.add_metric([status, node_type], n)
        yield steps

    # --- model calls -------------------------------------------------------------------------

    def _model_calls(self) -> Iterator[Family]:
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
        rows = _rollup_sums(columns)
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

        calls = Counter(
            "a2a_model_calls",
            "Finished model calls (attempts), by provider kind, model and outcome "
            "(ok, or the error kind).",
            labels=[*CALL_LABELS, "status"],
        )
        for (provider, model, status), sums in sorted(by_call.items()):
            calls.add_metric([provider, model, status], sums[at["calls"]])
        yield calls
        families = {
            "retries": Counter(
                "a2a_model_call_retries",
                "Model call attempts after a request's first.",
                labels=list(CALL_LABELS),
            ),
            "tokens": Counter(
                "a2a_model_tokens",
                "Tokens of finished model calls, by kind (prompt, completion; cached is part "
                "of prompt).",
                labels=[*CALL_LABELS, "kind"],
            ),
            "cost": Counter(
                "a2a_model_cost_usd",
                "Cost of priced model calls in US dollars; calls whose price is unknown add "
                "nothing here (see a2a_model_unpriced_tokens_total).",
                labels=list(CALL_LABELS),
            ),
            "unpriced_calls": Counter(
                "a2a_model_unpriced_calls",
                "Model calls whose price is unknown: their cost is not known, not zero.",
                labels=list(CALL_LABELS),
            ),
            "unpriced_tokens": Counter(
                "a2a_model_unpriced_tokens",
                "Tokens (prompt and completion) of model calls whose price is unknown.",
                labels=list(CALL_LABELS),
            ),
        }
        latency = Histogram(
            "a2a_model_call_duration_seconds",
            "Model call latency, from the request to the last byte of the answer.",
            labels=list(CALL_LABELS),
        )
        first_token = Histogram(
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

    def _queues(self) -> Iterator[Family]:
        if not settings.REDIS_URL:
            return  # the embedded mode has no broker: queued runs are a2a_runs{status="queued"}
        import redis

        up = Gauge("a2a_redis_up", "1 if Redis answered this scrape, else 0.")
        depth = Gauge(
            "a2a_celery_queue_messages", "Messages waiting in a Celery queue.", labels=["queue"]
        )
        unacked = Gauge(
            "a2a_celery_unacked_messages",
            "Messages delivered to a worker and not yet acknowledged.",
        )
        prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("global_keyprefix", "")
        queues = celery_queue_names()
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1
        )
        try:
            pipe = client.pipeline(transaction=False)
            for queue in queues:
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
        steps = len(PRIORITY_SUFFIXES)
        for index, queue in enumerate(queues):
            depth.add_metric([queue], sum(lengths[index * steps : (index + 1) * steps]))
        unacked.add_metric([], waiting_ack)
        yield from (up, depth, unacked)

    def _processes(self) -> Iterator[Family]:
        labels = ["process", "kind"]
        memory = Gauge(
            "a2a_process_resident_memory_bytes",
            "Resident memory of each live process.",
            labels=labels,
        )
        lag = Gauge(
            "a2a_process_event_loop_lag_seconds",
            "Worst delay of the process's event loop since its last report.",
            labels=labels,
        )
        sockets = Gauge(
            "a2a_websocket_connections",
            "Open WebSocket connections of each process.",
            labels=labels,
        )
        in_flight = Gauge(
            "a2a_process_runs_in_flight", "Runs executing in each process.", labels=labels
        )
        capacity = Gauge(
            "a2a_process_runs_capacity",
            "Runs each process may execute at once.",
            labels=labels,
        )
        for reading in process_gauges_read():
            names = [str(reading.get("process", "")), str(reading.get("kind", ""))]
            memory.add_metric(names, float(reading.get("resident_memory_bytes") or 0))
            if reading.get("event_loop_lag_seconds") not in (None, ""):
                lag.add_metric(names, float(reading["event_loop_lag_seconds"]))
            # A figure a process does not have (WebSockets in a worker, runs in daphne) is left
            # out rather than reported as 0.
            for family, field in (
                (sockets, "websocket_connections"),
                (in_flight, "runs_in_flight"),
                (capacity, "runs_capacity"),
            ):
                if reading.get(field) not in (None, ""):
                    family.add_metric(names, float(reading[field]))
        yield from (memory, lag, sockets, in_flight, capacity)


def metrics_text() -> bytes:
    return render(StudioCollector().collect())
