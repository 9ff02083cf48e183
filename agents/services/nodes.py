"""Ollama nodes: registering them, and probing their health and models."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from agents.models import OllamaNode, Provider
from agents.stamps import workspace_runtime_changed
from agents.urlpolicy import (
    OutboundHostUnresolved,
    OutboundURLRefused,
    model_url_check,
    policy_resolver,
)

PROBE_TIMEOUT_S = 5.0


def _clean_url(url: str) -> str:
    try:
        return model_url_check(url.strip()).rstrip("/")
    except OutboundHostUnresolved:
        return url.strip().rstrip("/")  # probed again and again; shown as down until it resolves
    except OutboundURLRefused as refused:
        raise ValidationError({"base_url": str(refused)}) from None


def node_save(*, node: OllamaNode, labels: list[str]) -> OllamaNode:
    if node.provider.kind != "ollama":
        raise ValidationError("Only Ollama providers have nodes.")
    node.base_url = _clean_url(node.base_url)
    node.labels = labels
    try:
        with transaction.atomic():
            node.save()
    except IntegrityError:
        raise ValidationError({"name": "Another node of this provider has this name."}) from None
    return node


def node_memory_set(*, node: OllamaNode, memory_gb: str) -> OllamaNode:
    """Records the memory the node gives models (GB, blank for unknown): the capacity planner
    places models only on nodes whose memory it knows."""
    text = memory_gb.strip().replace(",", ".")
    if not text:
        node.memory_gb = None
    else:
        try:
            value = float(text)
        except ValueError:
            raise ValidationError("Enter the memory in GB, e.g. 24 or 7.5.") from None
        if not 0.5 <= value <= 100_000:
            raise ValidationError("The memory is between 0.5 and 100000 GB.")
        node.memory_gb = value
    node.save(update_fields=["memory_gb"])
    return node


def node_delete(*, node: OllamaNode) -> None:
    node.delete()


@dataclass(frozen=True)
class NodeProbe:
    ok: bool
    version: str = ""
    response_ms: int | None = None
    available: tuple[str, ...] = ()
    loaded: tuple[dict[str, Any], ...] = ()
    error: str = ""
    info: dict[str, dict[str, Any]] = field(default_factory=dict)  # by model name, from /api/tags


async def _get_json(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url, allow_redirects=False) as response:
        if response.status != 200:
            raise ValueError(f"HTTP {response.status} from {url.rsplit('/', 2)[-2:]}")
        return await response.json(content_type=None)


async def node_probe_url(base_url: str) -> NodeProbe:
    """Asks one node for its version, its models and the models it holds in memory."""
    timeout = aiohttp.ClientTimeout(total=PROBE_TIMEOUT_S, sock_connect=3)
    started = time.perf_counter()
    try:
        connector = aiohttp.TCPConnector(resolver=policy_resolver())
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            version = await _get_json(session, f"{base_url}/api/version")
            elapsed = int((time.perf_counter() - started) * 1000)
            tags, ps = await asyncio.gather(
                _get_json(session, f"{base_url}/api/tags"), _get_json(session, f"{base_url}/api/ps")
            )
    except OutboundURLRefused as refused:
        return NodeProbe(False, error=str(refused))
    except TimeoutError:
        return NodeProbe(False, error=f"No answer within {PROBE_TIMEOUT_S:.0f} s.")
    except aiohttp.ClientConnectorError:
        return NodeProbe(False, error="Connection refused or host unreachable.")
    except (aiohttp.ClientError, ValueError) as error:
        return NodeProbe(False, error=f"Not an Ollama answer ({str(error)[:120]}).")
    listed = [m for m in tags.get("models", []) if isinstance(m, dict)]
    available = tuple(sorted(str(m.get("name") or m.get("model")) for m in listed))
    info = {str(m.get("name") or m.get("model")): _model_info(m) for m in listed}
    loaded = tuple(
        {
            "name": str(m.get("name") or m.get("model")),
            # The node's own report: total bytes held, and of them those in GPU memory.
            "size": _int_or_none(m.get("size")),
            "size_vram": _int_or_none(m.get("size_vram")),
            "context_length": _int_or_none(m.get("context_length")),
            "expires_at": m.get("expires_at"),
        }
        for m in ps.get("models", [])
        if isinstance(m, dict)
    )
    return NodeProbe(True, str(version.get("version", "")), elapsed, available, loaded, info=info)


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _model_info(entry: dict[str, Any]) -> dict[str, Any]:
    raw = entry.get("details")
    details: dict[str, Any] = raw if isinstance(raw, dict) else {}
    return {
        "size": _int_or_none(entry.get("size")),
        "parameter_size": str(details.get("parameter_size") or "")[:20],
        "quantization_level": str(details.get("quantization_level") or "")[:20],
        "family": str(details.get("family") or "")[:40],
    }


HOUR_POINTS = 60
DAY_POINTS = 96


def node_history_add(
    history: dict[str, Any], *, at: float, ok: bool, response_ms: int | None
) -> dict[str, Any]:
    """The node's probe rings with one probe more: a point a minute for the last hour and a
    point a quarter-hour for the last day, each [start epoch s, probes, up, mean latency ms of
    the probes that answered (null if none)]. Bounded: old points fall off."""
    updated: dict[str, Any] = {}
    for span, seconds, points in (("hour", 60, HOUR_POINTS), ("day", 900, DAY_POINTS)):
        ring = [list(point) for point in history.get(span) or () if len(point) == 4]
        start = int(at // seconds * seconds)
        if ring and ring[-1][0] == start:
            _, probes, ups, mean = ring[-1]
        else:
            probes, ups, mean = 0, 0, None
            ring.append([start, 0, 0, None])
        if ok and response_ms is not None:
            mean = response_ms if mean is None else (mean * ups + response_ms) / (ups + 1)
        ring[-1] = [
            start,
            probes + 1,
            ups + (1 if ok else 0),
            None if mean is None else round(mean, 1),
        ]
        updated[span] = ring[-points:]
    return updated


def _record(node_id: int, probe: NodeProbe) -> None:
    now = timezone.now()
    fields: dict[str, Any] = {"last_probe_at": now}
    if probe.ok:
        fields |= {
            "status": OllamaNode.Status.UP,
            "version": probe.version,
            "response_ms": probe.response_ms,
            "available_models": list(probe.available),
            "loaded_models": list(probe.loaded),
            "models_info": probe.info,
            "last_error": "",
        }
    else:
        fields |= {"status": OllamaNode.Status.DOWN, "last_error": probe.error[:300]}
    with transaction.atomic():
        # The row is locked while its rings are read and written: two probers lose no point.
        found = (
            OllamaNode.objects.select_for_update()
            .filter(pk=node_id)
            .values_list("history", "status", "available_models", "provider__workspace_id")
            .first()
        )
        if found is None:
            return  # removed meanwhile
        history, status, available, workspace_id = found
        fields["history"] = node_history_add(
            history or {}, at=now.timestamp(), ok=probe.ok, response_ms=probe.response_ms
        )
        OllamaNode.objects.filter(pk=node_id).update(**fields)
        if fields["status"] != status or fields.get("available_models", available) != available:
            # Where runs may route changed: executors resolve the workspace's agents again.
            workspace_runtime_changed(workspace_id)


async def nodes_probe(nodes: list[OllamaNode]) -> dict[int, NodeProbe]:
    """Probes nodes concurrently."""
    probes = await asyncio.gather(*(node_probe_url(node.base_url) for node in nodes))
    return {node.pk: probe for node, probe in zip(nodes, probes, strict=True)}


def _probe_and_record(nodes: list[OllamaNode]) -> dict[int, NodeProbe]:
    # Probing is concurrent; recording happens here, in the caller's thread and transaction.
    results = asyncio.run(nodes_probe(nodes)) if nodes else {}
    for node_id, probe in results.items():
        _record(node_id, probe)
    return results


def provider_nodes_probe(provider: Provider) -> dict[int, NodeProbe]:
    return _probe_and_record(list(provider.nodes.filter(enabled=True)))


def fleet_probe() -> int:
    """Probes every enabled node of every workspace; the periodic health check."""
    nodes = list(OllamaNode.objects.filter(enabled=True, provider__kind="ollama"))
    _probe_and_record(nodes)
    return len(nodes)


SHOW_TIMEOUT_S = 3.0


async def _show(base_url: str, model: str) -> dict[str, Any] | None:
    timeout = aiohttp.ClientTimeout(total=SHOW_TIMEOUT_S, sock_connect=2)
    try:
        connector = aiohttp.TCPConnector(resolver=policy_resolver())
        async with (
            aiohttp.ClientSession(timeout=timeout, connector=connector) as session,
            session.post(
                f"{base_url}/api/show", json={"model": model}, allow_redirects=False
            ) as response,
        ):
            if response.status != 200:
                return None
            body = await response.json(content_type=None)
    except (OutboundURLRefused, TimeoutError, aiohttp.ClientError, ValueError):
        return None
    return body if isinstance(body, dict) else None


def nodes_show(pairs: list[tuple[OllamaNode, str]]) -> dict[tuple[int, str], dict[str, Any] | None]:
    """What each node says of a model it holds (`/api/show`: details and architecture), asked
    concurrently; None where it does not answer. Kept in the cache for ten minutes: a model's
    description changes only when it is pulled again."""
    from django.core.cache import cache

    answers: dict[tuple[int, str], dict[str, Any] | None] = {}
    missing = []
    for node, model in pairs:
        try:
            cached = cache.get(f"a2a:show:{node.pk}:{model}")
        except Exception:  # noqa: BLE001 - the cache may be away; ask the node
            cached = None
        if cached is not None:
            answers[(node.pk, model)] = cached
        else:
            missing.append((node, model))
    if missing:

        async def ask() -> list[dict[str, Any] | None]:
            return await asyncio.gather(*(_show(node.base_url, model) for node, model in missing))

        for (node, model), body in zip(missing, asyncio.run(ask()), strict=True):
            answers[(node.pk, model)] = body
            if body is not None:
                try:
                    # Only what the planner reads: details and architecture, not the template.
                    kept = {"details": body.get("details"), "model_info": body.get("model_info")}
                    cache.set(f"a2a:show:{node.pk}:{model}", kept, 600)
                    answers[(node.pk, model)] = kept
                except Exception:  # noqa: BLE001 - not cached this time
                    pass
    return answers
