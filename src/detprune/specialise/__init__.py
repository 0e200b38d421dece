"""One-class (class-subset) specialisation: slice the class outputs, relabel the data, prune the rest.

    cmap = specialise(model, classes=["WBC"], names=dataset.names)   # logits of WBC unchanged
    train = ClassSubset(dataset, cmap.classes)                       # labels renumbered 0..k-1
    report = detprune.prune(model, x, criterion="attribution", ratio=0.6, data=calib)

Once the head predicts only the kept classes, any class-driven criterion (attribution) scores
channels by what they contribute to *those* classes; :func:`specialise_and_prune` chains the
steps with an optional fine-tune callback.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from detprune.specialise.heads import slice_classes
from detprune.specialise.labels import ClassMap, ClassSubset

__all__ = ["ClassMap", "ClassSubset", "SpecialiseReport", "specialise", "specialise_and_prune"]


def _model_names(model: nn.Module) -> list[str] | None:
    names = getattr(model, "names", None)
    if isinstance(names, dict):
        return [str(names[i]) for i in sorted(names)]
    return list(names) if isinstance(names, (list, tuple)) else None


def specialise(model: nn.Module, classes: Sequence[int | str], names: Sequence[str] | None = None) -> ClassMap:
    """Slice ``model``'s class outputs in place to ``classes`` (indices or names); returns the label map.

    The kept classes' logits are exactly the original ones (same weights, same order as given).
    """
    cmap = ClassMap.build(classes, names if names is not None else _model_names(model))
    slice_classes(model, list(cmap.classes))
    return cmap


@dataclass
class SpecialiseReport:
    classes: ClassMap
    prune: Any  # detprune.PruneReport
    finetuned: bool


def specialise_and_prune(model: nn.Module, classes: Sequence[int | str], example_inputs: Any,
                         criterion: str = "l1", ratio: float = 0.5, names: Sequence[str] | None = None,
                         finetune: Callable[[nn.Module, ClassMap], None] | None = None,
                         **prune_kwargs: Any) -> SpecialiseReport:
    """:func:`specialise`, then :func:`detprune.prune` (``prune_kwargs``: target, schedule, data...),
    then ``finetune(model, class_map)`` (train on ``ClassSubset`` data) if given."""
    from detprune.api import prune

    cmap = specialise(model, classes, names)
    report = prune(model, example_inputs, criterion, ratio, **prune_kwargs)
    if finetune is not None:
        finetune(model, cmap)
    return SpecialiseReport(cmap, report, finetune is not None)
