"""Relabel a dataset for a class-subset model: keep some classes, renumber them 0..k-1."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import Dataset


@dataclass(frozen=True)
class ClassMap:
    """``classes[j]`` (an index of the original model / dataset) becomes class ``j``."""

    classes: tuple[int, ...]
    names: tuple[str, ...]

    @classmethod
    def build(cls, classes: Sequence[int | str], names: Sequence[str] | None) -> "ClassMap":
        """From indices or names (names need ``names``, the original class names)."""
        out = []
        for c in classes:
            if isinstance(c, str):
                if names is None or c not in names:
                    raise ValueError(f"unknown class name {c!r}; known: {list(names or [])}")
                out.append(list(names).index(c))
            else:
                out.append(int(c))
        n = len(names) if names is not None else None
        if not out or len(set(out)) != len(out) or any(c < 0 or (n is not None and c >= n) for c in out):
            raise ValueError(f"classes must be distinct indices in [0, {n}), got {list(classes)}")
        shown = tuple(names[c] for c in out) if names is not None else tuple(str(c) for c in out)
        return cls(tuple(out), shown)

    @property
    def old_to_new(self) -> dict[int, int]:
        return {c: j for j, c in enumerate(self.classes)}

    def relabel(self, target: dict[str, Any], keep_others: bool = False) -> dict[str, Any]:
        """A copy of ``target`` with boxes of other classes dropped (or kept as -1) and labels renumbered."""
        labels = target["labels"]
        lut = torch.full((max(self.classes + (int(labels.max()) if labels.numel() else 0,)) + 1,), -1,
                         dtype=torch.long)
        lut[list(self.classes)] = torch.arange(len(self.classes))
        new = lut[labels.long()] if labels.numel() else labels.long()
        keep = new >= 0
        out = dict(target)
        if keep_others:
            out["labels"] = new
        else:
            out["boxes"], out["labels"] = target["boxes"][keep], new[keep]
        return out


class ClassSubset(Dataset):
    """Wraps a detection dataset: only the kept classes' boxes, renumbered ``0..k-1``.

    Images without a kept box stay (they teach the model what *not* to detect) unless
    ``drop_empty``; the scan that finds them reads labels only (``records`` of a
    :class:`~detprune.detection.data.DetectionDataset`) when available.
    """

    def __init__(self, dataset: Dataset, classes: Sequence[int | str], drop_empty: bool = False) -> None:
        self.dataset = dataset
        self.map = ClassMap.build(classes, getattr(dataset, "names", None))
        self.indices = list(range(len(dataset)))  # type: ignore[arg-type]
        if drop_empty:
            self.indices = [i for i in self.indices if self._has_kept(i)]

    def _has_kept(self, i: int) -> bool:
        records = getattr(self.dataset, "records", None)
        labels = records[i].labels if records is not None else self.dataset[i][1]["labels"]
        return any(int(c) in self.map.old_to_new for c in list(labels))

    @property
    def names(self) -> list[str]:
        return list(self.map.names)

    @property
    def num_classes(self) -> int:
        return len(self.map.classes)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[Any, dict[str, Any]]:
        image, target = self.dataset[self.indices[i]]
        return image, self.map.relabel(target)
