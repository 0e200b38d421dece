"""Weight-magnitude criteria: filter L1/L2 norms (Li et al., ICLR 2017, "Pruning Filters for Efficient ConvNets")."""

from __future__ import annotations

import numpy as np
import torch

from detprune.criteria.base import Criterion, register_criterion
from detprune.graph.groups import Member


def slot_norms(member: Member, p: int) -> np.ndarray:
    """Norm of each slice of the member's tensor along its slot dimension."""
    t = member.slot.tensor.detach().float()
    t = t.movedim(member.slot.dim, 0).reshape(t.shape[member.slot.dim], -1)
    return torch.linalg.vector_norm(t, ord=p, dim=1).cpu().numpy()


def unit_mean(x: np.ndarray) -> np.ndarray:
    """``x`` divided by its mean magnitude (left as is when that is 0): a per-layer factor on a common scale."""
    m = np.abs(x).mean()
    return x / m if m > 0 else x


class _Norm(Criterion):
    p = 1

    def member_scores(self, member: Member) -> np.ndarray | None:
        # Filters are the output slices of conv/linear weights; other members (BN, consumers) are not filters.
        if member.slot.role != "out" or member.slot.name != "weight":
            return None
        return slot_norms(member, self.p)


@register_criterion("l1")
class L1(_Norm):
    p = 1


@register_criterion("l2")
class L2(_Norm):
    p = 2
