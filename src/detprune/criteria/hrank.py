"""HRank: filters whose feature maps have low average rank carry little information.

Lin et al., "HRank: Filter Pruning using High-Rank Feature Map", CVPR 2020. Score of channel k:

    R_k = mean over images of rank(F_k)        (F_k the H x W map of channel k)

with ``torch.linalg.matrix_rank`` (``rtol`` default: max(H, W) * eps of float32, as NumPy).
The rank is of the 2-D map; 1-D maps (Conv1d) count as 1 x L, linear outputs as 1 x 1, and
3-D maps fold their trailing dims into W.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from detprune.criteria._threads import num_threads
from detprune.criteria.activation import ActivationCriterion
from detprune.criteria.base import register_criterion


def map_ranks(maps: Tensor, rtol: float | None = None, threads: int | None = 1) -> Tensor:
    """[N, C, *S] maps -> [N, C] matrix rank of each channel's 2-D map."""
    n, c = maps.shape[:2]
    m = maps.reshape(n, c, 1, -1) if maps.dim() == 3 else maps.reshape(n, c, maps.shape[2], -1)
    with num_threads(threads):
        return torch.linalg.matrix_rank(m.float(), rtol=rtol)


@register_criterion("hrank")
class HRank(ActivationCriterion):
    def __init__(self, rtol: float | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rtol = rtol

    def statistic(self, maps: Tensor, grads: Tensor | None) -> Tensor:
        return map_ranks(maps, self.rtol).double().sum(0)
