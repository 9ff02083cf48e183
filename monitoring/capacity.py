"""Capacity planning for Ollama fleets: how much memory a model needs, and where it fits.

The formula, for one model loaded with a context of C tokens serving P requests at once
(Ollama gives each parallel request its own context: OLLAMA_NUM_PARALLEL × num_ctx):

    memory = weights + kv_per_token × C × P + overhead

- weights = parameters × bits per weight / 8, the bits of the quantization as llama.cpp's
  quantize tool states them (Q4_K_M 4.84, Q8_0 8.5, F16 16, ...). When a node holds the model,
  the size of its file (the node's /api/tags) is the weights: that is what it loads.
- kv_per_token = 2 (keys and values) × layers × key/value heads × head size × 2 bytes (an f16
  cache, Ollama's default), from the node's /api/show (`model_info`) or the catalogue of
  known models (agents/ollama_models.py). For an architecture known to neither, a conservative
  16 KiB per billion parameters per token (Llama 3.1 8B's own figure scaled; larger models
  with grouped-query attention need less) — shown as an estimate.
- overhead = 0.5 GiB + 5 % of the weights: a margin for the compute graph and the runtime's
  buffers, which vary with the GPU library; not a measured figure.

Placement is greedy and says so: the largest models first, each onto the healthy nodes with the
most memory left, a node taking as many parallel requests as its memory and its cap allow.
The plan assumes each node's memory is free for these models (Ollama unloads idle models).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from agents.ollama_models import architecture_of, canonical

GB = 1_000_000_000
GIB = 2**30
KV_BYTES_PER_ELEMENT = 2  # f16 cache
OVERHEAD_FIXED = GIB // 2
OVERHEAD_SHARE = 0.05
UNKNOWN_KV_PER_BILLION = 16 * 1024  # bytes per token per billion parameters (conservative)
DEFAULT_QUANTIZATION = "Q4_K_M"  # Ollama's library default for most models

# Effective bits per weight, scales included (llama.cpp quantize tool; legacy formats from
# their block layout: Q4_0 stores 32 weights in 18 bytes, Q8_0 in 34).
BITS_PER_WEIGHT = {
    "F32": 32.0,
    "F16": 16.0,
    "BF16": 16.0,
    "Q8_0": 8.5,
    "Q6_K": 6.56,
    "Q5_1": 6.0,
    "Q5_K_M": 5.68,
    "Q5_K_S": 5.52,
    "Q5_0": 5.5,
    "Q4_1": 5.0,
    "Q4_K_M": 4.84,
    "Q4_K_S": 4.58,
    "Q4_0": 4.5,
    "Q3_K_L": 4.27,
    "Q3_K_M": 3.91,
    "Q3_K_S": 3.5,
    "Q2_K": 3.35,
}

_SIZE = re.compile(r"^\s*([\d.]+)\s*([KMBT])\s*$", re.IGNORECASE)
_NAME_SIZE = re.compile(r"(?:^|[:\-_])(\d+(?:\.\d+)?)([bm])(?:$|[\-_.])", re.IGNORECASE)


def parameters_from_text(text: str) -> int | None:
    """ "8.0B" → 8e9, "500M" → 5e8 (Ollama's parameter_size)."""
    match = _SIZE.match(text or "")
    if not match:
        return None
    scale = {"K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}[match.group(2).upper()]
    return int(float(match.group(1)) * scale)


def parameters_from_name(name: str) -> int | None:
    """ "qwen2.5:14b" → 14e9; None when the name does not say."""
    match = _NAME_SIZE.search(name.lower())
    if not match:
        return None
    return int(float(match.group(1)) * (1e9 if match.group(2).lower() == "b" else 1e6))


@dataclass(frozen=True)
class ModelShape:
    """What the formula needs of a model, and where each figure came from."""

    name: str
    parameters: int | None
    quantization: str
    layers: int | None = None
    kv_heads: int | None = None
    key_length: int | None = None
    file_size: int | None = None  # bytes, the node's report
    source: str = "catalogue"  # "node", "catalogue", "name" or "unknown"

    @property
    def known(self) -> bool:
        return self.parameters is not None or self.file_size is not None


def bits_per_weight(quantization: str) -> float | None:
    return BITS_PER_WEIGHT.get(quantization.upper().strip())


def weights_bytes(shape: ModelShape) -> int | None:
    if shape.file_size:
        return shape.file_size
    bits = bits_per_weight(shape.quantization) or bits_per_weight(DEFAULT_QUANTIZATION)
    if shape.parameters is None or bits is None:
        return None
    return int(shape.parameters * bits / 8)


def kv_bytes_per_token(shape: ModelShape) -> int | None:
    if shape.layers and shape.kv_heads and shape.key_length:
        return 2 * shape.layers * shape.kv_heads * shape.key_length * KV_BYTES_PER_ELEMENT
    if shape.parameters is None:
        return None
    return int(UNKNOWN_KV_PER_BILLION * shape.parameters / 1e9)


def kv_is_estimated(shape: ModelShape) -> bool:
    return not (shape.layers and shape.kv_heads and shape.key_length)


def overhead_bytes(weights: int) -> int:
    return int(OVERHEAD_FIXED + OVERHEAD_SHARE * weights)


def memory_bytes(shape: ModelShape, *, context: int, parallel: int) -> int | None:
    """The memory a node needs to hold the model serving `parallel` requests of `context`."""
    weights = weights_bytes(shape)
    per_token = kv_bytes_per_token(shape)
    if weights is None or per_token is None:
        return None
    return weights + per_token * context * parallel + overhead_bytes(weights)


def shape_from_catalogue(name: str) -> ModelShape:
    found = architecture_of(name)
    if found is not None:
        return ModelShape(
            name,
            found.parameters,
            found.quantization,
            found.layers,
            found.kv_heads,
            found.key_length,
            source="catalogue",
        )
    parameters = parameters_from_name(name)
    return ModelShape(
        name, parameters, DEFAULT_QUANTIZATION, source="name" if parameters else "unknown"
    )


def shape_from_node(
    name: str, info: dict[str, Any] | None, show: dict[str, Any] | None
) -> ModelShape:
    """The shape from a node's own reports (/api/tags entry, /api/show), the catalogue filling
    what they leave out."""
    base = shape_from_catalogue(name)
    info = info or {}
    details = (show or {}).get("details") or {}
    model_info = (show or {}).get("model_info") or {}
    arch = str(model_info.get("general.architecture") or "")

    def figure(key: str) -> int | None:
        value = model_info.get(f"{arch}.{key}") if arch else None
        return value if isinstance(value, int) and value > 0 else None

    parameters = model_info.get("general.parameter_count")
    if not isinstance(parameters, int):
        parameters = parameters_from_text(
            str(details.get("parameter_size") or info.get("parameter_size") or "")
        )
    heads = figure("attention.head_count")
    embedding = figure("embedding_length")
    key_length = figure("attention.key_length") or (
        embedding // heads if embedding and heads else None
    )
    layers, kv_heads = figure("block_count"), figure("attention.head_count_kv")
    from_node = bool(parameters or info.get("size") or layers)
    return ModelShape(
        name,
        parameters or base.parameters,
        str(details.get("quantization_level") or info.get("quantization_level") or "")
        or base.quantization,
        layers or base.layers,
        kv_heads or base.kv_heads,
        key_length or base.key_length,
        file_size=info.get("size") if isinstance(info.get("size"), int) else None,
        source="node" if from_node else base.source,
    )


# --- Placement ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Demand:
    shape: ModelShape
    parallel: int
    wanted_by: tuple[str, ...] = ()  # agents' names


@dataclass
class NodeRoom:
    node_id: int
    name: str
    memory: int  # bytes the node gives models
    max_parallel: int
    present: frozenset[str]
    free: int = 0

    def __post_init__(self) -> None:
        self.free = self.memory


@dataclass(frozen=True)
class Placement:
    model: str
    node_id: int
    node: str
    parallel: int
    memory: int
    present: bool  # the node has the model already; else applying the plan pulls it


@dataclass(frozen=True)
class Shortfall:
    model: str
    parallel_missing: int
    reason: str
    node_memory: int | None = None  # what a node would need for its share
    nodes_needed: int = 0
    parallel_per_node: int = 0


@dataclass
class Plan:
    context: int
    placements: list[Placement] = field(default_factory=list)
    shortfalls: list[Shortfall] = field(default_factory=list)
    unsized: list[str] = field(default_factory=list)  # models with no figure to plan with

    @property
    def fits(self) -> bool:
        return not self.shortfalls and not self.unsized

    @property
    def all_present(self) -> bool:
        return all(placement.present for placement in self.placements)


def _present(room: NodeRoom, model: str) -> bool:
    return model in room.present or canonical(model) in {canonical(p) for p in room.present}


def plan_placement(
    demands: list[Demand], rooms: list[NodeRoom], *, context: int, default_parallel: int = 4
) -> Plan:
    plan = Plan(context=context)
    sized = []
    for demand in demands:
        weights = weights_bytes(demand.shape)
        if weights is None or kv_bytes_per_token(demand.shape) is None:
            plan.unsized.append(demand.shape.name)
        else:
            sized.append((weights, demand))
    for _, demand in sorted(sized, key=lambda item: -item[0]):
        shape, left = demand.shape, demand.parallel
        base = memory_bytes(shape, context=context, parallel=0) or 0
        per_slot = (kv_bytes_per_token(shape) or 0) * context
        # Nodes that have the model first (no download), then the most memory left.
        for room in sorted(rooms, key=lambda r: (not _present(r, shape.name), -r.free)):
            if left <= 0:
                break
            if room.free < base + per_slot:
                continue
            slots = min(left, room.max_parallel, (room.free - base) // max(per_slot, 1))
            memory = base + per_slot * slots
            room.free -= memory
            left -= slots
            plan.placements.append(
                Placement(
                    shape.name,
                    room.node_id,
                    room.name,
                    int(slots),
                    memory,
                    _present(room, shape.name),
                )
            )
        if left > 0:
            plan.shortfalls.append(
                _shortfall(shape, left, rooms, context=context, default_parallel=default_parallel)
            )
    return plan


def _shortfall(
    shape: ModelShape, left: int, rooms: list[NodeRoom], *, context: int, default_parallel: int
) -> Shortfall:
    per_node = min(left, max((room.max_parallel for room in rooms), default=default_parallel))
    need = memory_bytes(shape, context=context, parallel=per_node) or 0
    one = memory_bytes(shape, context=context, parallel=1) or 0
    if not rooms:
        reason = "No healthy node with its memory entered."
    elif all(room.memory < one for room in rooms):
        reason = f"Even one request needs {one / GB:.1f} GB; no node has that much."
    else:
        reason = "The nodes' memory is taken by the models placed before it."
    return Shortfall(shape.name, left, reason, need, math.ceil(left / per_node), per_node)
