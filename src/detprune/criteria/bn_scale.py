"""Network Slimming: the BatchNorm scale |gamma| of a channel measures its importance.

Liu et al., "Learning Efficient Convolutional Networks through Network Slimming", ICCV 2017.
Score of a channel: ``|gamma_k|`` of the BatchNorm members of its group (averaged over the BN
layers a class spans, after per-layer normalisation). Train with :func:`bn_l1_penalty` added to
the loss so that unimportant scales are driven towards zero first. Groups without a BatchNorm
member fall back to the filter L1 norm (Li et al. 2017) instead of scoring every class equal.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from detprune.criteria.base import Criterion, register_criterion
from detprune.criteria.magnitude import L1
from detprune.graph.groups import Group, Member


def is_batchnorm(module: nn.Module) -> bool:
    return isinstance(module, nn.modules.batchnorm._BatchNorm) or "BatchNorm" in type(module).__name__


def bn_l1_penalty(model: nn.Module, lam: float = 1e-4) -> Tensor:
    """``lam * sum |gamma|`` over the affine BatchNorm layers of ``model``: add it to the training loss."""
    gammas = [m.weight for m in model.modules()
              if is_batchnorm(m) and isinstance(getattr(m, "weight", None), nn.Parameter)]
    if not gammas:
        return torch.zeros(())
    return lam * torch.stack([g.abs().sum() for g in gammas]).sum()


@register_criterion("bn_scale")
class BNScale(Criterion):
    def member_scores(self, member: Member) -> np.ndarray | None:
        s = member.slot
        if s.role == "norm" and s.name == "weight" and is_batchnorm(s.module):
            return s.tensor.detach().abs().double().cpu().numpy()
        return None

    def group_scores(self, group: Group) -> np.ndarray:
        if any(self.member_scores(m) is not None for m in group.members):
            return super().group_scores(group)
        return L1(normalize=self.normalize, combine=self.combine).group_scores(group)
