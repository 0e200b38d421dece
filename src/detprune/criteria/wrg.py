"""WRG salient energy: filter weight x feature-map rank x back-propagated gradient.

WRGPruner (2021) ranks filters by a "salient energy level" built from three factors: the
filter's weight magnitude, the average rank of its feature maps and the magnitude of the
task-loss gradient reaching them. The exact formula is not public; we use, per producer layer,

    W_k = ||w_k||_1                                (L1 of the filter, as Li et al. 2017)
    R_k = mean over images of rank(F_k)            (HRank's average map rank)
    G_k = mean over images and positions of |dL/dA_k|
    x~  = x / mean_layer(x)                        (each factor normalised per layer)

    S_k = W~^a * R~^b * G~^c     (mode="product", default: a weighted geometric combination)
    S_k = a W~ + b R~ + c G~     (mode="sum")

with ``a, b, c = w_weight, w_rank, w_grad`` (default 1). Why a product by default: the three
factors are different physical quantities on unrelated scales, and "energy" is low as soon as
any factor is low (a large filter whose maps are rank-deficient or that receives no gradient is
still useless); per-layer mean normalisation makes both modes scale-free and weights exponents
/ coefficients comparable across layers. A factor whose layer mean is zero is left unscaled.

The loss is ``loss_fn(model, batch) -> Tensor`` or ``adapter`` (``sum(adapter.loss(images, targets))``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from detprune.criteria.activation import ActivationCriterion
from detprune.criteria.base import register_criterion
from detprune.criteria.hrank import map_ranks
from detprune.criteria.magnitude import slot_norms, unit_mean
from detprune.graph.groups import Member


@register_criterion("wrg")
class WRG(ActivationCriterion):
    needs_grad = True

    def __init__(self, mode: str = "product", w_weight: float = 1.0, w_rank: float = 1.0, w_grad: float = 1.0,
                 rtol: float | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if mode not in ("product", "sum"):
            raise ValueError(f"mode must be 'product' or 'sum', got {mode!r}")
        self.mode, self.weights, self.rtol = mode, (w_weight, w_rank, w_grad), rtol

    def statistic(self, maps: Tensor, grads: Tensor | None) -> Tensor:
        rank = map_ranks(maps, self.rtol).double().sum(0)
        grad = grads.flatten(2).abs().mean(-1).double().sum(0)
        return torch.stack([rank, grad])

    def factors(self, member: Member, stat: np.ndarray) -> np.ndarray:
        """[3, C]: per-layer normalised weight L1, map rank and gradient magnitude."""
        return np.stack([unit_mean(slot_norms(member, 1)), unit_mean(stat[0]), unit_mean(stat[1])])

    def finalize(self, member: Member, stat: np.ndarray) -> np.ndarray:
        f, w = self.factors(member, stat), np.asarray(self.weights, dtype=np.float64)[:, None]
        return np.prod(f ** w, axis=0) if self.mode == "product" else (w * f).sum(0)
