"""FPGM: filters near the geometric median of their layer are replaceable by the others.

He et al., "Filter Pruning via Geometric Median for Deep CNN Acceleration", CVPR 2019. For
filter i of a layer with filters W_1..W_n (flattened output slices of the weight):

    G_i = sum_j || W_i - W_j ||_p        (p = 2 by default)

the sum of distances to the other filters; the smallest G is closest to the geometric median,
hence the most redundant, and is pruned first. Weight-only: no calibration data.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from detprune.criteria.base import Criterion, register_criterion
from detprune.graph.groups import Member


def distance_sums(weight: torch.Tensor, dim: int = 0, p: float = 2.0) -> np.ndarray:
    """Sum of distances of each slice along ``dim`` to every other slice."""
    w = weight.detach().double().movedim(dim, 0)
    w = w.reshape(w.shape[0], -1)
    return torch.cdist(w, w, p=p).sum(1).cpu().numpy()


@register_criterion("fpgm")
class FPGM(Criterion):
    def __init__(self, p: float = 2.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.p = p

    def member_scores(self, member: Member) -> np.ndarray | None:
        if member.slot.role != "out" or member.slot.name != "weight":
            return None
        return distance_sums(member.slot.tensor, member.slot.dim, self.p)
