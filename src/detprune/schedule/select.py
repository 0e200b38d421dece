"""Pick the least important classes of a group while keeping every member layer non-empty."""

from __future__ import annotations

import numpy as np

from detprune.graph.groups import Group


def removal_order(group: Group, scores: np.ndarray, limit: int | None = None,
                  max_member_ratio: float = 1.0, min_member: int = 1) -> np.ndarray:
    """Unpinned classes in the order they may be removed, least important first.

    A class is skipped when removing it (after the ones before it) would leave some member
    slot with no position, with fewer than ``1 - max_member_ratio`` of its positions, or with
    fewer than ``min_member`` (all it has if it has fewer): a group fed by several producers,
    e.g. a concat, must not empty one producer because its channels all scored low. Every
    prefix of the order is therefore a valid removal. Scores are non-decreasing along the
    order, which lets a global ranking take prefixes per group.
    """
    counts = group.counts()  # [members, classes]
    left = counts.sum(axis=1)
    floor = np.maximum(np.minimum(max(1, int(min_member)), left),
                       left - np.floor(max_member_ratio * left + 1e-9).astype(np.int64))
    pinned = group.pinned
    limit = group.size if limit is None else limit
    chosen: list[int] = []
    for c in np.argsort(np.asarray(scores), kind="stable"):
        if len(chosen) >= limit:
            break
        if pinned[c]:
            continue
        after = left - counts[:, c]
        if (after[counts[:, c] > 0] < floor[counts[:, c] > 0]).any():
            continue
        left = after
        chosen.append(int(c))
    return np.array(chosen, dtype=np.int64)


def round_members(group: Group, removed: np.ndarray, round_to: int | None) -> np.ndarray:
    """``removed`` (least important first) minus its most important classes until every member
    slot keeps a multiple of ``round_to`` positions or loses a multiple of it (none, at worst).

    Per member slot, not per group: a concat of two convs can keep 48 channels as 41 + 7. A slot
    whose width was no multiple (a 12-wide producer beside a 16-wide one feeds a 28-wide concat
    input) may keep that remainder as long as it loses whole multiples, else such a group could
    never be cut. Giving classes back only keeps more, so the floors of :func:`removal_order` hold.
    """
    if not round_to or round_to <= 1 or len(removed) == 0:
        return removed
    counts = group.counts()
    total = counts.sum(axis=1)
    kept = total - counts[:, removed].sum(axis=1)
    left = list(removed)
    while left:
        bad = np.flatnonzero((kept % round_to != 0) & ((total - kept) % round_to != 0))
        if len(bad) == 0:
            break
        m = int(bad[0])
        # the most important removed class holding positions of member m goes back
        back = next(i for i in range(len(left) - 1, -1, -1) if counts[m, left[i]] > 0)
        kept += counts[:, left.pop(back)]
    return np.array(left, dtype=np.int64)


def select_lowest(group: Group, scores: np.ndarray, n: int, max_member_ratio: float = 1.0,
                  round_to: int | None = None) -> np.ndarray:
    """Up to ``n`` unpinned classes with the lowest scores; never empties a member slot; with
    ``round_to``, fewer so that member widths stay multiples of it (:func:`round_members`)."""
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    order = removal_order(group, scores, limit=n, max_member_ratio=max_member_ratio)
    return np.sort(round_members(group, order, round_to))
