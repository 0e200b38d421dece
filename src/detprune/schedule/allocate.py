"""From scores to a removal plan: the schedule (local / global / layerwise) and, optionally, a target.

``Allocation`` gathers the options of :func:`detprune.prune` that decide *how many* channels
each group loses; ``plan`` applies them at a fixed ratio and ``reach_target`` turns the
schedule into a one-knob family of plans and bisects the knob to meet a cost target.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from detprune.graph.groups import Group
from detprune.schedule.global_rank import global_ranking
from detprune.schedule.layerwise import RatioSpec, layerwise_removal, resolve_ratios
from detprune.schedule.local import local_removal
from detprune.schedule.target import Target, TargetResult, bisect_knob

SCHEDULES = ("local", "global", "layerwise")
Removal = dict[int, np.ndarray]
GRID = 1000  # resolution of ratio-valued knobs


@dataclass
class Allocation:
    """How channels are allocated to groups.

    * ``local``: every group loses ``ratio`` of its prunable classes.
    * ``global``: ``ratio`` of all prunable classes, lowest per-group-normalised scores first,
      no group losing more than ``max_ratio`` nor keeping fewer than ``min_channels``.
    * ``layerwise``: per-group ratios from ``ratios`` (mapping or YAML path, see
      :mod:`~detprune.schedule.layerwise`); under a target they are scaled by one common factor.

    ``round_to`` keeps the width of every pruned layer in a group a multiple of N, each producer of
    a concatenation too (removes fewer, never more; a layer whose width was no multiple loses a
    multiple of N instead: :func:`~detprune.schedule.select.round_members`).
    """

    schedule: str = "local"
    ratio: float = 0.5
    round_to: int | None = None
    max_ratio: float = 0.9
    min_channels: int = 1
    ratios: RatioSpec | str | Path | None = None
    normalize: str = "mean"

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.schedule == "layerwise" and self.ratios is None:
            raise ValueError("schedule='layerwise' needs ratios= (a mapping or a YAML file)")
        if self.schedule != "layerwise" and self.ratios is not None:
            raise ValueError(f"ratios= is read by schedule='layerwise' only, not by schedule={self.schedule!r}")
        if not 0 < self.max_ratio <= 1:
            raise ValueError(f"max_ratio must be in (0, 1], got {self.max_ratio!r}")
        if not isinstance(self.min_channels, int) or self.min_channels < 1:
            raise ValueError(f"min_channels must be a positive int, got {self.min_channels!r}")


def plan(groups: list[Group], scores: Mapping[int, np.ndarray], alloc: Allocation) -> Removal:
    """The removal of ``alloc`` at its fixed ratio(s)."""
    if alloc.schedule == "local":
        return local_removal(groups, dict(scores), alloc.ratio, alloc.round_to)
    if alloc.schedule == "global":
        ranking = global_ranking(groups, dict(scores), alloc.max_ratio, alloc.min_channels, alloc.normalize)
        return ranking.removal(int(alloc.ratio * sum(g.prunable for g in groups)), alloc.round_to)
    ratios = resolve_ratios(groups, alloc.ratios)
    return layerwise_removal(groups, dict(scores), ratios, alloc.round_to)


def knob_plan(groups: list[Group], scores: Mapping[int, np.ndarray],
              alloc: Allocation) -> tuple[Callable[[int], Removal], int]:
    """A family of removals ``f(k)``, k = 0..hi, removing more as k grows."""
    if alloc.schedule == "global":
        ranking = global_ranking(groups, dict(scores), alloc.max_ratio, alloc.min_channels, alloc.normalize)
        return (lambda k: ranking.removal(k, alloc.round_to)), ranking.total
    if alloc.schedule == "local":
        return (lambda k: local_removal(groups, dict(scores), alloc.max_ratio * k / GRID, alloc.round_to)), GRID
    base = resolve_ratios(groups, alloc.ratios)
    positive = [r for r in base.values() if r > 0]
    if not positive:
        raise ValueError("every layerwise ratio is 0: nothing can be scaled to reach the target")
    top = alloc.max_ratio / min(positive)  # scale at which every listed group hits max_ratio

    def f(k: int) -> Removal:
        s = top * k / GRID
        return layerwise_removal(groups, dict(scores), {i: min(alloc.max_ratio, r * s) for i, r in base.items()},
                                 alloc.round_to)

    return f, GRID


@dataclass
class LatencySettings:
    """How a latency target is measured (see :func:`detprune.deploy.measure_latency`)."""

    warmup: int = 3
    runs: int = 15
    threads: int | None = None


def reach_target(model: nn.Module, example_inputs: Any, groups: list[Group], scores: Mapping[int, np.ndarray],
                 target: Target, alloc: Allocation,
                 latency: LatencySettings | None = None) -> tuple[Removal, TargetResult]:
    """The least removal of ``alloc``'s family whose cost meets ``target`` (bisection)."""
    from detprune.deploy.latency import measure_latency  # deploy pulls in onnx: import on use
    from detprune.schedule.cost import CostModel
    from detprune.schedule.preview import removal_latency

    f, hi = knob_plan(groups, scores, alloc)
    if target.metric in ("macs", "params"):
        cm = CostModel(model, example_inputs, groups)
        baseline = float(cm.macs_total if target.metric == "macs" else cm.params_total)

        def cost(k: int) -> float:
            return float(cm.predict(f(k))[target.metric])
    else:
        lat = latency or LatencySettings()
        baseline = measure_latency(model, example_inputs, target.runtime, lat.warmup, lat.runs, lat.threads).median_ms

        def cost(k: int) -> float:
            return removal_latency(model, groups, f(k), example_inputs, target.runtime, lat.warmup, lat.runs,
                                   lat.threads)

    goal = target.goal(baseline)
    k, probes = bisect_knob(cost, hi, goal)
    achieved = dict(probes).get(k, cost(k))
    return f(k), TargetResult(target, baseline, goal, achieved, k, probes)
