"""Reads for the Ollama fleet page: each node's health over time, its models, its load, and
the agents whose model no healthy node holds."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.db.models import Q
from django.utils import timezone

from agents.models import LedgerEntry, OllamaNode, Provider
from agents.ollama_models import canonical
from agents.selectors import agents_of, latest_versions

SPANS = {"hour": (60, 60), "day": (900, 96)}
# A pending ledger row older than this is an orphan the reaper will close, not a call in flight.
IN_FLIGHT_WINDOW = timedelta(minutes=10)


@dataclass(frozen=True)
class LoadedModel:
    name: str
    vram: int | None  # bytes in GPU memory, as the node reports them
    ram: int | None  # the rest of what it holds, in system memory
    context: int | None
    expires_at: str


@dataclass(frozen=True)
class PresentModel:
    name: str
    size: int | None
    parameter_size: str
    quantization: str
    loaded: bool


@dataclass
class NodeView:
    node: OllamaNode
    present: list[PresentModel]
    loaded: list[LoadedModel]
    in_flight: int
    failed_last_hour: int
    taken_over_last_hour: int  # calls it served after another attempt (here or elsewhere) failed
    latency: list[float | None]
    up: list[float | None]  # share of probes answered, per point
    uptime_percent: int | None

    @property
    def healthy(self) -> bool:
        return self.node.enabled and self.node.status == OllamaNode.Status.UP


@dataclass
class ProviderFleet:
    provider: Provider
    nodes: list[NodeView]


@dataclass(frozen=True)
class ModelWarning:
    agent_id: UUID
    agent: str
    model: str
    provider: str
    provider_id: UUID
    reason: str


@dataclass
class Fleet:
    providers: list[ProviderFleet] = field(default_factory=list)
    warnings: list[ModelWarning] = field(default_factory=list)


def probe_series(
    history: dict[str, Any], *, span: str, now: datetime
) -> tuple[list[float | None], list[float | None], int | None]:
    """(latency ms, share up) on a fixed grid ending now, and the share of probes answered."""
    seconds, count = SPANS[span]
    last = int(now.timestamp() // seconds * seconds)
    first = last - (count - 1) * seconds
    latency: list[float | None] = [None] * count
    up: list[float | None] = [None] * count
    probes = ups = 0
    for point in history.get(span) or ():
        try:
            start, n, ok, mean = int(point[0]), int(point[1]), int(point[2]), point[3]
        except (IndexError, TypeError, ValueError):
            continue
        if not (first <= start <= last) or n <= 0:
            continue
        slot = (start - first) // seconds
        latency[slot] = None if mean is None else float(mean)
        up[slot] = ok / n
        probes += n
        ups += ok
    return latency, up, (round(100 * ups / probes) if probes else None)


def _has(node: OllamaNode, model: str) -> bool:
    names = {canonical(name) for name in node.available_models}
    return canonical(model) in names


@dataclass
class LedgerCounts:
    """Per "provider:node" prefix of the ledger's deployment ids."""

    in_flight: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)  # last hour: the gateway moved on
    taken_over: Counter[str] = field(default_factory=Counter)  # last hour: a later attempt


def _ledger_counts(provider_ids: list[UUID], now: datetime) -> LedgerCounts:
    counts = LedgerCounts()
    rows = (
        LedgerEntry.objects.filter(
            provider_id__in=provider_ids,
            provider_kind="ollama",
            started_at__gte=now - max(IN_FLIGHT_WINDOW, timedelta(hours=1)),
        )
        .filter(
            Q(status__in=(LedgerEntry.Status.PENDING, LedgerEntry.Status.FAILED)) | Q(attempt__gt=1)
        )
        .values_list("deployment_id", "status", "started_at", "attempt")
        .iterator()
    )
    for deployment_id, status, started_at, attempt in rows:
        prefix = ":".join(deployment_id.split(":")[:2])
        if status == LedgerEntry.Status.PENDING and started_at >= now - IN_FLIGHT_WINDOW:
            counts.in_flight[prefix] += 1
        if status == LedgerEntry.Status.FAILED:
            counts.failed[prefix] += 1
        if attempt > 1:
            counts.taken_over[prefix] += 1
    return counts


def _node_view(node: OllamaNode, counts: LedgerCounts, span: str, now: datetime) -> NodeView:
    loaded_names = set()
    loaded = []
    for entry in node.loaded_models or ():
        if not isinstance(entry, dict):
            continue
        size, vram = entry.get("size"), entry.get("size_vram")
        loaded_names.add(canonical(str(entry.get("name"))))
        loaded.append(
            LoadedModel(
                str(entry.get("name")),
                vram if isinstance(vram, int) else None,
                size - vram if isinstance(size, int) and isinstance(vram, int) else None,
                entry.get("context_length")
                if isinstance(entry.get("context_length"), int)
                else None,
                str(entry.get("expires_at") or ""),
            )
        )
    info = node.models_info or {}
    present = [
        PresentModel(
            name,
            (info.get(name) or {}).get("size"),
            (info.get(name) or {}).get("parameter_size", ""),
            (info.get(name) or {}).get("quantization_level", ""),
            canonical(name) in loaded_names,
        )
        for name in node.available_models or ()
    ]
    key = f"{node.provider_id}:{node.pk}"
    latency, up, uptime = probe_series(node.history or {}, span=span, now=now)
    return NodeView(
        node,
        present,
        loaded,
        counts.in_flight[key],
        counts.failed[key],
        counts.taken_over[key],
        latency,
        up,
        uptime,
    )


def fleet_overview(workspace_id: UUID, *, span: str = "hour", now: datetime | None = None) -> Fleet:
    now = now or timezone.now()
    providers = list(
        Provider.objects.filter(workspace_id=workspace_id, kind="ollama")
        .prefetch_related("nodes")
        .order_by("name")
    )
    counts = _ledger_counts([p.pk for p in providers], now)
    fleet = Fleet(
        providers=[
            ProviderFleet(
                provider,
                [_node_view(n, counts, span, now) for n in provider.nodes.all()],
            )
            for provider in providers
        ]
    )
    fleet.warnings = _model_warnings(workspace_id, {str(p.pk): p for p in providers})
    return fleet


def _model_warnings(workspace_id: UUID, providers: dict[str, Provider]) -> list[ModelWarning]:
    """Agents whose primary model or a fallback, served by an Ollama fleet, is on no healthy
    node: their calls would fail (or fall back) now."""
    if not providers:
        return []
    agents = list(agents_of(workspace_id))
    versions = latest_versions([agent.pk for agent in agents])
    warnings = []
    for agent in agents:
        version = versions.get(agent.pk)
        if version is None:
            continue
        config = version.config
        choices = [config.get("model") or {}, *(config.get("fallbacks") or [])]
        for index, choice in enumerate(choices):
            provider = providers.get(str(choice.get("provider_id")))
            model = str(choice.get("model") or "")
            if provider is None or not model:
                continue
            nodes = [n for n in provider.nodes.all() if n.enabled]
            if any(n.status == OllamaNode.Status.UP and _has(n, model) for n in nodes):
                continue
            if not nodes:
                reason = "the provider has no enabled node"
            elif not any(n.status == OllamaNode.Status.UP for n in nodes):
                reason = "every node is down"
            elif any(_has(n, model) for n in nodes):
                reason = "only nodes that are down have it"
            else:
                reason = "no node has pulled it"
            warnings.append(
                ModelWarning(
                    agent.pk,
                    agent.name + ("" if index == 0 else " (fallback)"),
                    model,
                    provider.name,
                    provider.pk,
                    reason,
                )
            )
    return warnings
