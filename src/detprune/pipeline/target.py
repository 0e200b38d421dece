"""Reading ``--target`` in the pipeline.

Detection targets (``macs=0.5``, ``params=2.5M``, ``latency=0.7@onnxruntime``) are read and reached
by the schedule (:class:`detprune.schedule.target.Target`, searched by :func:`detprune.prune` and
cluster pruning with each criterion's own scores); :func:`parse_target` checks them for the recipe
validator. :class:`CostTarget` is the saliency pipeline's parameter budget, which it bisects itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from detprune.schedule.target import Target

_SCALE = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9}


@dataclass(frozen=True)
class CostTarget:
    """A MACs or params goal: the saliency pipeline's parameter budget (``--target params=0.4``).
    Latency goals are read by :class:`detprune.schedule.target.Target` only."""

    metric: str  # "macs" | "params"
    value: float  # a fraction of the unpruned cost when ``relative``, else absolute
    relative: bool

    @classmethod
    def parse(cls, text: str) -> "CostTarget":
        """``macs=0.5`` (half the MACs), ``params=2.5M``, ``macs=1.2G`` (absolute)."""
        m = re.fullmatch(r"\s*(macs|params)\s*=\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([kKmMgG]?)\s*", text or "")
        if not m:
            raise ValueError(f"cannot read target {text!r}; expected e.g. macs=0.5, params=2.5M or macs=1.2G")
        metric, number, unit = m.groups()
        value = float(number) * _SCALE[unit.lower()]
        relative = not unit and value <= 1
        if value <= 0 or (relative and value == 1):
            raise ValueError(f"target {text!r} removes nothing; use a fraction in (0, 1) or an absolute cost")
        return cls(metric, value, relative)

    def goal(self, base_cost: int) -> float:
        return self.value * base_cost if self.relative else self.value

    def __str__(self) -> str:
        return f"{self.metric}={self.value:g}"


def parse_target(text: str) -> Target:
    """Check a target string with the schedule's parser, which reads latency targets too (:class:`CostTarget` does not)."""
    return Target.parse(text)
