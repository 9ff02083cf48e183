"""Prometheus' text exposition format (0.0.4), written straight into lines as samples are added.

prometheus_client's own writer builds a sample object per series and re-validates and re-escapes
every label name of every one at each scrape: at 10k series that was most of a scrape's time.
Here a family's label names are fixed when it is made, label values are escaped once per label
set, and a sample is one formatted line. The tests read the output back with prometheus_client's
parser.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def number(value: float) -> str:
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


class Family:
    """One metric: its HELP and TYPE, then a line per sample."""

    kind = "gauge"

    def __init__(self, name: str, documentation: str, labels: Sequence[str] = ()) -> None:
        self.name = name + "_total" if self.kind == "counter" else name
        self.documentation = documentation.replace("\\", "\\\\").replace("\n", "\\n")
        self.labels = tuple(labels)
        self.lines: list[str] = []

    def _label_text(self, values: Sequence[str], extra: str = "") -> str:
        pairs = [f'{n}="{_escape(str(v))}"' for n, v in zip(self.labels, values, strict=True)]
        if extra:
            pairs.append(extra)
        return "{" + ",".join(pairs) + "}" if pairs else ""

    def add_metric(self, values: Sequence[str], value: float) -> None:
        self.lines.append(f"{self.name}{self._label_text(values)} {number(value)}\n")

    def text(self) -> str:
        head = f"# HELP {self.name} {self.documentation}\n# TYPE {self.name} {self.kind}\n"
        return head + "".join(self.lines)


class Gauge(Family):
    kind = "gauge"


class Counter(Family):
    kind = "counter"


class Histogram(Family):
    kind = "histogram"

    def add_histogram(
        self, values: Sequence[str], bounds: Sequence[str], counts: Sequence[int], total: float
    ) -> None:
        """`counts` per bucket (not cumulative), the last one the open bucket (+Inf)."""
        labels = [f'{n}="{_escape(str(v))}"' for n, v in zip(self.labels, values, strict=True)]
        prefix = f"{self.name}_bucket{{" + "".join(f"{pair}," for pair in labels)
        plain = "{" + ",".join(labels) + "}" if labels else ""
        running = 0
        lines = self.lines
        for bound, count in zip(bounds, counts, strict=True):
            running += count
            lines.append(f'{prefix}le="{bound}"}} {running}\n')
        lines.append(f"{self.name}_sum{plain} {number(total)}\n")
        lines.append(f"{self.name}_count{plain} {running}\n")


def render(families: Iterable[Family]) -> bytes:
    return "".join(family.text() for family in families).encode()
