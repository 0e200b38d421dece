"""Element-wise ops with broadcasting: aligned channel axes are tied together."""

from __future__ import annotations

import numpy as np
from torch import Tensor

from detprune.graph.ops import register
from detprune.graph.tracer import Call, Tracer

ELEMENTWISE = (
    # arithmetic and comparisons
    "add", "sub", "subtract", "mul", "multiply", "div", "divide", "true_divide", "truediv", "floor_divide",
    "floordiv", "pow", "float_power", "remainder", "fmod", "mod", "maximum", "minimum", "fmax", "fmin",
    "where", "clamp", "clip", "clamp_min", "clamp_max", "lerp", "addcmul", "addcdiv", "copysign", "hypot",
    "atan2", "eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor", "logical_not",
    "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not", "and", "or", "xor", "invert", "masked_fill",
    "isnan", "isinf", "isfinite", "nan_to_num", "neg", "negative", "pos", "abs", "sign", "sgn", "square",
    "sqrt", "rsqrt", "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "reciprocal", "floor", "ceil",
    "round", "trunc", "frac", "sin", "cos", "tan", "erf", "erfc", "erfinv", "fill", "zero", "copy", "mul_scalar",
    # activations
    "relu", "relu6", "leaky_relu", "elu", "selu", "celu", "gelu", "silu", "mish", "hardswish", "hardsigmoid",
    "hardtanh", "sigmoid", "tanh", "softplus", "softsign", "logsigmoid", "threshold", "rrelu", "hardshrink",
    "softshrink", "tanhshrink", "logit", "xlogy",
    # dropout (channel dropout zeroes whole channels: still no coupling)
    "dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout",
)

UNARY = (  # only the first argument is data; others give dtype/device or nothing
    "to", "float", "double", "half", "bfloat16", "int", "long", "bool", "type", "type_as", "contiguous",
    "clone", "detach", "cpu", "cuda", "requires_grad", "data", "positive", "zeros_like", "ones_like",
    "empty_like", "full_like", "rand_like", "randn_like", "detach_copy", "pin_memory",
)


@register(*UNARY)
def unary(t: Tracer, call: Call) -> None:
    x, out = call.args[0], call.out
    if isinstance(out, Tensor) and isinstance(x, Tensor) and out.shape == x.shape:
        t.set_axes(out, dict(t.axes(x)), call.name)


@register(*ELEMENTWISE)
def elementwise(t: Tracer, call: Call) -> None:
    out = call.args[0] if call.inplace else call.out
    if not isinstance(out, Tensor):
        return
    inputs = [x for x in (*call.args, *call.kwargs.values()) if isinstance(x, Tensor)]
    nd = out.dim()
    per_axis: dict[int, list[np.ndarray]] = {}
    for x in inputs:
        off = nd - x.dim()
        for a, ids in t.axes(x).items():
            b = a + off
            if off < 0 or x.shape[a] != out.shape[b]:
                t.pin(ids, t.where(call.name) + " (channel axis broadcast)")
            else:
                per_axis.setdefault(b, []).append(ids)
    result: dict[int, np.ndarray] = {}
    for b, lst in per_axis.items():
        for ids in lst[1:]:
            t.union(lst[0], ids)
        for x in inputs:
            a = b - (nd - x.dim())
            overwritten = call.name in ("copy", "fill", "zero") and x is out
            if 0 <= a < x.dim() and x.shape[a] > 1 and a not in t.axes(x) and not overwritten:
                t.pin(lst[0], t.where(call.name) + " (combined with a tensor whose channels are not traced)")
        result[b] = lst[0]
    if call.inplace and out is call.args[0]:
        result = {**t.axes(out), **result}
    t.set_axes(out, result, call.name)
