"""First-order Taylor importance: the loss change predicted by removing a feature-map channel.

Molchanov et al., "Importance Estimation for Neural Network Pruning", CVPR 2019 (feature-map
form of their first-order criterion, as in Molchanov et al., ICLR 2017). For channel k:

    T_k = mean over images of | sum over positions (A_k * dL/dA_k) |

``A`` is the producer's output (``hook`` option), ``L`` the task loss: pass
``loss_fn(model, batch) -> Tensor`` or ``adapter`` (DetectorAdapter, ``sum(adapter.loss(...))``).
"""

from __future__ import annotations

from torch import Tensor

from detprune.criteria.activation import ActivationCriterion
from detprune.criteria.base import register_criterion


@register_criterion("taylor")
class Taylor(ActivationCriterion):
    needs_grad = True

    def statistic(self, maps: Tensor, grads: Tensor | None) -> Tensor:
        return (maps * grads).flatten(2).sum(-1).abs().sum(0)
