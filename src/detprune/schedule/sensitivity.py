"""Sensitivity analysis: prune each group alone at several ratios, evaluate, and propose ratios.

The classic per-layer study of Li et al. (2017): a group whose accuracy collapses at 25% is
protected, one that shrugs off 75% is cut hard. ``evaluate(model) -> metric`` (higher is
better, e.g. mAP on a small validation subset) is called on a pruned *copy* for every
(group, ratio) pair, so the cost is groups x ratios evaluations. :meth:`SensitivityResult.propose`
turns the table into per-group ratios for a MACs / params target by raising one tolerance
``tau`` until the target is met: every group takes the largest tested ratio whose metric drop
is <= ``tau``. The ratios can be written as YAML for ``schedule="layerwise"``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
from torch import nn

from detprune.graph.groups import Group
from detprune.schedule.cost import CostModel
from detprune.schedule.layerwise import dump_ratios, group_key, layerwise_removal
from detprune.schedule.local import n_to_remove
from detprune.schedule.preview import pruned_copy
from detprune.schedule.select import select_lowest
from detprune.schedule.target import Target


@dataclass
class GroupSensitivity:
    index: int
    label: str
    size: int
    metric: dict[float, float] = field(default_factory=dict)  # ratio -> metric of the pruned copy
    macs: dict[float, int] = field(default_factory=dict)  # ratio -> model MACs with only this group pruned


@dataclass
class SensitivityResult:
    baseline: float
    ratios: list[float]
    rows: list[GroupSensitivity]
    macs_total: int
    groups: list[Group] = field(repr=False, default_factory=list)
    scores: dict[int, np.ndarray] = field(repr=False, default_factory=dict)
    cost: CostModel | None = field(repr=False, default=None)
    round_to: int | None = None

    def drop(self, index: int, ratio: float) -> float:
        row = next(r for r in self.rows if r.index == index)
        return self.baseline - row.metric[ratio]

    def ratios_at(self, tau: float) -> dict[int, float]:
        """Largest tested ratio per group whose metric drop is <= ``tau`` (0 if none)."""
        out = {g.index: 0.0 for g in self.groups}
        for row in self.rows:
            ok = [r for r in self.ratios if self.baseline - row.metric[r] <= tau]
            out[row.index] = max(ok) if ok else 0.0
        return out

    def propose(self, target: Target | str) -> dict[int, float]:
        """Per-group ratios meeting a relative or absolute MACs / params target with the least tolerated drop."""
        goal_t = Target.parse(target)
        if goal_t.metric == "latency" or self.cost is None:
            raise ValueError("propose() supports MACs and params targets")
        base = self.cost.macs_total if goal_t.metric == "macs" else self.cost.params_total
        goal = goal_t.goal(base)

        def cost(tau: float) -> float:
            removal = layerwise_removal(self.groups, self.scores, self.ratios_at(tau), self.round_to)
            return self.cost.predict(removal)[goal_t.metric]

        taus = sorted({self.baseline - m for row in self.rows for m in row.metric.values()})
        taus = [-np.inf] + taus
        lo, hi = 0, len(taus) - 1
        if cost(taus[hi]) > goal:
            unstudied = sum(1 for g in self.groups if g.prunable) - len(self.rows)
            rest = (f"; the {unstudied} prunable groups not studied keep ratio 0 (study them too: "
                    "max_groups=0 / `analyze --max-groups 0`)" if unstudied > 0 else "")
            warnings.warn(f"{goal_t.describe()} is out of reach with the tested ratios (max {max(self.ratios)}); "
                          f"proposing the largest tested ratio for each of the {len(self.rows)} studied groups{rest}",
                          stacklevel=2)
            return self.ratios_at(taus[hi])
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if cost(taus[mid]) <= goal:
                hi = mid
            else:
                lo = mid
        best = lo if cost(taus[lo]) <= goal else hi
        return self.ratios_at(taus[best])

    def save_ratios(self, ratios: dict[int, float], path: str | Path) -> Path:
        return dump_ratios(self.groups, ratios, path, default=0.0)

    def to_markdown(self) -> str:
        head = "| group | layer | width | " + " | ".join(f"drop @ {r:g}" for r in self.ratios) + " |"
        rows = [head, "|---:|---|---:|" + "---:|" * len(self.ratios)]
        for row in self.rows:
            cells = " | ".join(f"{self.baseline - row.metric[r]:+.4f}" for r in self.ratios)
            rows.append(f"| {row.index} | {row.label} | {row.size} | {cells} |")
        return f"Baseline metric {self.baseline:.4f}\n\n" + "\n".join(rows)

    def plot(self, path: str | Path) -> Path:
        from detprune.schedule.plots import plot_sensitivity

        return plot_sensitivity(self, path)


def sensitivity(model: nn.Module, example_inputs: Any, evaluate: Callable[[nn.Module], float],
                ratios: Iterable[float] = (0.25, 0.5, 0.75), criterion: str = "l1", ignore: Iterable[Any] = (),
                data: Any = None, min_size: int = 8, only: Iterable[int] | None = None, round_to: int | None = None,
                progress: Callable[[int, float, float], None] | None = None,
                **criterion_kwargs: Any) -> SensitivityResult:
    """Evaluate copies of ``model`` with one group at a time pruned at each ratio (the model is untouched).

    Groups with fewer than ``min_size`` prunable channels are skipped (they get ratio 0 in proposals);
    ``only`` restricts the study to some group indices. ``progress(group, ratio, metric)`` is
    called after every evaluation.
    """
    from detprune.api import groups as find_groups
    from detprune.criteria import get_criterion

    ratios = sorted(float(r) for r in ratios)
    if not ratios or any(not 0 < r < 1 for r in ratios):
        raise ValueError(f"ratios must be in (0, 1), got {ratios}")
    was_training = model.training
    model.eval()
    found = find_groups(model, example_inputs, ignore)
    crit = get_criterion(criterion, **criterion_kwargs)
    crit.prepare(model, found, data=data, example_inputs=example_inputs)
    scores = {g.index: crit.group_scores(g) for g in found}
    cost = CostModel(model, example_inputs, found)
    baseline = float(evaluate(model))
    wanted = set(only) if only is not None else None
    rows = []
    for g in found:
        if g.prunable < min_size or (wanted is not None and g.index not in wanted):
            continue
        row = GroupSensitivity(g.index, group_key(g), g.size)
        for r in ratios:
            removal = {g.index: select_lowest(g, scores[g.index], n_to_remove(g, r), round_to=round_to)}
            row.metric[r] = float(evaluate(pruned_copy(model, found, removal).eval()))
            row.macs[r] = cost.macs(removal)
            if progress is not None:
                progress(g.index, r, row.metric[r])
        rows.append(row)
    model.train(was_training)
    return SensitivityResult(baseline, ratios, rows, cost.macs_total, found, scores, cost, round_to)
