"""Targets instead of ratios: "half the MACs", "2.5M params", "30% faster on OpenVINO".

A target is reached by bisection over one integer knob of a removal plan whose cost falls as
the knob grows: the number of globally-ranked classes removed (global schedule), the local
ratio on a fine grid (local schedule) or one factor scaling every per-layer ratio (layerwise
schedule), as built by :func:`~detprune.schedule.allocate.knob_plan`. MACs and params are
predicted analytically (:class:`~detprune.schedule.cost.CostModel`, exact for conv/linear);
latency is measured on a pruned deep copy, so the search costs one export + timing per probe
(about a dozen probes).
Measured latency is noisy, so the search stops at the smallest knob seen that met the goal.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

METRICS = ("macs", "params", "latency")
_SCALE = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9}


@dataclass(frozen=True)
class Target:
    """``value`` is a fraction of the unpruned model's cost when ``relative``, else absolute
    (MACs, parameters, or milliseconds). ``runtime`` (``runtime[:device]``, see
    :mod:`detprune.deploy.backend`) matters for latency only."""

    metric: str
    value: float
    relative: bool = True
    runtime: str = "torch"

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"target metric must be one of {METRICS}, got {self.metric!r}")
        if not (self.value > 0 and math.isfinite(self.value)) or (self.relative and self.value > 1):
            raise ValueError(f"target value must be in (0, 1] when relative, > 0 when absolute; got {self.value!r}")

    @classmethod
    def parse(cls, text: str | "Target", runtime: str = "torch") -> "Target":
        """``macs=0.5``, ``params=2.5M``, ``macs=1.2G``, ``latency=0.7``, ``latency=12ms@openvino``,
        ``latency=0.5@onnxruntime:cuda``.

        A bare number <= 1 is a fraction of the unpruned model; a suffix (k/M/G, ms) or a number
        > 1 is absolute.
        """
        if isinstance(text, Target):
            return text
        m = re.fullmatch(r"\s*(macs|params|latency)\s*=\s*([0-9.eE+-]+)\s*(ms|[kKmMgG])?\s*(?:@\s*([\w:.]+))?\s*", text)
        if not m:
            raise ValueError(f"cannot read target {text!r}; examples: macs=0.5, params=2.5M, latency=12ms@openvino")
        metric, number, unit, rt = m.groups()
        value = float(number)
        if unit == "ms":
            if metric != "latency":
                raise ValueError(f"'ms' only applies to latency targets: {text!r}")
            relative = False
        elif unit:
            value *= _SCALE[unit.lower()]
            relative = False
        else:
            relative = value <= 1
        from detprune.deploy.backend import parse_runtime

        try:
            backend = parse_runtime(rt or runtime)
        except ValueError as exc:
            raise ValueError(f"target {text!r}: {exc}") from None
        return cls(metric, value, relative, str(backend))

    def goal(self, baseline: float) -> float:
        return self.value * baseline if self.relative else self.value

    def describe(self) -> str:
        v = f"{self.value:.1%}" if self.relative else (f"{self.value:g} ms" if self.metric == "latency"
                                                        else f"{self.value:,.0f}" if self.value >= 1000 else f"{self.value:g}")
        return f"{self.metric} {v}" + (f" on {self.runtime}" if self.metric == "latency" else "")


@dataclass
class TargetResult:
    """What a target search asked for and what the pruned model achieved."""

    target: Target
    baseline: float
    goal: float
    achieved: float
    knob: int = 0
    probes: list[tuple[int, float]] = field(default_factory=list)  # (knob, cost) in evaluation order

    @property
    def met(self) -> bool:
        return self.achieved <= self.goal * (1 + 1e-9)

    def summary(self) -> str:
        unit = " ms" if self.target.metric == "latency" else ""
        return (f"target {self.target.describe()}: goal {self.goal:,.4g}{unit}, achieved {self.achieved:,.4g}{unit} "
                f"({self.achieved / self.baseline:.1%} of {self.baseline:,.4g}{unit})"
                + ("" if self.met else " - NOT met"))


def bisect_knob(cost: Callable[[int], float], hi: int, goal: float) -> tuple[int, list[tuple[int, float]]]:
    """Smallest knob in [0, hi] whose cost is <= goal, for a cost non-increasing in the knob.

    Returns ``hi`` when even the largest knob misses the goal. Noisy costs (latency) may break
    monotonicity; the answer is then the smallest probed knob that met the goal.
    """
    probes: list[tuple[int, float]] = []

    def f(k: int) -> float:
        c = cost(k)
        probes.append((k, c))
        return c

    if f(hi) > goal:
        return hi, probes
    lo, best = 0, hi
    if f(0) <= goal:
        return 0, probes
    while best - lo > 1:
        mid = (lo + best) // 2
        if f(mid) <= goal:
            best = mid
        else:
            lo = mid
    return best, probes
