"""Prometheus metrics in the text exposition format (0.0.4), written by hand.

prometheus-client would work, but its default registry collects with threads and locks that a
trio program does not need, and the format is small: ``# HELP``, ``# TYPE``, then one sample a
line with escaped label values. Metric families are built at scrape time from the components'
own counters (no global registry), so a scrape always shows the state of this process. The
format is checked against prometheus-client's parser in the tests.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

Labels = Mapping[str, str]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items())
    return "{" + inner + "}"


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


@dataclass
class Family:
    name: str
    kind: str  # counter | gauge | histogram
    help: str
    samples: list[tuple[str, Labels, float]] = field(default_factory=list)
    stamps: dict[int, int] = field(default_factory=dict)  # sample index → timestamp in ms

    def add(
        self,
        value: float,
        labels: Labels | None = None,
        *,
        suffix: str = "",
        timestamp_ms: int | None = None,
    ) -> Family:
        if timestamp_ms is not None:
            self.stamps[len(self.samples)] = timestamp_ms
        self.samples.append((self.name + suffix, dict(labels or {}), value))
        return self


class Histogram:
    """Cumulative buckets, sum and count, as Prometheus expects."""

    def __init__(self, buckets: Sequence[float]) -> None:
        self.buckets = sorted(buckets)
        self.counts = [0] * len(self.buckets)
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.total += value
        self.count += 1
        for index, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[index] += 1

    def family(self, name: str, help: str) -> Family:
        family = Family(name, "histogram", help)
        for bound, count in zip(self.buckets, self.counts, strict=True):
            family.add(count, {"le": repr(float(bound))}, suffix="_bucket")
        family.add(self.count, {"le": "+Inf"}, suffix="_bucket")
        family.add(self.total, suffix="_sum")
        family.add(self.count, suffix="_count")
        return family


def render(families: Iterable[Family]) -> str:
    lines: list[str] = []
    for family in families:
        lines.append(f"# HELP {family.name} {family.help}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        for index, (name, labels, value) in enumerate(family.samples):
            stamp = family.stamps.get(index)
            suffix = f" {stamp}" if stamp is not None else ""
            lines.append(f"{name}{_labels(labels)} {_number(value)}{suffix}")
    return "\n".join(lines) + "\n"


CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
