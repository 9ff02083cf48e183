"""Fixed-bucket latency histograms: what the rollups keep, and percentiles read back from them.

The buckets are the same for every call and every rollup row, so histograms add up by summing
counts (across hours, models, agents), as Prometheus histograms do. A percentile is interpolated
linearly inside the bucket that holds it: the true value always lies in that bucket, and each
bucket's upper edge is at most 1.5 times its lower edge above 100 ms (50 ms wide below), so a
reported p95 is never off by more than the bucket's width — at most a third of the reported value
above 100 ms, and usually far less. Past the last edge (120 s) a percentile reads "over 120 s".
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from typing import Final

# Upper edges in milliseconds; a last, open bucket holds everything slower.
BUCKET_EDGES_MS: Final = (
    50,
    100,
    150,
    200,
    300,
    450,
    675,
    1_000,
    1_500,
    2_250,
    3_375,
    5_000,
    7_500,
    11_000,
    16_000,
    24_000,
    36_000,
    54_000,
    80_000,
    120_000,
)
BUCKETS: Final = len(BUCKET_EDGES_MS) + 1
LATENCY_COLUMNS: Final = tuple(f"latency_b{index:02d}" for index in range(BUCKETS))
FIRST_TOKEN_COLUMNS: Final = tuple(f"first_token_b{index:02d}" for index in range(BUCKETS))
PRECISION_NOTE: Final = (
    "Percentiles come from fixed buckets (50 ms wide up to 200 ms, then growing by at most 1.5×), "
    "interpolated inside the bucket: the true value lies in the same bucket."
)


def bucket_of(value_ms: float) -> int:
    """The index of the bucket that counts `value_ms` (edges are inclusive upper bounds)."""
    return bisect_left(BUCKET_EDGES_MS, value_ms)


def quantile(counts: Sequence[int], q: float) -> float | None:
    """The q-quantile (0 < q ≤ 1) of a histogram, in ms; None when it counts nothing.

    Returns infinity when the quantile falls in the open last bucket: we only know it is slower
    than the last edge.
    """
    total = sum(counts)
    if total <= 0:
        return None
    rank = q * total
    seen = 0
    for index, count in enumerate(counts):
        if count <= 0:
            continue
        if seen + count >= rank:
            if index >= len(BUCKET_EDGES_MS):
                return float("inf")
            low = 0 if index == 0 else BUCKET_EDGES_MS[index - 1]
            high = BUCKET_EDGES_MS[index]
            return low + (high - low) * (rank - seen) / count
        seen += count
    return float("inf")
