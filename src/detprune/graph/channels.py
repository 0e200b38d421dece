"""Channel identities and their coupling (a union-find over individual channels).

Every prunable dimension (a parameter slot) and every tracked tensor axis is an array of
integer channel ids. Operations that tie channels together (residual adds, concatenation
offsets, grouped convolutions, ...) merge ids into one class; removing a class removes every
position that carries one of its ids, in every layer. A class reached by anything the tracer
does not understand is *pinned* and never removed.
"""

from __future__ import annotations

import numpy as np


class ChannelSets:
    """Union-find over channel ids with a pin reason per class."""

    def __init__(self) -> None:
        self._parent: list[int] = []
        self._pin_reason: dict[int, str] = {}  # root -> first reason it was pinned
        self._inexact: dict[int, str] = {}  # root -> why removal is only approximate
        # per id: pinned directly. An under-estimate of pinning, used only to stop tracking
        # axes that can never be pruned (keeps post-processing cheap to trace).
        self._flag = np.zeros(0, dtype=bool)

    def __len__(self) -> int:
        return len(self._parent)

    def new(self, n: int, pin: str | None = None) -> np.ndarray:
        """Fresh ids for ``n`` channels; pinned at once when ``pin`` gives a reason."""
        start = len(self._parent)
        self._parent.extend(range(start, start + n))
        if start + n > len(self._flag):  # grow geometrically: tracing creates ids in many small calls
            grown = np.zeros(max(2 * len(self._flag), start + n, 1024), dtype=bool)
            grown[: len(self._flag)] = self._flag
            self._flag = grown
        ids = np.arange(start, start + n, dtype=np.int64)
        if pin is not None:
            self.pin(ids, pin)
        return ids

    def find(self, i: int) -> int:
        parent = self._parent
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def roots(self, ids: np.ndarray) -> np.ndarray:
        find = self.find
        return np.fromiter((find(int(i)) for i in ids), dtype=np.int64, count=len(ids))

    def union(self, a: np.ndarray, b: np.ndarray) -> None:
        """Tie ``a[k]`` to ``b[k]`` for every k."""
        if a.shape != b.shape:
            raise ValueError(f"cannot couple {a.shape[0]} channels with {b.shape[0]}")
        if np.array_equal(a, b):
            return
        find, parent = self.find, self._parent
        for x, y in zip(a.tolist(), b.tolist()):
            rx, ry = find(x), find(y)
            if rx == ry:
                continue
            if rx > ry:
                rx, ry = ry, rx
            parent[ry] = rx
            for table in (self._pin_reason, self._inexact):
                if ry in table:
                    table.setdefault(rx, table.pop(ry))

    def union_all(self, ids: np.ndarray) -> None:
        """Tie all ``ids`` into one class."""
        if len(ids) > 1:
            self.union(ids[:-1], ids[1:])

    def pin(self, ids: np.ndarray, reason: str) -> None:
        if len(ids) == 0:
            return
        self._flag[ids] = True
        for r in set(self.roots(ids).tolist()):
            self._pin_reason.setdefault(r, reason)

    def all_pinned(self, ids: np.ndarray) -> bool:
        """Cheap test used to stop tracking axes whose channels are all pinned already."""
        return bool(len(ids) == 0 or self._flag[ids].all())

    def mark_inexact(self, ids: np.ndarray, reason: str) -> None:
        for r in set(self.roots(ids).tolist()):
            self._inexact.setdefault(r, reason)

    def pin_reason(self, root: int) -> str | None:
        return self._pin_reason.get(self.find(root))

    def inexact_reason(self, root: int) -> str | None:
        return self._inexact.get(self.find(root))
