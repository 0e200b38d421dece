"""Reductions and ops that mix values along one axis (softmax, sort, cumsum, normalize).

Along a channel axis they make each output depend on all channels, so removing one changes
the others: those channels are pinned. Along other axes channels pass through.
"""

from __future__ import annotations

from torch import Tensor

from detprune.graph.ops import register
from detprune.graph.ops.pointwise import elementwise
from detprune.graph.tracer import Call, Tracer

REDUCE = ("sum", "mean", "amax", "amin", "prod", "std", "var", "norm", "logsumexp", "nansum", "nanmean", "all",
          "any", "count_nonzero", "argmax", "argmin", "median", "nanmedian", "mode", "max", "min", "var_mean",
          "std_mean", "aminmax", "vector_norm")
ALONG = ("softmax", "log_softmax", "softmin", "cumsum", "cumprod", "cummax", "cummin", "logcumsumexp", "sort",
         "argsort", "topk", "kthvalue", "normalize", "glu", "local_response_norm", "roll")
_DIM_POS = {"norm": 2, "vector_norm": 2, "normalize": 2, "topk": 2, "kthvalue": 2}
_DEFAULT_DIM = {"sort": -1, "argsort": -1, "topk": -1, "kthvalue": -1, "normalize": 1, "glu": -1, "softmax": None,
                "local_response_norm": 1}


@register(*REDUCE, *ALONG)
def reduce(t: Tracer, call: Call) -> None:
    x = call.args[0]
    if call.name in ("max", "min") and isinstance(call.arg(1, "other"), Tensor):
        return elementwise(t, call)  # torch.max(a, b) is element-wise
    dim = call.kwargs.get("dim", call.kwargs.get("axis"))
    if dim is None:
        pos = _DIM_POS.get(call.name, 1)
        dim = call.args[pos] if len(call.args) > pos else _DEFAULT_DIM.get(call.name)
    if isinstance(dim, bool) or not isinstance(x, Tensor):
        dim = None
    nd = max(x.dim(), 1)
    dims = set(range(nd)) if dim is None else {d % nd for d in ([dim] if isinstance(dim, int) else dim)}
    reason = t.where(call.name) + " (mixes values across channels)"
    kept = {}
    for a, ids in t.axes(x).items():
        if a in dims:
            t.pin(ids, reason)
        else:
            kept[a] = ids
    outs = call.out if isinstance(call.out, (tuple, list)) else [call.out]
    for out in outs:
        if not isinstance(out, Tensor):
            continue
        if out.dim() == x.dim():
            t.set_axes(out, kept, call.name)
        else:
            t.set_axes(out, {a - sum(d < a for d in dims): ids for a, ids in kept.items()}, call.name)
