"""Response times of a simulated cloud: one distribution per operation, on trio's clock.

Real clouds answer in seconds, not microseconds: a RunPod create takes one to three seconds, a
Vast.ai offer search about one. Against an instant stand-in, agent code that waits on one call
while others could proceed looks fast (issue 10: a work queue that woke one worker of 256 made
the agent serial, unnoticed until a cloud was slow). The simulated clouds and the in-process
fake therefore draw each call's response time from a ``Latency`` table, on top of the rate
limits they enforce. Draws come from a seeded generator, so a run can be repeated; the waits
are ``trio.sleep``, so tests on virtual time (``autojump_clock``) take none of it for real.

A table is written ``operation=seconds`` or ``operation=low-high`` (uniform), comma-separated,
with ``*`` for every operation not named: ``createPod=1-3,listPods=0.3,*=0.1``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass

import trio

ANY = "*"


@dataclass(frozen=True, slots=True)
class Spread:
    """Seconds, uniform between ``low`` and ``high`` (equal: always that long)."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ValueError("a latency must be a finite number of seconds")
        if not 0 <= self.low <= self.high:
            raise ValueError(f"a latency range needs 0 <= low <= high, not {self.low}-{self.high}")

    @property
    def mean(self) -> float:
        return (self.low + self.high) / 2

    def draw(self, rng: random.Random) -> float:
        return self.low if self.low == self.high else rng.uniform(self.low, self.high)

    def __str__(self) -> str:
        return f"{self.low:g}" if self.low == self.high else f"{self.low:g}-{self.high:g}"


def spread(value: float | tuple[float, float] | Spread) -> Spread:
    if isinstance(value, Spread):
        return value
    if isinstance(value, tuple):
        return Spread(float(value[0]), float(value[1]))
    return Spread(float(value), float(value))


class Latency:
    """Per-operation response times. ``Latency()`` is instant; tests and benchmarks fill it."""

    def __init__(
        self,
        table: Mapping[str, float | tuple[float, float] | Spread] | None = None,
        *,
        seed: int = 0,
    ) -> None:
        self.table: dict[str, Spread] = {op: spread(v) for op, v in (table or {}).items()}
        self._rng = random.Random(seed)
        self.waited: dict[str, float] = {}  # seconds spent per operation, for reports

    @classmethod
    def parse(cls, text: str, *, seed: int = 0) -> Latency:
        """``"createPod=1-3,listPods=0.3,*=0.1"`` (ValueError naming the bad entry)."""
        table: dict[str, Spread] = {}
        for entry in filter(None, (part.strip() for part in text.split(","))):
            op, sep, value = entry.partition("=")
            low, dash, high = value.strip().partition("-")
            try:
                if not sep or not op.strip():
                    raise ValueError("expected operation=seconds")
                table[op.strip()] = Spread(float(low), float(high if dash else low))
            except ValueError as exc:
                raise ValueError(f"latency {entry!r}: {exc}") from None
        return cls(table, seed=seed)

    def set(self, operation: str, value: float | tuple[float, float] | Spread) -> None:
        self.table[operation] = spread(value)

    def of(self, operation: str) -> Spread:
        return self.table.get(operation) or self.table.get(ANY) or Spread(0.0, 0.0)

    def draw(self, operation: str) -> float:
        return self.of(operation).draw(self._rng)

    async def wait(self, operation: str) -> None:
        """Take this call's response time (a checkpoint even when it is zero)."""
        seconds = self.draw(operation)
        self.waited[operation] = self.waited.get(operation, 0.0) + seconds
        await trio.sleep(seconds)

    def __str__(self) -> str:
        return ",".join(f"{op}={s}" for op, s in self.table.items())


def from_flag(
    text: str, *, realistic: Mapping[str, float | tuple[float, float]], seed: int = 0
) -> Latency:
    """The simulators' ``--latency`` flag: ``realistic`` (the cloud's preset) or a table."""
    if text.strip() == "realistic":
        return Latency(realistic, seed=seed)
    return Latency.parse(text, seed=seed)
