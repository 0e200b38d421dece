"""Global schedule: one ranking of every prunable class of the model, across groups.

Scores of different groups are not comparable as they come (a criterion's scale depends on
the layer), so each group's scores are divided by their mean (or max) over the group's
unpinned classes first. Taking the ``k`` lowest classes of the ranking lets sensitive groups
keep their width while redundant ones shrink a lot; ``max_ratio`` and ``min_channels`` stop
any group from being wiped out (``max_ratio`` also bounds each member slot, so a concat's
producer whose channels all score low keeps ``1 - max_ratio`` of them, and ``min_channels``
bounds each member slot too: no layer keeps fewer, unless it had fewer), and ``k`` is the knob
a target search bisects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from detprune.graph.groups import Group
from detprune.schedule.select import removal_order, round_members

NORMALIZERS = ("mean", "max", "none")


def normalised(group: Group, scores: np.ndarray, how: str = "mean") -> np.ndarray:
    """Scores divided by their mean / max magnitude over the group's unpinned classes."""
    if how not in NORMALIZERS:
        raise ValueError(f"normalize must be one of {NORMALIZERS}, got {how!r}")
    s = np.asarray(scores, dtype=np.float64)
    free = np.abs(s[~group.pinned])
    if how == "none" or free.size == 0:
        return s
    ref = free.mean() if how == "mean" else free.max()
    return s / ref if ref > 0 else s


def group_cap(group: Group, available: int, max_ratio: float = 1.0, min_channels: int = 1) -> int:
    """Most classes the group may lose: bounded by ``max_ratio`` of its prunable ones and ``min_channels`` kept."""
    cap = min(available, int(math.floor(max_ratio * group.prunable)), group.size - min_channels)
    return max(0, cap)


@dataclass
class GlobalRanking:
    """Per-group removal orders plus the merged global order of (group, rank) entries."""

    groups: list[Group]
    orders: dict[int, np.ndarray]  # group index -> classes, least important first (capped)
    entries: np.ndarray  # [K, 2] (group index, position in its order), globally least important first

    @property
    def total(self) -> int:
        return len(self.entries)

    def counts(self, k: int) -> dict[int, int]:
        """How many classes each group loses when the ``k`` globally lowest are removed."""
        k = max(0, min(int(k), self.total))
        n = {g.index: 0 for g in self.groups}
        if k:
            gi, cnt = np.unique(self.entries[:k, 0], return_counts=True)
            n.update(zip(gi.tolist(), cnt.tolist()))
        return n

    def removal(self, k: int, round_to: int | None = None) -> dict[int, np.ndarray]:
        out = {}
        counts = self.counts(k)
        for g in self.groups:
            out[g.index] = np.sort(round_members(g, self.orders[g.index][:counts[g.index]], round_to))
        return out


def global_ranking(groups: list[Group], scores: dict[int, np.ndarray], max_ratio: float = 0.9,
                   min_channels: int = 1, normalize: str = "mean") -> GlobalRanking:
    orders: dict[int, np.ndarray] = {}
    keys, rows = [], []
    for g in groups:
        s = normalised(g, scores[g.index], normalize)
        order = removal_order(g, s, max_member_ratio=max_ratio, min_member=min_channels)
        order = order[: group_cap(g, len(order), max_ratio, min_channels)]
        orders[g.index] = order
        keys.append(s[order])
        rows.append(np.stack([np.full(len(order), g.index), np.arange(len(order))], axis=1))
    if not rows or sum(len(r) for r in rows) == 0:
        return GlobalRanking(groups, orders, np.zeros((0, 2), dtype=np.int64))
    key, entries = np.concatenate(keys), np.concatenate(rows).astype(np.int64)
    # ties: by group, then by position, so each group's entries stay a prefix of its order
    idx = np.lexsort((entries[:, 1], entries[:, 0], key))
    return GlobalRanking(groups, orders, entries[idx])


def global_removal(groups: list[Group], scores: dict[int, np.ndarray], ratio: float, max_ratio: float = 0.9,
                   min_channels: int = 1, round_to: int | None = None, normalize: str = "mean") -> dict[int, np.ndarray]:
    """Remove ``ratio`` of all prunable classes of the model, lowest normalised scores first."""
    ranking = global_ranking(groups, scores, max_ratio, min_channels, normalize)
    total_prunable = sum(g.prunable for g in groups)
    return ranking.removal(int(math.floor(ratio * total_prunable)), round_to)
