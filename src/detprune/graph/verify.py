"""The correctness contract of channel removal, usable by tests and by users.

Removing a channel must be exactly the same as cutting its contribution: in a copy of the
original model, zero the consumers' weight slices for the removed input channels; in eval mode
the pruned model and that masked copy produce the same outputs (to float tolerance).
"""

from __future__ import annotations

import copy
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor, nn

from detprune.graph.groups import Group
from detprune.graph.tracer import prediction_outputs
from detprune.inputs import call_model, flatten_tensors


def random_removal(groups: list[Group], ratio: float, seed: int = 0, exact_only: bool = True) -> dict[int, np.ndarray]:
    """Random classes to remove, ``ratio`` of each group's prunable ones (the engine's test criterion)."""
    from detprune.schedule import local_removal

    rng = np.random.default_rng(seed)
    chosen = [g for g in groups if not (exact_only and g.inexact)]
    return local_removal(chosen, {g.index: rng.random(g.size) for g in chosen}, ratio)


def masked_copy(model: nn.Module, groups: list[Group], removal: dict[int, np.ndarray]) -> nn.Module:
    """A copy of ``model`` whose consumers ignore the removed channels (weights zeroed, shapes kept)."""
    masked = copy.deepcopy(model)
    modules = dict(masked.named_modules())
    by_index = {g.index: g for g in groups}
    with torch.no_grad():
        for gi, classes in removal.items():
            for m in by_index[gi].members:
                if m.slot.role != "in":
                    continue
                positions = np.flatnonzero(np.isin(m.cls, classes))
                if len(positions) == 0:
                    continue
                target = getattr(modules[m.slot.module_path], m.slot.name)
                target.index_fill_(m.slot.dim, torch.as_tensor(positions, device=target.device), 0.0)
    return masked


def flat_outputs(model: nn.Module, example_inputs: Any) -> list[Tensor]:
    """The model's prediction tensors on ``example_inputs`` (no grad), flattened in order."""
    with torch.no_grad():
        return flatten_tensors(prediction_outputs(model, call_model(model, example_inputs)))


def max_relative_error(a: list[Tensor], b: list[Tensor]) -> float:
    """Largest |a - b| over all outputs, relative to the outputs' magnitude."""
    if len(a) != len(b):
        raise AssertionError(f"different number of outputs: {len(a)} vs {len(b)}")
    worst = 0.0
    for i, (x, y) in enumerate(zip(a, b)):
        if x.shape != y.shape:
            raise AssertionError(f"output {i}: shape {tuple(x.shape)} vs {tuple(y.shape)}")
        if x.numel() == 0:
            continue
        scale = max(1.0, float(y.detach().abs().max()))
        worst = max(worst, float((x.detach().float() - y.detach().float()).abs().max()) / scale)
    return worst


def randomize_norm_stats(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give BatchNorm layers non-trivial statistics and affine terms so that every channel matters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            frozen = type(m).__name__ == "FrozenBatchNorm2d"  # torchvision's: statistics live in buffers
            if frozen or (isinstance(m, nn.modules.batchnorm._NormBase) and m.running_mean is not None):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            if (frozen or isinstance(m, (nn.modules.batchnorm._NormBase, nn.GroupNorm))) and m.weight is not None:
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
    return model


def check_equivalence(model: nn.Module, example_inputs: Any, ratio: float, seed: int = 0,
                      outputs: Callable[[nn.Module, Any], list[Tensor]] = flat_outputs,
                      groups: list[Group] | None = None) -> tuple[float, int]:
    """Prune ``model`` in place by random classes and compare with the masked copy.

    Returns (max relative output error, number of channel classes removed).
    """
    from detprune.api import groups as find_groups
    from detprune.graph.surgery import refresh_submodules, remove_channels

    model.eval()
    found = groups if groups is not None else find_groups(model, example_inputs)
    removal = random_removal(found, ratio, seed)
    reference = masked_copy(model, found, removal).eval()
    remove_channels(found, removal)
    refresh_submodules(model)
    removed = int(sum(len(v) for v in removal.values()))
    return max_relative_error(outputs(model, example_inputs), outputs(reference, example_inputs)), removed
