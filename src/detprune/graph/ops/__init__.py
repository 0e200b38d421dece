"""Op handlers: how each torch op maps, ties or pins the channels of its inputs and outputs.

A handler receives the :class:`~detprune.graph.tracer.Tracer` and the intercepted
:class:`~detprune.graph.tracer.Call`. It must account for every tracked axis of every tensor
input: map it to an output axis, tie it to other channels, or pin it. Ops without a handler
go to :func:`unknown_op`, which pins everything they touch.
"""

from __future__ import annotations

from typing import Any, Callable

from detprune.graph.tracer import Call, Tracer
from detprune.inputs import flatten_tensors

Handler = Callable[[Tracer, Call], Any]
HANDLERS: dict[str, Handler] = {}
INT_AWARE: set[str] = set()  # handlers that interpret TrackedInt arguments themselves


def register(*names: str, ints: bool = False) -> Callable[[Handler], Handler]:
    def deco(fn: Handler) -> Handler:
        for n in names:
            HANDLERS[n] = fn
            if ints:
                INT_AWARE.add(n)
        return fn

    return deco


def unknown_op(t: Tracer, call: Call) -> None:
    """Pin every channel the op reads; its outputs are untracked (and so pin whatever they reach)."""
    reason = t.where(call.name) + " (op not understood by the channel tracer)"
    for x in flatten_tensors(call.args) + flatten_tensors(call.kwargs):
        if t.is_param(x):
            path, module, _, _ = t._owner[id(x)]
            t.unsupported.setdefault(path or "<model>", type(module).__name__)
        t.pin_tensor(x, reason)
    for out in flatten_tensors(call.out):
        t.mark_untracked(out, f"output of {reason}")


@register("dim", "numel", "nelement", "element_size", "is_contiguous", "stride", "storage_offset",
          "data_ptr", "device", "dtype", "is_floating_point", "is_complex", "requires_grad", "grad_fn",
          "layout", "is_cuda", "is_sparse", "is_quantized", "is_meta", "ndim", "get_device", "len",
          "register_hook", "retain_grad", "is_leaf", "grad", "names", "untyped_storage", "nbytes", "itemsize")
def no_channels(t: Tracer, call: Call) -> None:
    """Metadata queries: nothing flows."""


from detprune.graph.ops import layers, pointwise, reduce, shape  # noqa: E402,F401  (registers handlers)
