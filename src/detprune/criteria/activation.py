"""Base class of criteria scored from feature maps (and their gradients) over calibration data.

Subclasses define :meth:`statistic` (a per-channel reduction of ``[N, C, *S]`` maps, summed over
images) and optionally :meth:`finalize` (turn the per-image mean statistic of a producer into
position scores). Only producer members (conv/linear output weights) are scored; the base
class's per-member normalisation and member combination then give one score per class.

Collection options, accepted by the constructor (hence as ``prune(..., **criterion_kwargs)``)
and overridable in :meth:`prepare`: ``max_batches``, ``progress``, ``hook``
(``"output"|"next"|"post"``, see :mod:`detprune.criteria.collect`), ``train_mode``,
``forward_fn(model, batch)``, and for gradient criteria ``loss_fn(model, batch) -> Tensor`` or
``adapter`` (a DetectorAdapter whose ``loss(images, targets)`` is summed).

Groups where no producer was scored, or where every score is 0 (no conv/linear producer, producers
that never received a gradient, or whose gradient is all zeros: the built-in YOLOv8's box branch
under attribution gets zeros through the box/class concatenation) are scored by ``fallback`` (a
weight-only criterion name, default "l1"; None keeps all-equal scores) rather than pruned in index order.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import Tensor, nn

from detprune.criteria.base import Criterion, get_criterion
from detprune.criteria.collect import ActivationCollector, adapter_forward, adapter_loss, is_producer
from detprune.graph.groups import Group, Member

_OPTIONS = ("max_batches", "progress", "hook", "train_mode", "forward_fn", "loss_fn", "adapter")


class ActivationCriterion(Criterion):
    needs_data = True
    needs_grad = False
    default_hook = "output"

    def __init__(self, *, max_batches: int | None = None, progress: bool = True, hook: str | None = None,
                 train_mode: bool = False, forward_fn: Any = None, loss_fn: Any = None, adapter: Any = None,
                 fallback: str | None = "l1", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fallback = get_criterion(fallback, normalize=self.normalize, combine=self.combine) if fallback else None
        self.options: dict[str, Any] = dict(max_batches=max_batches, progress=progress, hook=hook or self.default_hook,
                                            train_mode=train_mode, forward_fn=forward_fn, loss_fn=loss_fn,
                                            adapter=adapter)
        self.stats: dict[str, np.ndarray] = {}

    def statistic(self, maps: Tensor, grads: Tensor | None) -> Tensor:
        """[N, C, *S] maps (and dL/dmaps) -> [..., C], summed over the N images."""
        raise NotImplementedError

    def finalize(self, member: Member, stat: np.ndarray) -> np.ndarray:
        """Position scores of a producer from its per-image mean statistic."""
        return stat

    def resolve(self, model: nn.Module, **overrides: Any) -> dict[str, Any]:
        """Collector keyword arguments: constructor options updated by ``prepare`` overrides."""
        opts = {**self.options, **{k: v for k, v in overrides.items() if k in _OPTIONS and v is not None}}
        adapter = opts.pop("adapter")
        if adapter is not None:
            opts["loss_fn"] = opts["loss_fn"] or adapter_loss(adapter)
            opts["forward_fn"] = opts["forward_fn"] or adapter_forward(adapter)
        if not self.needs_grad:
            opts.pop("loss_fn")
        opts["desc"] = self.name
        return opts

    def prepare(self, model: nn.Module, groups: list[Group], data: Any = None, **kwargs: Any) -> None:
        if data is None:
            raise ValueError(f"criterion {self.name!r} needs calibration data: pass data=<iterable of batches>")
        opts = self.resolve(model, **kwargs)
        self.stats = ActivationCollector(model, groups, self.statistic, needs_grad=self.needs_grad, **opts).run(data)

    def member_scores(self, member: Member) -> np.ndarray | None:
        if not is_producer(member) or member.slot.module_path not in self.stats:
            return None
        return self.finalize(member, self.stats[member.slot.module_path])

    def group_scores(self, group: Group) -> np.ndarray:
        scores = super().group_scores(group)  # all zeros when no producer was scored
        if self.fallback is not None and not np.any(scores):
            return self.fallback.group_scores(group)
        return scores
