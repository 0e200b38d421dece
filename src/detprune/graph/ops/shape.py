"""Ops that move, merge, slice, join or split axes, and ops that create tensors from sizes."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from detprune.graph.ops import register
from detprune.graph.tracer import Call, Tracer, TrackedInt


# --------------------------------------------------------------------------- reshape family
def map_reshape(in_shape: tuple[int, ...], axis: int, out_shape: tuple[int, ...]) -> tuple[int, int] | None:
    """Where a channel axis lands after a contiguous reshape: ``(out_axis, repeat)`` or None.

    ``repeat`` > 1 means the axis was merged with the trailing dims (``flatten`` before a Linear):
    each channel then owns ``repeat`` consecutive positions. A split of the axis (heads, groups,
    pixel shuffle) or a merge with a leading dim of size > 1 cannot be followed: None.
    """
    lead = math.prod(in_shape[:axis])
    c = in_shape[axis]
    q = 1
    for b, size in enumerate(out_shape):
        if q == lead and size == 1 and c != 1:
            continue  # a leading dim of size 1 (batch of one) before the channel axis
        if q == lead:
            if size == c:
                return b, 1
            tail = 1
            for k in range(axis + 1, len(in_shape) + 1):
                if size == c * tail:
                    return b, tail
                if k < len(in_shape):
                    tail *= in_shape[k]
            return None
        if q > lead:
            return None
        q *= size
    return None


def _shape_args(call: Call) -> list[Any]:
    rest = call.args[1:]
    if len(rest) == 1 and isinstance(rest[0], (tuple, list, torch.Size)):
        return list(rest[0])
    return list(call.kwargs.get("shape", call.kwargs.get("size", rest)))


@register("view", "reshape", "view_as", "reshape_as", ints=True)
def reshape(t: Tracer, call: Call) -> None:
    x, out = call.args[0], call.out
    if not isinstance(out, Tensor) or (len(call.args) > 1 and isinstance(call.args[1], torch.dtype)):
        from detprune.graph.ops import unknown_op

        return unknown_op(t, call)
    shape_args = [] if call.name.endswith("_as") else _shape_args(call)
    result = _follow_reshape(t, call, x, out)
    for pos, value in enumerate(shape_args):  # a channel count passed as a size must land on its own axis
        if isinstance(value, TrackedInt):
            ok = not value.derived and pos in result and np.array_equal(result[pos], value.ids)
            if not ok:
                t.pin(value.ids, t.where(call.name) + " (channel count used as a size)")
    t.set_axes(out, result, call.name)


@register("flatten", "unflatten", "squeeze", "unsqueeze", "ravel", "atleast_1d", "atleast_2d", "atleast_3d")
def reshape_like(t: Tracer, call: Call) -> None:
    if isinstance(call.out, Tensor):
        t.set_axes(call.out, _follow_reshape(t, call, call.args[0], call.out), call.name)


def _follow_reshape(t: Tracer, call: Call, x: Tensor, out: Tensor) -> dict[int, np.ndarray]:
    result: dict[int, np.ndarray] = {}
    for a, ids in t.axes(x).items():
        mapped = map_reshape(tuple(x.shape), a, tuple(out.shape))
        if mapped is None:
            t.pin(ids, t.where(call.name) + " (reshape splits or mixes the channel axis)")
            continue
        b, repeat = mapped
        result[b] = ids if repeat == 1 else np.repeat(ids, repeat)
    return result


# --------------------------------------------------------------------------- axis permutations
def _perm(call: Call, nd: int) -> list[int] | None:
    name, args = call.name, call.args
    if name == "permute":
        dims = args[1:] if len(args) > 2 or not isinstance(args[1], (list, tuple)) else args[1]
        dims = call.kwargs.get("dims", dims)
        return [d % nd for d in dims]
    if name in ("transpose", "swapaxes", "swapdims"):
        d0, d1 = call.arg(1, "dim0"), call.arg(2, "dim1")
        p = list(range(nd))
        p[d0 % nd], p[d1 % nd] = p[d1 % nd], p[d0 % nd]
        return p
    if name in ("t", "T") and nd <= 2:
        return list(range(nd))[::-1]
    if name in ("mT", "mH"):
        return list(range(nd - 2)) + [nd - 1, nd - 2]
    if name in ("movedim", "moveaxis"):
        src, dst = call.arg(1, "source"), call.arg(2, "destination")
        src, dst = ([src], [dst]) if isinstance(src, int) else (list(src), list(dst))
        src, dst = [s % nd for s in src], [d % nd for d in dst]
        rest = [d for d in range(nd) if d not in src]
        p: list[int | None] = [None] * nd
        for s, d in zip(src, dst):
            p[d] = s
        it = iter(rest)
        return [v if v is not None else next(it) for v in p]
    return None


@register("permute", "transpose", "swapaxes", "swapdims", "t", "T", "mT", "mH", "movedim", "moveaxis")
def permute(t: Tracer, call: Call) -> None:
    x, out = call.args[0], call.out
    p = _perm(call, x.dim())
    if p is None or not isinstance(out, Tensor):
        from detprune.graph.ops import unknown_op

        return unknown_op(t, call)
    src_to_dst = {s: d for d, s in enumerate(p)}
    t.set_axes(out, {src_to_dst[a]: ids for a, ids in t.axes(x).items()}, call.name)


@register("expand", "expand_as", "broadcast_to", ints=True)
def expand(t: Tracer, call: Call) -> None:
    x, out = call.args[0], call.out
    off = out.dim() - x.dim()
    result = {}
    for a, ids in t.axes(x).items():
        if x.shape[a] == out.shape[a + off]:
            result[a + off] = ids
        else:
            t.pin(ids, t.where(call.name) + " (channel axis broadcast)")
    for pos, value in enumerate(_shape_args(call) if call.name != "expand_as" else []):
        if isinstance(value, TrackedInt) and not (pos in result and np.array_equal(result[pos], value.ids)):
            if value != -1:
                t.pin(value.ids, t.where(call.name) + " (channel count used as a size)")
    t.set_axes(out, result, call.name)


@register("repeat", "tile")
def repeat(t: Tracer, call: Call) -> None:
    x, out = call.args[0], call.out
    reps = _shape_args(call)
    off = out.dim() - x.dim()
    result = {}
    for a, ids in t.axes(x).items():
        factor = reps[a + off] if a + off < len(reps) else 1
        if factor == 1:
            result[a + off] = ids
        else:
            t.pin(ids, t.where(call.name) + " (channel axis repeated)")
    t.set_axes(out, result, call.name)


@register("flip", "fliplr", "flipud")
def flip(t: Tracer, call: Call) -> None:
    x = call.args[0]
    dims = {"fliplr": [1], "flipud": [0]}.get(call.name) or call.arg(1, "dims")
    dims = {d % x.dim() for d in ([dims] if isinstance(dims, int) else dims)}
    t.set_axes(call.out, {a: (ids[::-1].copy() if a in dims else ids) for a, ids in t.axes(x).items()}, call.name)


# --------------------------------------------------------------------------- indexing
def parse_index(index: Any, ndim: int) -> tuple[list[tuple[int | None, Any]], set[int], int]:
    """Describe ``x[index]``: per result dim ``(source axis or None, slice)``, consumed axes, #advanced.

    Basic indexing (ints, slices, None, Ellipsis) is followed exactly; one advanced index
    (tensor, list, bool mask) keeps its position, as torch does when it is the only one.
    """
    items = list(index) if isinstance(index, tuple) else [index]
    consumes = 0
    for i in items:
        if i is None or i is Ellipsis:
            continue
        consumes += i.dim() if isinstance(i, Tensor) and i.dtype == torch.bool else 1
    dims: list[tuple[int | None, Any]] = []
    consumed: set[int] = set()
    advanced = 0
    src = 0
    for i in items:
        if i is None:
            dims.append((None, None))
        elif i is Ellipsis:
            for _ in range(ndim - consumes):
                dims.append((src, slice(None)))
                src += 1
        elif isinstance(i, slice):
            dims.append((src, i))
            src += 1
        elif isinstance(i, (int, np.integer)) and not isinstance(i, bool):
            consumed.add(src)
            src += 1
        else:  # advanced: tensor / list / bool mask
            advanced += 1
            mask_dims = i.dim() if isinstance(i, Tensor) and i.dtype == torch.bool else 1
            out_dims = 1 if mask_dims > 1 or (isinstance(i, Tensor) and i.dtype == torch.bool) else (
                i.dim() if isinstance(i, Tensor) else np.asarray(i).ndim)
            for _ in range(mask_dims):
                consumed.add(src)
                src += 1
            dims.extend([(None, None)] * out_dims)
    while src < ndim:
        dims.append((src, slice(None)))
        src += 1
    return dims, consumed, advanced


def _pin_sliced(t: Tracer, ids: np.ndarray, sl: slice) -> None:
    """A constant slice of a channel axis selects positions: removing a channel before its end
    would shift which channels it selects, so those channels are pinned. ``x[:, k:]`` stays
    prunable past ``k`` because its end follows the (pruned) size."""
    if sl == slice(None):
        return
    start, stop, step = sl.start or 0, sl.stop, sl.step or 1
    reason = t.where("indexing") + " (constant slice of the channel axis)"
    if step != 1 or start < 0 or (stop is not None and stop < 0):
        t.channels.pin(ids, reason)
    else:
        t.channels.pin(ids[: (stop if stop is not None else start)], reason)


def _pin_index_tensors(t: Tracer, index: Any, op: str) -> None:
    """Channels carried by an index tensor (a buffer of positions, such as a relative-position
    index) would be removed from the index itself, changing what it selects: pinned."""
    for i in index if isinstance(index, (tuple, list)) else [index]:
        if isinstance(i, Tensor):
            t.pin_tensor(i, t.where(op) + " (used as an index)")


@register("getitem")
def getitem(t: Tracer, call: Call) -> None:
    x, index, out = call.args[0], call.args[1], call.out
    _pin_index_tensors(t, index, "indexing")
    axes = t.axes(x)
    if not axes or not isinstance(out, Tensor):
        return
    dims, consumed, advanced = parse_index(index, x.dim())
    result = {}
    for a, ids in axes.items():
        if a in consumed or advanced > 1:
            t.pin(ids, t.where("indexing") + " (channels selected by index)")
            continue
        for b, (src, sl) in enumerate(dims):
            if src == a:
                _pin_sliced(t, ids, sl)
                result[b] = ids[sl]
    t.set_axes(out, result, "indexing")


@register("setitem")
def setitem(t: Tracer, call: Call) -> None:
    x, index, value = call.args[0], call.args[1], call.args[2]
    _pin_index_tensors(t, index, "index assignment")
    dims, consumed, advanced = parse_index(index, x.dim())
    reason = t.where("index assignment")
    x_axes = dict(t.axes(x))
    for a in consumed:
        if a in x_axes:
            t.pin(x_axes[a], reason + " (channels selected by index)")
    v_axes = t.axes(value) if isinstance(value, Tensor) else {}
    off = len(dims) - (value.dim() if isinstance(value, Tensor) else 0)
    covered = set()
    for b, (src, sl) in enumerate(dims):
        v = v_axes.get(b - off)
        if src is None or advanced > 1:
            if v is not None:
                t.pin(v, reason)
            continue
        covered.add(src)
        mine = x_axes.get(src)
        if v is None:
            if mine is not None and isinstance(value, Tensor) and value.dim() > b - off >= 0 and value.shape[b - off] > 1:
                t.pin(mine[sl], reason + " (written from a tensor whose channels are not traced)")
            continue
        if mine is not None:
            _pin_sliced(t, mine, sl)
            t.union(mine[sl], v)
        elif sl == slice(None):
            x_axes[src] = v  # the target was untracked: it now carries the written channels
        else:
            t.pin(v, reason + " (written into part of an untraced axis)")
    t.set_axes(x, x_axes, "index assignment")


# --------------------------------------------------------------------------- joining and splitting
@register("cat", "concat", "concatenate")
def cat(t: Tracer, call: Call) -> None:
    out = call.out
    tensors = [x for x in call.arg(0, "tensors") if isinstance(x, Tensor) and x.dim() == out.dim()]
    d = call.arg(1, "dim", 0) % out.dim()
    result: dict[int, np.ndarray] = {}
    if any(d in t.axes(x) for x in tensors):
        parts = [t.axes(x).get(d) for x in tensors]
        reason = t.where("cat") + " (concatenated with a tensor whose channels are not traced)"
        result[d] = np.concatenate([p if p is not None else t.channels.new(x.shape[d], reason)
                                    for p, x in zip(parts, tensors)])
    other = {a for x in tensors for a in t.axes(x) if a != d}
    for a in other:
        tracked = [t.axes(x)[a] for x in tensors if a in t.axes(x)]
        for ids in tracked[1:]:
            t.union(tracked[0], ids)
        if len(tracked) < len(tensors):
            t.pin(tracked[0], t.where("cat") + " (joined with a tensor whose channels are not traced)")
        result[a] = tracked[0]
    t.set_axes(out, result, "cat")


@register("stack")
def stack(t: Tracer, call: Call) -> None:
    tensors = list(call.arg(0, "tensors"))
    out = call.out
    d = call.arg(1, "dim", 0) % out.dim()
    result = {}
    for a in {a for x in tensors for a in t.axes(x)}:
        tracked = [t.axes(x)[a] for x in tensors if a in t.axes(x)]
        for ids in tracked[1:]:
            t.union(tracked[0], ids)
        if len(tracked) < len(tensors):
            t.pin(tracked[0], t.where("stack") + " (stacked with a tensor whose channels are not traced)")
        result[a + (a >= d)] = tracked[0]
    t.set_axes(out, result, "stack")


@register("split", "chunk", "tensor_split", "split_with_sizes", "unbind", "iter")
def split(t: Tracer, call: Call) -> None:
    x = call.args[0]
    pieces = [p for p in (call.out if isinstance(call.out, (list, tuple)) else [call.out]) if isinstance(p, Tensor)]
    if call.name in ("unbind", "iter"):
        d = 0 if call.name == "iter" else call.arg(1, "dim", 0) % x.dim()
        for a, ids in t.axes(x).items():
            if a == d:
                t.pin(ids, t.where(call.name) + " (channels taken one by one)")
        for p in pieces:
            t.set_axes(p, {a - (a > d): ids for a, ids in t.axes(x).items() if a != d}, call.name)
        return
    d = call.arg(2, "dim", 0) % x.dim()
    sizes = [p.shape[d] for p in pieces]
    axes = t.axes(x)
    if d in axes:
        ids = axes[d]
        # chunk(n) re-splits equally after pruning, so each piece must lose the same positions;
        # split(sizes) uses constant sizes, which pruning would make wrong: pin.
        equal = call.name == "chunk" and len(set(sizes)) == 1
        if equal:
            k = sizes[0]
            for i in range(1, len(pieces)):
                t.union(ids[:k], ids[i * k:(i + 1) * k])
        else:
            t.pin(ids, t.where(call.name) + f" (split into fixed sizes {sizes})")
    start = 0
    for p, size in zip(pieces, sizes):
        t.set_axes(p, {a: (ids[start:start + size] if a == d else ids) for a, ids in axes.items()}, call.name)
        start += size


# --------------------------------------------------------------------------- sizes and creation
@register("shape", "size")
def size(t: Tracer, call: Call) -> Any:
    """Hand out channel counts as TrackedInt so later uses as op arguments are seen."""
    x = call.args[0]
    axes = t._axes.get(id(x))  # not t.axes(): reading a parameter's shape must not create slots
    if not axes:
        return None
    if call.name == "size" and call.arg(1, "dim") is not None:
        d = call.arg(1, "dim") % x.dim()
        return TrackedInt(call.out, axes[d]) if d in axes else None
    return TrackedSize(TrackedInt(s, axes[a]) if a in axes else s for a, s in enumerate(call.out))


class TrackedSize(tuple):
    """A ``torch.Size`` look-alike whose channel entries are TrackedInt."""

    def numel(self) -> int:
        return math.prod(self)

    def __reduce__(self):
        return torch.Size, (tuple(int(v) for v in self),)


@register("zeros", "ones", "empty", "full", "rand", "randn", "new_zeros", "new_ones", "new_empty", "new_full",
          ints=True)
def create(t: Tracer, call: Call) -> None:
    """``torch.zeros((n, x.shape[1], h, w))`` has x's channels on axis 1: follow them."""
    args = call.args[1:] if call.name.startswith("new_") else call.args
    sizes = list(args[0]) if args and isinstance(args[0], (tuple, list)) else list(call.kwargs.get("size", args))
    if call.name in ("full", "new_full") and not (args and isinstance(args[0], (tuple, list))):
        sizes = sizes[:-1]
    result = {}
    for pos, value in enumerate(sizes):
        if isinstance(value, TrackedInt):
            if value.derived:
                t.pin(value.ids, t.where(call.name) + " (derived channel count used as a size)")
            else:
                result[pos] = value.ids
    t.set_axes(call.out, result, call.name)
