"""Coupling groups: the sets of layers whose channels must be removed together.

A depth-first search over the bipartite graph "parameter slot <-> channel class" collects
every slot reachable from a starting slot through shared channel classes. Each class of a
group is one pruning unit: removing it deletes its positions from every member slot.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from detprune.graph.tracer import Slot, TraceResult


@dataclass
class Member:
    """One slot of a group and, for each of its positions, the class (pruning unit) it belongs to."""

    slot: Slot
    cls: np.ndarray  # int index into Group.roots, one per position of the slot

    @property
    def label(self) -> str:
        return self.slot.label


@dataclass
class Group:
    """Parameter slots whose channels are removed together, as classes (pruning units).

    A class covers positions of one or more members (``Member.cls``); ``pin_reasons`` say which classes
    must stay, and ``inexact`` why removing some classes only approximates cutting their contribution.
    """

    index: int
    roots: np.ndarray  # channel-class root ids, one per pruning unit
    members: list[Member]
    pin_reasons: list[str | None]  # per class: why it may not be removed, or None
    inexact: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.roots)

    @property
    def pinned(self) -> np.ndarray:
        return np.array([r is not None for r in self.pin_reasons], dtype=bool)

    @property
    def prunable(self) -> int:
        return int((~self.pinned).sum())

    def counts(self) -> np.ndarray:
        """[n_members, n_classes]: positions each class holds in each member slot."""
        return np.stack([np.bincount(m.cls, minlength=self.size) for m in self.members])

    def modules(self) -> list[str]:
        """``"path (Type)"`` of every member module, once each, in member order."""
        seen: dict[str, None] = {}
        for m in self.members:
            seen.setdefault(f"{m.slot.module_path or '<model>'} ({type(m.slot.module).__name__})")
        return list(seen)

    def reasons(self) -> dict[str, int]:
        """Distinct pin reasons with how many classes each pins."""
        out: dict[str, int] = {}
        for r in self.pin_reasons:
            if r is not None:
                out[r] = out.get(r, 0) + 1
        return out


def build_groups(trace: TraceResult) -> list[Group]:
    """The connected components of the trace's slots, numbered in order; groups with nothing prunable
    whose members are all role ``"param"`` (e.g. kernel dims) are left out."""
    channels = trace.channels
    slot_roots = [channels.roots(s.ids) for s in trace.slots]
    slots_of_root: dict[int, list[int]] = {}
    for i, roots in enumerate(slot_roots):
        for r in np.unique(roots).tolist():
            slots_of_root.setdefault(r, []).append(i)
    visited = [False] * len(trace.slots)
    groups: list[Group] = []
    for start in range(len(trace.slots)):
        if visited[start]:
            continue
        component, stack, seen_roots = [], [start], set()
        visited[start] = True
        while stack:  # depth-first search over slots linked by shared channel classes
            i = stack.pop()
            component.append(i)
            for r in np.unique(slot_roots[i]).tolist():
                if r in seen_roots:
                    continue
                seen_roots.add(r)
                for j in slots_of_root[r]:
                    if not visited[j]:
                        visited[j] = True
                        stack.append(j)
        component.sort()
        roots = np.array(sorted(seen_roots), dtype=np.int64)
        members = [Member(trace.slots[i], np.searchsorted(roots, slot_roots[i])) for i in component]
        reasons = [channels.pin_reason(int(r)) for r in roots]
        inexact = sorted({x for r in roots if (x := channels.inexact_reason(int(r)))})
        group = Group(len(groups), roots, members, reasons, inexact)
        if group.prunable == 0 and all(m.slot.role == "param" for m in members):
            continue  # e.g. kernel dims of a weight read by an unsupported op: nothing to show
        group.index = len(groups)
        groups.append(group)
    return groups
