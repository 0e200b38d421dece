"""CHIP: channel independence from the nuclear norm of post-activation feature maps.

Sui et al., "CHIP: CHannel Independence-based Pruning for Compact Neural Networks", NeurIPS 2021.
For each image the post-activation map of a layer is flattened to ``A`` (C x HW) and

    CI_i = ||A||_* - ||M_i A||_*        (M_i zeroes row i; no absolute value)

averaged over images; low independence = replaceable by the other channels = pruned first.
Removing a row never increases any singular value (interlacing), so CI_i >= 0 and it equals
DCODP's coupling score on the same map: the two criteria differ in *where* the map is taken.
CHIP hooks post-activation maps (``hook="post"``: after the BN/activation that follows the conv
in its ``nn.Sequential`` or ``Conv(conv, bn, act)`` wrapper, see :mod:`detprune.criteria.collect`);
where no such structure is found the conv output is used. Same fast exact evaluation as
:mod:`detprune.criteria.coupling` (``method="quad"`` or ``"eig"``).
"""

from __future__ import annotations

from torch import Tensor

from detprune.criteria.base import register_criterion
from detprune.criteria.coupling import Coupling


@register_criterion("chip")
class CHIP(Coupling):
    default_hook = "post"

    def statistic(self, maps: Tensor, grads: Tensor | None) -> Tensor:
        return self.drops(maps).sum(0)
