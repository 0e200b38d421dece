"""Cluster pruning's greedy loop (Gamanayake et al. 2020), independent of how latency is obtained.

Each step considers, for every group, removing one *cluster*: its least important channels
down to the next lower multiple of the group's cluster size (the runtime's natural width,
:mod:`~detprune.schedule.staircase`). It takes the candidate with the most latency saved per
unit of importance lost, and repeats until the goal is reached. Latency comes from a function
``latency(group, kept) -> ms`` (measured tables in practice, a synthetic staircase in tests);
the model's latency is estimated additively from the measured start, and the goal callback may
replace the estimate by a real measurement before accepting it. A latency function whose
answers depend on the other groups' widths (:class:`~detprune.schedule.layer_table.LayerTable`)
may also define ``prefetch(pairs)`` (called with every candidate of a step before any is priced)
and ``commit(group, kept)`` (called after each step).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

Removal = dict[int, np.ndarray]
MIN_SCALE, MAX_SCALE = 0.05, 2.0  # bounds of the learned real / priced saving ratio
LatencyFn = Callable[[int, int], float]
# (removal so far, estimated latency) -> (goal reached?, corrected latency estimate)
GoalFn = Callable[[Removal, float], tuple[bool, float]]


@dataclass
class ClusterState:
    """One group as the greedy loop sees it."""

    index: int
    size: int  # channel classes at the start (pinned included)
    order: np.ndarray  # removable classes in removal order (least important first, by cluster where a group
    # has several blocks: :func:`producer_blocks_order`); prefixes are valid removals
    importance: np.ndarray  # per class, comparable across groups (normalised scores)
    cluster: int
    removed: int = 0

    @property
    def kept(self) -> int:
        return self.size - self.removed

    @property
    def floor(self) -> int:
        """Fewest channels the group may keep."""
        return self.size - len(self.order)

    def next_width(self) -> int | None:
        """Width after removing one more cluster: the next lower multiple of ``cluster``, if allowed."""
        k = self.kept
        nxt = ((k - 1) // self.cluster) * self.cluster
        return nxt if nxt >= max(self.floor, 1) else None

    def removal(self) -> np.ndarray:
        return np.sort(self.order[: self.removed])


def block_signatures(counts: np.ndarray) -> list[tuple[int, ...]]:
    """Per channel class, the member slots it occupies (``counts``: [members, classes]); classes
    with the same signature form one block (one producer's channels, or one half of a split)."""
    return [tuple(np.flatnonzero(counts[:, c]).tolist()) for c in range(counts.shape[1])]


def producer_blocks_order(counts: np.ndarray, order: np.ndarray, importance: np.ndarray, cluster: int) -> np.ndarray:
    """``order`` re-sequenced so that every cluster comes out of one producer.

    A group fed by several producers (a concatenation) holds one block of channel classes per
    producer, told apart by which member slots they occupy (``counts``: [members, classes]; the
    two halves of a split conv are blocks too).
    Taking the group's least important classes regardless of block splits a cluster across
    producers, so a 16-wide step leaves e.g. 55 + 25 channels: irregular widths that the runtime
    pads back to its block, saving MACs but no time. Here each block is cut in clusters of its
    own (lowest mean importance first), so every prefix whose length is a multiple of ``cluster``
    leaves every producer at a multiple too, and a block's tail short of a cluster is left out
    (two such tails would make up one mixed cluster). Give it the whole removal order and cap
    the result afterwards (a cap applied first leaves a partial tail per block). Only when each block's size
    is a multiple of ``cluster`` (else the group's steps would not line up with the blocks');
    otherwise, and for single-block groups, ``order`` is returned unchanged.
    """
    if cluster <= 1 or len(order) == 0:
        return order
    signature = block_signatures(counts)
    sizes = Counter(signature)
    if len(sizes) < 2 or any(n % cluster for n in sizes.values()):
        return order
    queues: dict[tuple, list[int]] = {}
    for c in order.tolist():
        queues.setdefault(signature[c], []).append(c)
    # only whole clusters: a block's tail short of one (where a floor keeps a producer's last channel)
    # is dropped, since two blocks' tails would add up to one cluster and a step taking it would
    # split it across producers again (16 + 15 + 15 classes left a conv at 1 of 32 and another at 15)
    chunks = [q[i: i + cluster] for q in queues.values() for i in range(0, len(q) - cluster + 1, cluster)]
    # least important first; a block's chunks keep their order (its classes come least important
    # first, and the sort is stable)
    ranked = sorted(range(len(chunks)), key=lambda i: float(np.mean(importance[chunks[i]])))
    out = [c for i in ranked for c in chunks[i]]
    return np.array(out, dtype=np.int64)


@dataclass
class GreedyStep:
    group: int
    kept_before: int
    kept_after: int
    saved_ms: float
    importance_lost: float
    estimate_ms: float  # estimated model latency after the step


@dataclass
class GreedyResult:
    removal: Removal
    steps: list[GreedyStep] = field(default_factory=list)
    estimate_ms: float = 0.0
    reached: bool = False


def greedy_clusters(states: list[ClusterState], latency: LatencyFn, start_ms: float, goal: GoalFn,
                    max_steps: int | None = None, eps: float = 1e-9) -> GreedyResult:
    """Remove clusters (best latency saved / importance lost first) until ``goal`` says stop.

    Candidates whose measured saving is not positive are taken only when no candidate saves
    time (then the least important cluster goes), so a goal on MACs can still be met on a flat
    runtime. Stops early, unreached, when no group can lose another cluster.

    When ``goal`` corrects the estimate (a real measurement), the ratio of the time really saved
    so far to the time priced so far (cumulative: one noisy measurement moves it little) scales
    every later saving in the estimate: layer timings taken in isolation can overstate what a
    step saves inside the model (layout conversions that the whole model does not pay), and
    without it the loop would stop short again and again. The order of candidates is unaffected.
    """
    est = float(start_ms)
    prefetch, commit = getattr(latency, "prefetch", None), getattr(latency, "commit", None)

    def removal() -> Removal:
        return {s.index: s.removal() for s in states}

    reached, est = goal(removal(), est)
    start, priced, scale = est, 0.0, 1.0  # measured start, saving priced so far, learned real / priced
    steps: list[GreedyStep] = []
    while not reached and (max_steps is None or len(steps) < max_steps):
        best: tuple[tuple, ClusterState, int, float, float] | None = None
        if prefetch is not None:
            prefetch([(s.index, w) for s in states if (nxt := s.next_width()) is not None for w in (s.kept, nxt)])
        for s in states:
            nxt = s.next_width()
            if nxt is None:
                continue
            n = s.kept - nxt
            lost = float(np.sum(s.importance[s.order[s.removed: s.removed + n]]))
            saved = latency(s.index, s.kept) - latency(s.index, nxt)
            key = (1, saved / (lost + eps), -lost) if saved > 0 else (0, -lost, saved)
            if best is None or key > best[0]:
                best = (key, s, nxt, saved, lost)
        if best is None:
            break
        _, s, nxt, saved, lost = best
        before = s.kept
        s.removed += before - nxt
        if commit is not None:
            commit(s.index, nxt)
        priced += max(saved, 0.0)
        est -= scale * max(saved, 0.0)
        steps.append(GreedyStep(s.index, before, nxt, saved, lost, est))
        reached, real = goal(removal(), est)
        if real != est and priced > 0:  # a measurement: learn how much of the priced saving is real
            scale = float(np.clip((start - real) / priced, MIN_SCALE, MAX_SCALE))
        est = steps[-1].estimate_ms = real
    return GreedyResult(removal(), steps, est, reached)
