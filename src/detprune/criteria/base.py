"""The criterion interface: score every channel class of a coupling group.

A criterion scores positions of member slots (a filter, a BN scale, a feature-map channel);
:meth:`Criterion.group_scores` turns those into one score per class by normalising each
member layer and combining members, so that a group spanning many layers is judged as one.
Data-driven criteria override :meth:`prepare` to collect statistics over a calibration loader.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Callable

import numpy as np
from torch import nn

from detprune.graph.groups import Group, Member

CRITERIA: dict[str, type["Criterion"]] = {}


def register_criterion(name: str) -> Callable[[type["Criterion"]], type["Criterion"]]:
    """Class decorator: make the criterion selectable as ``criterion=name`` (sets ``cls.name``)."""
    def deco(cls: type[Criterion]) -> type[Criterion]:
        cls.name = name
        CRITERIA[name] = cls
        return cls

    return deco


def get_criterion(name: str | "Criterion", **kwargs: Any) -> "Criterion":
    """An instance of the registered criterion ``name`` built with ``kwargs``; an instance is returned as is."""
    if isinstance(name, Criterion):
        return name
    if name not in CRITERIA:
        raise ValueError(f"unknown criterion {name!r}; choose from {', '.join(sorted(CRITERIA))}")
    return CRITERIA[name](**kwargs)


class Criterion(ABC):
    """Scores channel classes; higher means more important (kept longer)."""

    name = "base"
    needs_data = False
    # the keyword under which layer-by-layer pruning passes a frozen copy of the unpruned model (None: not wanted)
    reference_option: str | None = None

    def __init__(self, normalize: str = "mean", combine: str = "sum") -> None:
        if normalize not in ("mean", "max", "none"):
            raise ValueError(f"normalize must be 'mean', 'max' or 'none', got {normalize!r}")
        if combine not in ("sum", "mean"):
            raise ValueError(f"combine must be 'sum' or 'mean', got {combine!r}")
        self.normalize, self.combine = normalize, combine

    def prepare(self, model: nn.Module, groups: list[Group], data: Any = None, **kwargs: Any) -> None:
        """Collect what scoring needs (activations, gradients). Weight-only criteria need nothing."""

    @abstractmethod
    def member_scores(self, member: Member) -> np.ndarray | None:
        """Importance of each position of a member slot, or None if this member is not scored."""

    def group_scores(self, group: Group) -> np.ndarray:
        """One score per class: member scores normalised per layer, averaged over the positions a class
        holds in that member, then combined over members (zeros when no member is scored)."""
        per_member = []
        for m in group.members:
            s = self.member_scores(m)
            if s is None:
                continue
            s = np.asarray(s, dtype=np.float64)
            scale = {"mean": np.abs(s).mean(), "max": np.abs(s).max(), "none": 1.0}[self.normalize]
            s = s / scale if scale > 0 else s
            counts = np.bincount(m.cls, minlength=group.size)
            per_class = np.bincount(m.cls, weights=s, minlength=group.size) / np.maximum(counts, 1)
            per_member.append((per_class, counts > 0))
        if not per_member:
            return np.zeros(group.size)
        total = np.sum([p for p, _ in per_member], axis=0)
        if self.combine == "mean":
            total = total / np.maximum(np.sum([present for _, present in per_member], axis=0), 1)
        return total
