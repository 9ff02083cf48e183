"""Ollama nodes: registering them, and probing their health and models."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from agents.models import OllamaNode, Provider
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
    available = tuple(
        sorted(str(m.get("name") or m.get("model")) for m in tags.get("models", []) if m)
    )
    loaded = tuple(
        {
            "name": str(m.get("name") or m.get("model")),
            "size_vram": m.get("size_vram"),
            "expires_at": m.get("expires_at"),
        }
        for m in ps.get("models", [])
        if m
    )
    return NodeProbe(True, str(version.get("version", "")), elapsed, available, loaded)


def _record(node_id: int, probe: NodeProbe) -> None:
    fields: dict[str, Any] = {"last_probe_at": timezone.now()}
    if probe.ok:
        fields |= {
            "status": OllamaNode.Status.UP,
            "version": probe.version,
            "response_ms": probe.response_ms,
            "available_models": list(probe.available),
            "loaded_models": list(probe.loaded),
            "last_error": "",
        }
    else:
        fields |= {"status": OllamaNode.Status.DOWN, "last_error": probe.error[:300]}
    OllamaNode.objects.filter(pk=node_id).update(**fields)


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
