"""Model size and compute: parameter count and MACs, the cost axes a pruning result is judged on.

MACs come from ``torch.utils.flop_counter.FlopCounterMode`` (the ATen-level counter that
ships with torch) rather than a hook-based counter, so functional calls, ``matmul`` and
grouped / depth-wise convolutions are all seen. It counts convolution, ``mm``/``addmm``
(linear), ``bmm``/``matmul`` and attention as 2 FLOPs per multiply-accumulate and ignores
bias adds, norms and activations; MACs = FLOPs / 2.

Two-stage torchvision detectors (Faster / Mask / Keypoint R-CNN) run their RoI heads on as many
boxes as survive the RPN's and the box head's score threshold and NMS (and the RPN's drop of empty
boxes), a number that depends on the weights: pruning (or training) would change the count through
the proposals alone, and the RoI heads dominate it. They are counted at their budget instead, with
those filters off during the count (``rpn_post_nms_top_n_test`` proposals, up to
``box_detections_per_img`` detections for the mask / keypoint heads).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

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
        with torch.no_grad(), _box_budgets(model), FlopCounterMode(display=False) as counter:
            call_model(model, example_inputs, strict=True)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops()) // 2


_BUDGET_FILTERS = {  # torchvision class name -> thresholds that make its box count data-dependent, and "off"
    "RegionProposalNetwork": {"score_thresh": 0.0, "nms_thresh": 1.0, "min_size": 0.0},  # min_size: empty boxes
    "RoIHeads": {"score_thresh": 0.0, "nms_thresh": 1.0},
}


@contextmanager
def _box_budgets(model: nn.Module) -> Iterator[None]:
    """Turn off the box filters of torchvision's RPN and RoI heads (score, NMS, RPN's empty boxes); restored on exit."""
    saved = []
    for m in model.modules():
        off = _BUDGET_FILTERS.get(type(m).__name__) if type(m).__module__.startswith("torchvision") else None
        for key, value in (off or {}).items():
            if hasattr(m, key):
                saved.append((m, key, getattr(m, key)))
                setattr(m, key, value)
    try:
        yield
    finally:
        for m, key, value in saved:
            setattr(m, key, value)
