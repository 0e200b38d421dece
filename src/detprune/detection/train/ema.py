"""Exponential moving average of model weights, with YOLO's ramped decay.

Averaging weights smooths the noise of the last SGD steps and typically evaluates a few
points of mAP higher than the raw weights, especially when fine-tuning pruned models. The
decay ramps from 0 so the average is not dominated by the (possibly random) initial weights.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn


def unwrap(model: nn.Module) -> nn.Module:
    """The underlying module of a (Distributed)DataParallel wrapper."""
    return model.module if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)) else model


class ModelEMA:
    """``ema = d * ema + (1 - d) * model`` on floating-point state, with ``d = decay * (1 - exp(-updates / tau))``.

    Integer buffers (e.g. BN's ``num_batches_tracked``) are copied. The averaged copy is kept in
    eval mode and never receives gradients.
    """

    def __init__(self, model: nn.Module, decay: float = 0.9999, tau: float = 2000.0, updates: int = 0) -> None:
        self.module = copy.deepcopy(unwrap(model)).eval()
        self.module.requires_grad_(False)
        self.decay = decay
        self.tau = tau
        self.updates = updates

    def decay_at(self, updates: int) -> float:
        """Decay used for the ``updates``-th update (1-based)."""
        return self.decay * (1.0 - math.exp(-updates / self.tau))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold the current weights of ``model`` into the average."""
        self.updates += 1
        d = self.decay_at(self.updates)
        src = unwrap(model).state_dict()
        for name, v in self.module.state_dict().items():
            s = src[name].detach()
            if v.dtype.is_floating_point:
                v.mul_(d).add_(s.to(v.dtype), alpha=1.0 - d)
            else:
                v.copy_(s)

    def state_dict(self) -> dict[str, Any]:
        """Tensors and primitives only (checkpoint-safe)."""
        return {"module": self.module.state_dict(), "updates": self.updates, "decay": self.decay, "tau": self.tau}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the averaged weights and the update counter."""
        self.module.load_state_dict(state["module"])
        self.updates = int(state["updates"])
        self.decay = float(state.get("decay", self.decay))
        self.tau = float(state.get("tau", self.tau))
