"""Layers with parameters (conv, linear, norms, PReLU) and spatial ops (pooling, resizing, RoI).

Parameter handlers create :class:`Slot`s for the prunable dims of the layer's weights and tie
them to the channels of the input and output tensors, following the layer's channel structure
(groups, depthwise multipliers, GroupNorm groups).
"""

from __future__ import annotations

import numpy as np
from torch import Tensor

from detprune.graph.ops import register
from detprune.graph.tracer import Call, Tracer


def _weight_axes(t: Tracer, w: Tensor, dims: dict[int, str]) -> dict[int, np.ndarray]:
    """Prunable dims of a weight: slots when it is a parameter, tracked axes when it is computed."""
    if t.is_param(w):
        return {d: t.slot(w, d, role) for d, role in dims.items() if w.shape[d] > 1}
    axes = t.axes(w)
    for a, ids in axes.items():
        if a not in dims:
            t.pin(ids, t.where("computed weight"))
    return {a: ids for a, ids in axes.items() if a in dims}


def _input_channels(t: Tracer, x: Tensor, axis: int, op: str) -> np.ndarray:
    """Channel ids of ``x`` along ``axis``; other tracked axes must be spatial and are pinned."""
    axes = t.axes(x)
    for a, ids in axes.items():
        if a != axis:
            t.pin(ids, t.where(op) + " (channels on a spatial axis)")
    ids = axes.get(axis)
    if ids is None:
        ids = t.channels.new(x.shape[axis], t.untracked_reason(x, op))
    return ids


def _bias(t: Tracer, bias: Tensor | None, out_ids: np.ndarray | None, op: str) -> None:
    if bias is None:
        return
    b = _weight_axes(t, bias, {0: "out"}).get(0)
    if b is not None and out_ids is not None:
        t.union(out_ids, b)
    elif b is not None:
        t.pin(b, t.where(op))


@register("conv1d", "conv2d", "conv3d")
def conv(t: Tracer, call: Call) -> None:
    x, w, out = call.arg(0, "input"), call.arg(1, "weight"), call.out
    groups = call.arg(6, "groups", 1)
    axis = 1 if x.dim() == w.dim() else 0  # batched or unbatched input
    c_out, c_group = w.shape[0], w.shape[1]
    wa = _weight_axes(t, w, {0: "out", 1: "in"})
    w_out, w_in = wa.get(0), wa.get(1)
    _bias(t, call.arg(2, "bias"), w_out, call.name)
    x_in = _input_channels(t, x, axis, call.name)
    if groups == 1:
        if w_in is not None:
            t.union(x_in, w_in)
        else:
            t.pin(x_in, t.where(call.name) + " (single input channel)")
    elif c_group == 1 and w_out is not None:  # depthwise: input g feeds outputs g*m .. g*m+m-1
        m = c_out // groups
        for j in range(m):
            t.union(x_in, w_out[j::m])
    else:  # grouped: every group must keep the same width, so position p is tied across groups
        if w_in is not None:
            for g in range(groups):
                t.union(x_in[g * c_group:(g + 1) * c_group], w_in)
        per_out = c_out // groups
        if w_out is not None and per_out > 1:
            for g in range(1, groups):
                t.union(w_out[:per_out], w_out[g * per_out:(g + 1) * per_out])
        elif w_out is not None:
            t.pin(w_out, t.where(call.name) + " (one output per group)")
        if w_in is None:
            t.pin(x_in, t.where(call.name) + " (one input per group)")
    t.set_axes(out, {axis: w_out} if w_out is not None else {}, call.name)


@register("conv_transpose1d", "conv_transpose2d", "conv_transpose3d")
def conv_transpose(t: Tracer, call: Call) -> None:
    x, w, out = call.arg(0, "input"), call.arg(1, "weight"), call.out
    groups = call.arg(6, "groups", 1)
    axis = 1 if x.dim() == w.dim() else 0
    wa = _weight_axes(t, w, {0: "in", 1: "out"})
    w_in, w_out = wa.get(0), wa.get(1)
    x_in = _input_channels(t, x, axis, call.name)
    if groups == 1:
        _bias(t, call.arg(2, "bias"), w_out, call.name)
        if w_in is not None:
            t.union(x_in, w_in)
        t.set_axes(out, {axis: w_out} if w_out is not None else {}, call.name)
        return
    if w.shape[1] == 1 and w_in is not None:  # depthwise transpose: output g is input g
        t.union(x_in, w_in)
        _bias(t, call.arg(2, "bias"), x_in, call.name)
        t.set_axes(out, {axis: x_in}, call.name)
        return
    reason = t.where(call.name) + " (grouped transposed convolution)"
    for ids in (x_in, w_in, w_out):
        if ids is not None:
            t.pin(ids, reason)
    _bias(t, call.arg(2, "bias"), w_out, call.name)


@register("linear")
def linear(t: Tracer, call: Call) -> None:
    x, w, out = call.arg(0, "input"), call.arg(1, "weight"), call.out
    last = x.dim() - 1
    wa = _weight_axes(t, w, {0: "out", 1: "in"})
    w_out, w_in = wa.get(0), wa.get(1)
    _bias(t, call.arg(2, "bias"), w_out, call.name)
    axes = dict(t.axes(x))
    x_in = axes.pop(last, None)
    if w_in is not None:
        if x_in is None:
            x_in = t.channels.new(x.shape[last], t.untracked_reason(x, call.name))
        t.union(x_in, w_in)
    elif x_in is not None:
        t.pin(x_in, t.where(call.name) + " (single input feature)")
    if w_out is not None and w.dim() == 2:
        axes[out.dim() - 1] = w_out
    t.set_axes(out, axes, call.name)


def _per_channel(t: Tracer, ids: np.ndarray, params: list, op: str) -> None:
    for p in params:
        if isinstance(p, Tensor):
            slot = _weight_axes(t, p, {0: "norm"}).get(0)
            if slot is not None:
                t.union(ids, slot)


def _norm_input(t: Tracer, x: Tensor, op: str) -> tuple[np.ndarray, dict]:
    axes = dict(t.axes(x))
    axis = 1 if x.dim() > 1 else 0
    ids = axes.get(axis)
    if ids is None:
        ids = t.channels.new(x.shape[axis], t.untracked_reason(x, op))
    return ids, axes


@register("batch_norm", "instance_norm")
def batch_norm(t: Tracer, call: Call) -> None:
    x = call.args[0]
    ids, axes = _norm_input(t, x, call.name)
    names = ("running_mean", "running_var", "weight", "bias")
    _per_channel(t, ids, [call.arg(i + 1, n) for i, n in enumerate(names)], call.name)
    t.set_axes(call.out, {**axes, (1 if x.dim() > 1 else 0): ids}, call.name)


@register("group_norm")
def group_norm(t: Tracer, call: Call) -> None:
    x, groups = call.args[0], call.arg(1, "num_groups")
    w, b = call.arg(2, "weight"), call.arg(3, "bias")
    ids, axes = _norm_input(t, x, call.name)
    per = len(ids) // groups
    if w is None and b is None:
        t.pin(ids, t.where(call.name) + " (no affine parameters to carry the new group count)")
    for g in range(groups):  # statistics are per group: only whole groups can go
        t.channels.union_all(ids[g * per:(g + 1) * per])
    _per_channel(t, ids, [w, b], call.name)
    t.set_axes(call.out, {**axes, 1: ids}, call.name)


@register("layer_norm", "rms_norm")
def layer_norm(t: Tracer, call: Call) -> None:
    x, shape = call.args[0], call.arg(1, "normalized_shape")
    w, b = call.arg(2, "weight"), call.arg(3, "bias" if call.name == "layer_norm" else "eps")
    k = len(shape) if isinstance(shape, (tuple, list)) else 1
    axes = dict(t.axes(x))
    last = x.dim() - 1
    for a, ids in axes.items():
        if a < x.dim() - k:
            continue
        if a == last and k == 1 and isinstance(w, Tensor):
            t.channels.mark_inexact(ids, t.where(call.name) + " normalises over channels: removal changes statistics")
            _per_channel(t, ids, [w, b if isinstance(b, Tensor) else None], call.name)
        else:
            t.pin(ids, t.where(call.name) + " (normalised axis without per-channel parameters)")
    t.set_axes(call.out, axes, call.name)


@register("prelu")
def prelu(t: Tracer, call: Call) -> None:
    x, w = call.args[0], call.arg(1, "weight")
    ids, axes = _norm_input(t, x, call.name)
    if w.numel() > 1:
        _per_channel(t, ids, [w], call.name)
    t.set_axes(call.out, {**axes, (1 if x.dim() > 1 else 0): ids}, call.name)


_SPATIAL = {f"{kind}{n}d{suffix}": n for n in (1, 2, 3) for suffix in ("", "_with_indices") for kind in (
    "max_pool", "_max_pool", "avg_pool", "adaptive_avg_pool", "adaptive_max_pool", "_adaptive_max_pool", "lp_pool",
    "fractional_max_pool", "max_unpool")}


@register(*_SPATIAL, "interpolate", "upsample", "upsample_nearest", "upsample_bilinear", "pad", "grid_sample")
def spatial(t: Tracer, call: Call) -> None:
    """Ops that only resize or pad the trailing spatial dims keep every other axis as it is."""
    x = call.args[0]
    if call.name == "pad":
        pad = call.arg(1, "pad")
        n = len(pad) // 2
        touched = {x.dim() - 1 - i for i in range(n) if pad[2 * i] or pad[2 * i + 1]}
    elif call.name in _SPATIAL:
        touched = set(range(x.dim() - _SPATIAL[call.name], x.dim()))
    else:
        touched = set(range(2, x.dim()))
    kept = {}
    for a, ids in t.axes(x).items():
        if a in touched:
            t.pin(ids, t.where(call.name) + " (channels on a resized axis)")
        else:
            kept[a] = ids
    outs = call.out if isinstance(call.out, (tuple, list)) else [call.out]
    for out in outs:
        if isinstance(out, Tensor) and out.dim() == x.dim():
            t.set_axes(out, kept, call.name)


@register("roi_align", "roi_pool")
def roi_align(t: Tracer, call: Call) -> None:
    """torchvision RoI ops: [N, C, H, W] features -> [K, C, h, w] crops; channels stay on axis 1."""
    x, out = call.args[0], call.out
    kept = {}
    for a, ids in t.axes(x).items():
        if a == 1:
            kept[1] = ids
        else:
            t.pin(ids, t.where(call.name))
    for other in call.args[1:]:
        if isinstance(other, Tensor):
            t.pin_tensor(other, t.where(call.name))
    outs = out if isinstance(out, (tuple, list)) else [out]
    for o in outs[:1]:
        t.set_axes(o, kept, call.name)
