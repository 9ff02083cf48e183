"""The capacity planner's formula against published figures, and its placement.

Published figures used (and where):
- Key/value cache at FP16, Hugging Face's "Llama 3.1 - 405B, 70B & 8B with multilinguality and
  long context" post (huggingface.co/blog/llama31, "Inference Memory Requirements"), in GiB:
  8B: 0.125 (1k tokens, read as 1024), 1.95 (16k = 16 000), 15.62 (128k = 128 000);
  70B: 0.313 (1k), 4.88 (16k), 39.06 (128k). The post's 405B row assumes 16 key/value heads
  where the published configuration has 8, so it is not used.
- Model file sizes listed by Ollama's library for the plain tags (ollama.com/library), in GB:
  llama3.1:8b 4.9, llama3.1:70b 43, llama3.2 (3b) 2.0, qwen2.5:7b 4.7, mistral:7b 4.1,
  phi3:mini 2.2, llama3.2:1b 1.3. The formula's parameters × bits per weight / 8 must land within
  5 % (the library rounds to two figures, and keeps a few tensors at higher precision).
- Weights at FP16 in the same Hugging Face post: 8B 16 GB, 70B 140 GB (nominal parameters).
"""

from __future__ import annotations

import pytest

from monitoring.capacity import (
    GB,
    GIB,
    Demand,
    ModelShape,
    NodeRoom,
    kv_bytes_per_token,
    memory_bytes,
    parameters_from_name,
    parameters_from_text,
    plan_placement,
    shape_from_catalogue,
    shape_from_node,
    weights_bytes,
)


@pytest.mark.parametrize(
    ("model", "tokens", "published_gib"),
    [
        ("llama3.1:8b", 1024, 0.125),
        ("llama3.1:8b", 16_000, 1.95),
        ("llama3.1:8b", 128_000, 15.62),
        ("llama3.1:70b", 1024, 0.313),
        ("llama3.1:70b", 16_000, 4.88),
        ("llama3.1:70b", 128_000, 39.06),
    ],
)
def test_the_key_value_cache_matches_the_published_figures(
    model: str, tokens: int, published_gib: float
) -> None:
    per_token = kv_bytes_per_token(shape_from_catalogue(model))
    assert per_token is not None
    assert per_token * tokens / GIB == pytest.approx(published_gib, abs=0.006)


@pytest.mark.parametrize(
    ("model", "published_gb"),
    [
        ("llama3.1:8b", 4.9),
        ("llama3.1:70b", 43),
        ("llama3.2", 2.0),
        ("qwen2.5:7b", 4.7),
        ("mistral:7b", 4.1),
        ("phi3:mini", 2.2),
        ("llama3.2:1b", 1.3),
    ],
)
def test_weights_match_the_sizes_ollama_publishes(model: str, published_gb: float) -> None:
    weights = weights_bytes(shape_from_catalogue(model))
    assert weights is not None
    assert weights / GB == pytest.approx(published_gb, rel=0.05)


@pytest.mark.parametrize(("parameters", "published_gb"), [(8e9, 16), (70e9, 140)])
def test_fp16_weights_are_two_bytes_a_parameter(parameters: float, published_gb: float) -> None:
    shape = ModelShape("x", int(parameters), "F16")
    assert weights_bytes(shape) == published_gb * GB


def test_memory_adds_the_cache_of_every_parallel_request_and_the_margin() -> None:
    shape = shape_from_catalogue("llama3.1:8b")
    weights = weights_bytes(shape)
    assert weights is not None
    one = memory_bytes(shape, context=8192, parallel=1)
    four = memory_bytes(shape, context=8192, parallel=4)
    assert one is not None and four is not None
    # 128 KiB of cache per token: 1 GiB per 8k-token request.
    assert four - one == 3 * GIB
    assert one == weights + GIB + GIB // 2 + int(0.05 * weights)


def test_sizes_are_read_from_ollamas_words_and_from_names() -> None:
    assert parameters_from_text("8.0B") == 8_000_000_000
    assert parameters_from_text("567M") == 567_000_000
    assert parameters_from_text("") is None
    assert parameters_from_name("qwen2.5:14b") == 14_000_000_000
    assert parameters_from_name("deepseek-r1:1.5b") == 1_500_000_000
    assert parameters_from_name("mystery") is None


def test_an_unknown_architecture_is_estimated_from_its_size_and_says_so() -> None:
    shape = shape_from_catalogue("someone/custom:13b")
    assert shape.source == "name" and shape.parameters == 13_000_000_000
    assert kv_bytes_per_token(shape) == 13 * 16 * 1024
    unknown = shape_from_catalogue("mystery")
    assert unknown.source == "unknown" and memory_bytes(unknown, context=4096, parallel=1) is None


def test_a_nodes_report_wins_over_the_catalogue() -> None:
    show = {
        "details": {"parameter_size": "8.0B", "quantization_level": "Q8_0"},
        "model_info": {
            "general.architecture": "llama",
            "general.parameter_count": 8_030_261_248,
            "llama.block_count": 32,
            "llama.embedding_length": 4096,
            "llama.attention.head_count": 32,
            "llama.attention.head_count_kv": 8,
        },
    }
    shape = shape_from_node("llama3.1:8b-q8", {"size": 8_540_000_000}, show)
    assert shape.source == "node" and shape.quantization == "Q8_0"
    assert weights_bytes(shape) == 8_540_000_000  # the file the node loads
    assert kv_bytes_per_token(shape) == 131072


def room(node_id: int, gb: float, *, parallel: int = 4, present: tuple[str, ...] = ()) -> NodeRoom:
    return NodeRoom(node_id, f"node-{node_id}", int(gb * GB), parallel, frozenset(present))


def test_placement_prefers_nodes_that_have_the_model_and_spreads_requests() -> None:
    small = shape_from_catalogue("llama3.2")
    big = shape_from_catalogue("llama3.1:8b")
    rooms = [room(1, 16, present=("llama3.2:latest",)), room(2, 24)]
    plan = plan_placement(
        [Demand(small, 4), Demand(big, 6)], rooms, context=4096, default_parallel=4
    )
    assert plan.fits
    placed = {(p.model, p.node): (p.parallel, p.present) for p in plan.placements}
    # The larger model first, on the node with the most room; its 6 requests need two nodes
    # at 4 each.
    assert placed[("llama3.1:8b", "node-2")] == (4, False)
    assert placed[("llama3.1:8b", "node-1")] == (2, False)
    assert placed[("llama3.2", "node-1")] == (4, True)
    for r in rooms:
        assert r.free >= 0


def test_what_does_not_fit_says_what_hardware_would() -> None:
    big = shape_from_catalogue("llama3.1:70b")
    plan = plan_placement([Demand(big, 2)], [room(1, 16), room(2, 24)], context=8192)
    assert not plan.fits and not plan.placements
    (short,) = plan.shortfalls
    assert short.parallel_missing == 2 and "no node has that much" in short.reason
    needed = memory_bytes(big, context=8192, parallel=2)
    assert short.node_memory == needed and short.nodes_needed == 1
    assert 45 * GB < needed < 52 * GB
