"""Per-iteration learning-rate schedule: linear warm-up then cosine decay.

Warm-up keeps the first updates of a freshly pruned (or randomly initialised) network from
blowing up BN statistics and momentum buffers; cosine then anneals to a small final LR.
"""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def warmup_cosine_factor(
    it: int, total_iters: int, warmup_iters: int, final_ratio: float = 0.01, start_factor: float = 0.01
) -> float:
    """LR multiplier at iteration ``it``: ``start_factor`` -> 1 over warm-up, then cosine to ``final_ratio``.

    The factor is exactly 1 at ``it == warmup_iters`` and exactly ``final_ratio`` at
    ``it >= total_iters``.
    """
    warmup_iters = min(max(warmup_iters, 0), total_iters)
    if it < warmup_iters:
        return start_factor + (1.0 - start_factor) * it / warmup_iters
    if it >= total_iters:
        return final_ratio
    span = total_iters - warmup_iters
    progress = (it - warmup_iters) / span
    return final_ratio + (1.0 - final_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(
    optimizer: Optimizer, total_iters: int, warmup_iters: int, final_ratio: float = 0.01, start_factor: float = 0.01
) -> LambdaLR:
    """``LambdaLR`` stepped once per optimiser step.

    The lambda is a plain closure, so ``state_dict()`` stores only counters (safe for
    ``weights_only`` loading) and a resumed run recomputes the shape from its own arguments.
    """

    def factor(it: int) -> float:
        return warmup_cosine_factor(it, total_iters, warmup_iters, final_ratio, start_factor)

    return LambdaLR(optimizer, factor)
