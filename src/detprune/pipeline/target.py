"""Reach a cost target (``macs=0.5``, ``params=2.5M``) with the local ratio, by bisection.

With the local schedule every group loses ``floor(ratio * prunable)`` channels whatever the
criterion, so the cost after pruning depends on the ratio (and ``round_to``/``ignore``), not
on the scores: the ratio is searched once with the cheap ``l1`` criterion on deep copies, and
every criterion then prunes at that ratio, which gives all of them the same MACs budget.
MACs are counted exactly (:func:`detprune.deploy.count_macs`), each probe takes well under a
second on small detectors.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any, Iterable

from torch import nn

from detprune.deploy import count_macs, count_params
from detprune.schedule.target import Target

_SCALE = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9}


@dataclass(frozen=True)
class CostTarget:
    """A MACs or params goal: the parsed ``--target`` of :func:`find_ratio` and of the saliency pipeline's
    parameter budget. Latency goals are read by :class:`detprune.schedule.target.Target` only."""

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


def cost_of(model: nn.Module, example_inputs: Any, metric: str) -> int:
    return count_macs(model, copy.copy(example_inputs)) if metric == "macs" else count_params(model)


def find_ratio(model: nn.Module, example_inputs: Any, target: CostTarget, *, round_to: int | None = None,
               ignore: Iterable[str] = (), steps: int = 12) -> tuple[float, int, int]:
    """Smallest local ratio whose pruned cost is <= the target: ``(ratio, cost_after, cost_before)``.

    Raises ``ValueError`` when even the largest ratio does not reach the target.
    """
    import detprune

    base = cost_of(model, example_inputs, target.metric)
    goal = target.goal(base)

    def probe(ratio: float) -> int:
        trial = copy.deepcopy(model)
        detprune.prune(trial, copy.copy(example_inputs), criterion="l1", ratio=ratio, ignore=list(ignore),
                       round_to=round_to, measure=False)
        return cost_of(trial, example_inputs, target.metric)

    if base <= goal:
        return 0.0, base, base
    lo, hi = 0.0, 0.95
    hi_cost = probe(hi)
    if hi_cost > goal:
        raise ValueError(f"target {target} is out of reach: at ratio {hi} the model still has "
                         f"{hi_cost:,} {target.metric} (goal {goal:,.0f}, unpruned {base:,}); pinned channels limit pruning")
    for _ in range(steps):
        mid = (lo + hi) / 2
        cost = probe(mid)
        if cost <= goal:
            hi, hi_cost = mid, cost
        else:
            lo = mid
    return hi, hi_cost, base
