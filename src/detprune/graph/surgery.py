"""Physically remove channels: slice every member parameter, then refresh module attributes.

Attributes such as ``out_channels`` or ``num_features`` are re-derived from the new parameter
shapes, so the pruned model prints, trains, exports and can be traced again for another round.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import Tensor, nn

from detprune.graph.groups import Group

Refresher = Callable[[nn.Module, dict], None]
_REFRESH_BY_NAME: dict[str, Refresher] = {}


def register_refresher(type_name: str) -> Callable[[Refresher], Refresher]:
    """Refresh attributes of a module type by class name (third-party types need no import)."""

    def deco(fn: Refresher) -> Refresher:
        _REFRESH_BY_NAME[type_name] = fn
        return fn

    return deco


def remove_channels(groups: list[Group], removal: dict[int, np.ndarray]) -> None:
    """Remove, for each group index, the given class indices from every member slot."""
    by_group = {g.index: g for g in groups}
    cuts: dict[tuple[int, str], tuple[nn.Module, str, bool, dict[int, np.ndarray]]] = {}
    for gi, classes in removal.items():
        group = by_group[gi]
        classes = np.asarray(classes, dtype=np.int64)
        if len(classes) == 0:
            continue
        pinned = group.pinned[classes]
        if pinned.any():
            c = int(classes[pinned][0])
            raise ValueError(f"group {gi}: channel class {c} is pinned ({group.pin_reasons[c]})")
        for m in group.members:
            keep = np.flatnonzero(~np.isin(m.cls, classes))
            if len(keep) == len(m.cls):
                continue
            if len(keep) == 0:
                raise ValueError(f"group {gi}: removing these channels would leave {m.label} with none")
            s = m.slot
            entry = cuts.setdefault((id(s.module), s.name), (s.module, s.name, s.is_buffer, {}))
            entry[3][s.dim] = keep
    touched: dict[int, tuple[nn.Module, dict]] = {}
    for module, name, is_buffer, dims in cuts.values():
        if id(module) not in touched:
            touched[id(module)] = (module, _attributes(module))
        table = module._buffers if is_buffer else module._parameters
        old = table[name]
        new = old.detach()
        for dim, keep in dims.items():
            new = new.index_select(dim, torch.as_tensor(keep, device=old.device))
        table[name] = nn.Parameter(new.contiguous(), requires_grad=old.requires_grad) if isinstance(old, nn.Parameter) \
            else new.contiguous()
    for module, old_attrs in touched.values():
        refresh_module(module, old_attrs)


def _attributes(module: nn.Module) -> dict:
    """The attributes a refresher needs from before the cut."""
    names = ("out_channels", "in_channels", "groups", "num_groups", "num_channels")
    return {n: getattr(module, n) for n in names if hasattr(module, n)}


def refresh_module(module: nn.Module, old: dict) -> None:
    """Re-derive channel attributes from parameter shapes after a cut."""
    if isinstance(module, nn.modules.conv._ConvNd):
        _refresh_conv(module, old)
    elif isinstance(module, nn.Linear):
        module.out_features, module.in_features = module.weight.shape
    elif isinstance(module, nn.modules.batchnorm._NormBase):
        ref = module.weight if module.weight is not None else module.running_mean
        module.num_features = ref.shape[0]
    elif isinstance(module, nn.GroupNorm):
        per_group = old["num_channels"] // old["num_groups"]
        module.num_channels = module.weight.shape[0]
        module.num_groups = module.num_channels // per_group
    elif isinstance(module, nn.LayerNorm) and module.weight is not None and module.weight.dim() == 1:
        module.normalized_shape = (module.weight.shape[0],)
    elif isinstance(module, nn.PReLU):
        module.num_parameters = module.weight.numel()
    for cls in type(module).__mro__:
        fn = _REFRESH_BY_NAME.get(cls.__name__)
        if fn is not None:
            fn(module, old)
            break


def _refresh_conv(conv: nn.modules.conv._ConvNd, old: dict) -> None:
    w: Tensor = conv.weight
    depthwise = old["groups"] > 1 and old["in_channels"] == old["groups"]
    if conv.transposed:
        if depthwise:
            conv.groups = w.shape[0]
        conv.in_channels, conv.out_channels = w.shape[0], w.shape[1] * conv.groups
        return
    if depthwise:
        multiplier = old["out_channels"] // old["groups"]
        conv.groups = w.shape[0] // multiplier
    conv.out_channels, conv.in_channels = w.shape[0], w.shape[1] * conv.groups


def adopt(model: nn.Module, other: nn.Module) -> None:
    """Make ``model`` (in place, same object) hold ``other``'s modules and tensors: a pruned variant
    has other shapes, so ``load_state_dict`` cannot; callers keep their reference to ``model``."""
    model.__dict__.clear()
    model.__dict__.update(other.__dict__)


def refresh_submodules(model: nn.Module) -> None:
    """Run the by-name refreshers (e.g. Ultralytics' C2f.c) over a whole model after pruning."""
    for m in model.modules():
        for cls in type(m).__mro__:
            fn = _REFRESH_BY_NAME.get(cls.__name__)
            if fn is not None:
                fn(m, {})
                break


@register_refresher("C2f")
def _c2f(module: nn.Module, _old: dict) -> None:
    """Ultralytics C2f keeps the half width in ``c`` for ``forward_split`` (used at export)."""
    module.c = module.cv1.conv.out_channels // 2
