"""Per-round set-up of :func:`~detprune.schedule.cluster_prune.cluster_prune`'s greedy state.

Every round traces the (already narrowed) model again, so group indices change between rounds;
what must outlast a round (a group's width at the start, which ``max_ratio`` refers to, and its
cluster size, measured once) is kept under the group's member labels instead.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from detprune.criteria import Criterion, get_criterion
from detprune.graph.groups import Group
from detprune.schedule.cluster import ClusterState, producer_blocks_order
from detprune.schedule.global_rank import normalised
from detprune.schedule.layer_latency import GroupLatency
from detprune.schedule.layer_table import LayerTable
from detprune.schedule.select import removal_order

Key = tuple[str, ...]  # a group's member labels: stable across rounds, unlike its index


def member_key(g: Group) -> Key:
    return tuple(m.label for m in g.members)


@dataclass
class RoundPlanner:
    """Traces and scores the groups each round and turns every group that may still lose channels
    into a :class:`ClusterState`; remembers per group what later rounds and the report need."""

    criterion: str
    criterion_kwargs: dict[str, Any]
    ignore: Iterable[Any]
    data: Any
    cluster: int | dict[str, int] | None  # given sizes (see cluster_prune)
    min_cluster: int
    window: int
    probe_step: int
    max_ratio: float
    min_channels: int
    start: dict[Key, tuple[int, int]] = field(default_factory=dict)  # (width, prunable) when first seen
    clusters: dict[Key, tuple[int, str]] = field(default_factory=dict)  # (size, source)
    labels: dict[Key, str] = field(default_factory=dict)  # first producing module path

    def score(self, model: nn.Module, example_inputs: Any) -> tuple[list[Group], Criterion]:
        """The model's groups and the criterion prepared on them (fine-tuned weights are re-scored)."""
        from detprune.api import groups as find_groups  # api imports the schedule package

        found = find_groups(model, example_inputs, self.ignore)
        crit = get_criterion(self.criterion, **self.criterion_kwargs)
        crit.prepare(model, found, data=self.data, example_inputs=example_inputs)
        return found, crit

    def states(self, found: list[Group], crit: Criterion, gl: GroupLatency,
               lt: LayerTable | None) -> list[ClusterState]:
        """Greedy state per group; each removal order is handed to the pricers before the next group's
        staircase is measured (they price whole clusters the way the greedy loop takes them)."""
        states = []
        for g in found:
            s = self._state(g, crit, gl, lt)
            if s is None:
                continue
            states.append(s)
            gl.grid[g.index] = (s.cluster, s.floor)
            if lt is not None:
                lt.plan(g.index, s.order)
        return states

    def _state(self, g: Group, crit: Criterion, gl: GroupLatency, lt: LayerTable | None) -> ClusterState | None:
        if not g.prunable or not gl.measurable(g.index) or (lt is not None and not lt.measurable(g.index)):
            return None
        key = member_key(g)
        size0, prunable0 = self.start.setdefault(key, (g.size, g.prunable))
        self.labels[key] = gl.label(g.index)
        imp = normalised(g, crit.group_scores(g))
        full = removal_order(g, imp, min_member=self.min_channels)
        allowed = int(math.floor(self.max_ratio * prunable0)) - (size0 - g.size)  # max_ratio caps the whole run
        n = max(0, min(len(full), allowed, g.size - self.min_channels))
        if n == 0:
            return None
        if key not in self.clusters:
            self.clusters[key] = cluster_for(gl, g.index, g.size - n, self.labels[key], self.cluster, self.window,
                                             self.probe_step, self.min_cluster)
        c = self.clusters[key][0]
        # re-sequenced before the cap, so the cap cuts whole clusters of one block, not the tails of all
        order = producer_blocks_order(g.counts(), full, imp, c)[:n]
        return ClusterState(g.index, g.size, order, imp, c)

    def report(self, kept: dict[Key, int]) -> tuple[dict[str, tuple[int, str]], dict[str, tuple[int, int]]]:
        """Cluster sizes and (start, final) widths by group label, as :class:`ClusterReport` shows them."""
        clusters = {self.labels[k]: v for k, v in self.clusters.items()}
        widths = {self.labels[k]: (s0, kept.get(k, s0)) for k, (s0, _) in self.start.items() if k in self.labels}
        return clusters, widths


def cluster_for(gl: GroupLatency, gi: int, floor: int, label: str, cluster: int | dict[str, int] | None,
                window: int, probe_step: int, min_cluster: int = 1) -> tuple[int, str]:
    """(size, source) of a group's cluster: given, or from its latency staircase down to ``floor``."""
    if isinstance(cluster, int):
        return cluster, "given"
    if isinstance(cluster, dict) and label in cluster:
        return int(cluster[label]), "given"
    fit = gl.staircase(gi, floor, window, probe_step)
    if fit.cluster % min_cluster:  # a multiple of the block, so every width stays one too
        return -(-fit.cluster // min_cluster) * min_cluster, "minimum"
    return fit.cluster, fit.source
