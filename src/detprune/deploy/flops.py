"""Model size and compute: parameter count and MACs, the cost axes a pruning result is judged on.

MACs come from ``torch.utils.flop_counter.FlopCounterMode`` (the ATen-level counter that
ships with torch) rather than a hook-based counter, so functional calls, ``matmul`` and
grouped / depth-wise convolutions are all seen. It counts convolution, ``mm``/``addmm``
(linear), ``bmm``/``matmul`` and attention as 2 FLOPs per multiply-accumulate and ignores
bias adds, norms and activations; MACs = FLOPs / 2.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from detprune.inputs import ExampleInputs, call_model


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (shared parameters counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_macs(model: nn.Module, example_inputs: ExampleInputs) -> int:
    """Multiply-accumulates of one eval-mode forward on ``example_inputs`` (batch included).

    ``example_inputs``: a Tensor -> ``model(t)``; a list -> ``model(list)``; a dict ->
    ``model(**d)``; a tuple -> ``model(*t)``. The train/eval mode of ``model`` is restored.
    """
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            call_model(model, example_inputs, strict=True)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops()) // 2
