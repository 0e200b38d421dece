"""Local schedule: every group loses the same fraction of its prunable channel classes."""

from __future__ import annotations

import math

import numpy as np

from detprune.graph.groups import Group
from detprune.schedule.select import select_lowest


def n_to_remove(group: Group, ratio: float) -> int:
    """``ratio`` of the group's prunable classes (``round_to`` is applied per member by :func:`select_lowest`)."""
    return max(0, min(int(math.floor(ratio * group.prunable)), group.prunable))


def local_removal(groups: list[Group], scores: dict[int, np.ndarray], ratio: float,
                  round_to: int | None = None, max_member_ratio: float = 0.9) -> dict[int, np.ndarray]:
    """``ratio`` of every group, lowest scores first; no member slot (e.g. one producer of a
    concat group) loses more than ``max_member_ratio`` of its channels."""
    return {g.index: select_lowest(g, scores[g.index], n_to_remove(g, ratio), max(ratio, max_member_ratio), round_to)
            for g in groups}
