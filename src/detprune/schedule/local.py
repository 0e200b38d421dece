"""Local schedule: every group loses the same fraction of its prunable channel classes."""

from __future__ import annotations

import math

import numpy as np

from detprune.graph.groups import Group
from detprune.schedule.select import select_lowest


def round_removal(size: int, n: int, round_to: int | None) -> int:
    """Remove fewer than ``n`` so that the kept count is a multiple of ``round_to`` (hardware-friendly widths)."""
    if round_to and round_to > 1 and n > 0:
        kept = min(size, int(math.ceil((size - n) / round_to) * round_to))
        n = size - kept
    return max(0, n)


def n_to_remove(group: Group, ratio: float, round_to: int | None = None) -> int:
    n = round_removal(group.size, int(math.floor(ratio * group.prunable)), round_to)
    return max(0, min(n, group.prunable))


def local_removal(groups: list[Group], scores: dict[int, np.ndarray], ratio: float,
                  round_to: int | None = None, max_member_ratio: float = 0.9) -> dict[int, np.ndarray]:
    """``ratio`` of every group, lowest scores first; no member slot (e.g. one producer of a
    concat group) loses more than ``max_member_ratio`` of its channels."""
    return {g.index: select_lowest(g, scores[g.index], n_to_remove(g, ratio, round_to), max(ratio, max_member_ratio),
                                   round_to) for g in groups}
