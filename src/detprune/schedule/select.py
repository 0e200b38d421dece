"""Pick the least important classes of a group while keeping every member layer non-empty."""

from __future__ import annotations

import numpy as np

from detprune.graph.groups import Group


def select_lowest(group: Group, scores: np.ndarray, n: int) -> np.ndarray:
    """Up to ``n`` unpinned classes with the lowest scores; never empties a member slot."""
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    counts = group.counts()  # [members, classes]
    left = counts.sum(axis=1)
    pinned = group.pinned
    chosen = []
    for c in np.argsort(scores, kind="stable"):
        if len(chosen) == n:
            break
        if pinned[c]:
            continue
        after = left - counts[:, c]
        if (after[counts[:, c] > 0] <= 0).any():
            continue
        left = after
        chosen.append(int(c))
    return np.array(sorted(chosen), dtype=np.int64)
