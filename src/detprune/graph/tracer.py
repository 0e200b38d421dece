"""Record the real channel dataflow of one forward pass.

The model runs once, for real, on the user's example input under a ``TorchFunctionMode``:
every torch function, tensor method and operator call is seen with its actual arguments and
results, so Python control flow, NMS and post-processing run as they always do. For each
tensor we keep which of its axes carry channels and the ids of those channels; for each
parameter dimension that can be pruned we keep a :class:`Slot`. Op handlers (``graph.ops``)
say how each op maps, ties or pins channels. Ops without a handler pin every channel they
touch, so the result is conservative, never silently wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from detprune.graph.channels import ChannelSets
from detprune.inputs import call_model, flatten_tensors, leaves

Axes = dict[int, np.ndarray]  # tensor axis -> channel ids along it


class TraceError(RuntimeError):
    """The model's forward failed on the example input, or could not be traced."""


@dataclass
class Slot:
    """One prunable dimension of one parameter or buffer."""

    module_path: str
    module: nn.Module
    name: str
    dim: int
    ids: np.ndarray
    role: str  # "out" (produces channels), "in" (consumes), "norm" (per-channel affine/stats), "param"
    is_buffer: bool

    @property
    def size(self) -> int:
        return len(self.ids)

    @property
    def tensor(self) -> Tensor:
        return (self.module._buffers if self.is_buffer else self.module._parameters)[self.name]

    @property
    def label(self) -> str:
        return f"{self.module_path or '<model>'}.{self.name}[{self.dim}]"


class TrackedInt(int):
    """The size of a channel axis, as read by ``x.shape``/``x.size()`` during tracing.

    When such an int is later passed to a torch op we know the op depends on that channel
    count. Arithmetic on it stays tracked (``derived``) so that ``c // 2`` is not lost.
    """

    ids: np.ndarray
    derived: bool

    def __new__(cls, value: int, ids: np.ndarray, derived: bool = False) -> "TrackedInt":
        obj = super().__new__(cls, value)
        obj.ids, obj.derived = ids, derived
        return obj

    def __reduce__(self):  # copies and pickles of a model touched by tracing hold plain ints
        return int, (int(self),)

    def _wrap(self, value: Any) -> Any:
        return TrackedInt(value, self.ids, True) if isinstance(value, int) and not isinstance(value, bool) else value


def _arith(name: str) -> Callable:
    base = getattr(int, name)
    return lambda self, *a: self._wrap(base(self, *a))


for _n in ("__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__", "__floordiv__",
           "__rfloordiv__", "__mod__", "__rmod__", "__neg__", "__pow__", "__lshift__", "__rshift__"):
    setattr(TrackedInt, _n, _arith(_n))


@dataclass
class Call:
    """One intercepted op: normalised name plus the real arguments and result."""

    name: str
    func: Callable
    args: tuple
    kwargs: dict
    out: Any
    inplace: bool = False

    def arg(self, index: int, name: str, default: Any = None) -> Any:
        if len(self.args) > index:
            return self.args[index]
        return self.kwargs.get(name, default)


@dataclass
class TraceResult:
    """Everything the trace learnt: channel classes and the prunable parameter slots."""

    channels: ChannelSets
    slots: list[Slot]
    module_paths: dict[int, str]  # id(module) -> qualified name
    model_type: str
    unsupported: dict[str, str] = field(default_factory=dict)  # module path -> type of layers we could not follow


def normalise_name(func: Callable) -> tuple[str, bool]:
    """``Tensor.__iadd__`` -> ("add", True), ``F.relu`` -> ("relu", False), ``x.shape`` -> ("shape", False)."""
    name = getattr(func, "__name__", None) or str(func)
    if name == "__get__":  # property access such as x.shape, x.T, x.data
        owner = getattr(func, "__self__", None)
        return getattr(owner, "__name__", "__get__"), False
    inplace = False
    if name.startswith("__") and name.endswith("__"):
        core = name[2:-2]
        if core.startswith("i") and core[1:] in _INPLACE_DUNDER:
            return core[1:], True
        if core.startswith("r") and core[1:] in _REVERSIBLE:
            return core[1:], False
        return core, False
    if name.endswith("_") and not name.endswith("__") and not name.startswith("_"):
        name, inplace = name[:-1], True
    return name, inplace


_INPLACE_DUNDER = {"add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "and", "or", "xor", "lshift", "rshift", "matmul"}
_REVERSIBLE = _INPLACE_DUNDER | {"div"}


class Tracer(TorchFunctionMode):
    """Runs a model once and builds its :class:`TraceResult`. One instance per trace."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.channels = ChannelSets()
        self.slots: list[Slot] = []
        self._slot_of: dict[tuple[int, int], Slot] = {}
        self._axes: dict[int, Axes] = {}
        self._alive: list[Any] = []  # keeps traced tensors alive so their id() stays unique
        self._why_untracked: dict[int, str] = {}
        self.module_paths = {id(m): n for n, m in model.named_modules()}
        self._owner: dict[int, tuple[str, nn.Module, str, bool]] = {}
        for path, module in model.named_modules():
            for name, p in module._parameters.items():
                if p is not None:
                    self._owner.setdefault(id(p), (path, module, name, False))
            for name, b in module._buffers.items():
                if b is not None:
                    self._owner.setdefault(id(b), (path, module, name, True))
        self._stack: list[nn.Module] = []
        self.unsupported: dict[str, str] = {}

    # ----------------------------------------------------------------- handler API
    def where(self, op: str) -> str:
        """Human-readable location of the op being handled, for pin reasons."""
        if not self._stack:
            return f"{op} in <model>"
        m = self._stack[-1]
        return f"{op} in {self.module_paths.get(id(m), '?') or '<model>'} ({type(m).__name__})"

    def is_param(self, x: Any) -> bool:
        return isinstance(x, Tensor) and id(x) in self._owner

    def slot(self, param: Tensor, dim: int, role: str) -> np.ndarray:
        """Channel ids of one parameter dimension, created on first use."""
        key = (id(param), dim)
        slot = self._slot_of.get(key)
        if slot is None:
            path, module, name, is_buffer = self._owner[id(param)]
            slot = Slot(path, module, name, dim, self.channels.new(param.shape[dim]), role, is_buffer)
            self._slot_of[key] = slot
            self.slots.append(slot)
        elif role != "param" and slot.role == "param":
            slot.role = role
        return slot.ids

    def axes(self, x: Any) -> Axes:
        """Tracked axes of ``x``; parameters and buffers are tracked on every dim of size > 1."""
        if not isinstance(x, Tensor):
            return {}
        found = self._axes.get(id(x))
        if found is not None:
            return found
        if id(x) in self._owner:
            return {d: self.slot(x, d, "param") for d in range(x.dim()) if x.shape[d] > 1}
        return {}

    def set_axes(self, x: Any, axes: Axes, op: str = "") -> None:
        """Record the tracked axes of an op's output, dropping axes that are already all pinned."""
        if not isinstance(x, Tensor):
            return
        kept: Axes = {}
        for a, ids in axes.items():
            a = a % x.dim() if x.dim() else a
            if x.dim() == 0 or len(ids) != x.shape[a]:
                self.pin(ids, self.where(op or "op") + " (channel count changed)")
                continue
            if not self.channels.all_pinned(ids):
                kept[a] = ids
            elif len(ids):
                self.mark_untracked(x, f"pinned upstream: {self.channels.pin_reason(int(ids[0]))}")
        if kept:
            self._axes[id(x)] = kept
            self._alive.append(x)
        else:
            self._axes.pop(id(x), None)

    def mark_untracked(self, x: Any, why: str) -> None:
        """Remember why a tensor carries no traced channels, for the pin reasons of its consumers."""
        if isinstance(x, Tensor) and id(x) not in self._why_untracked:
            self._why_untracked[id(x)] = why
            self._alive.append(x)

    def untracked_reason(self, x: Tensor, op: str) -> str:
        why = self._why_untracked.get(id(x), "model input, or an op outside the channel graph")
        return f"{self.where(op)} (input: {why})"

    def pin(self, ids: np.ndarray, reason: str) -> None:
        self.channels.pin(ids, reason)

    def pin_tensor(self, x: Any, reason: str, keep: tuple[int, ...] = ()) -> None:
        for a, ids in self.axes(x).items():
            if a not in keep:
                self.pin(ids, reason)

    def union(self, a: np.ndarray, b: np.ndarray) -> None:
        self.channels.union(a, b)

    # ----------------------------------------------------------------- interception
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name, inplace = normalise_name(func)
        if name == "iter":  # materialise so the tensors it yields can be tracked
            items = list(out)
            self._dispatch(Call(name, func, args, kwargs, items, inplace))
            return iter(items)
        replaced = self._dispatch(Call(name, func, args, kwargs, out, inplace))
        return out if replaced is None else replaced

    def _dispatch(self, call: Call) -> Any:
        """Run the op's handler; a handler may return a replacement result (TrackedInt sizes)."""
        from detprune.graph.ops import HANDLERS, INT_AWARE, unknown_op

        tensors = flatten_tensors(call.args) + flatten_tensors(call.kwargs)
        ints = leaves(call.args, TrackedInt) + leaves(call.kwargs, TrackedInt)
        if not ints and not any(id(t) in self._axes or id(t) in self._owner for t in tensors):
            return None
        handler = HANDLERS.get(call.name)
        if ints and (handler is None or call.name not in INT_AWARE):
            for i in ints:
                self.pin(i.ids, self.where(call.name) + " (channel count used as an argument)")
        return (handler or unknown_op)(self, call)

    # ----------------------------------------------------------------- running
    def run(self, example_inputs: Any) -> tuple[Any, TraceResult]:
        hooks = []
        for m in self.model.modules():
            hooks.append(m.register_forward_pre_hook(self._push))
            hooks.append(m.register_forward_hook(lambda mod, _a, _o: self._pop(mod), always_call=True))
        self._last_entered: nn.Module | None = None
        try:
            with torch.no_grad(), self:
                try:
                    out = call_model(self.model, example_inputs)
                except Exception as exc:
                    raise TraceError(self._failure_message(exc)) from exc
            for t in flatten_tensors(prediction_outputs(self.model, out)):
                self.pin_tensor(t, "model output")
        finally:
            for h in hooks:
                h.remove()
            self._stack.clear()
        _scrub_tracked_sizes(self.model)
        result = TraceResult(self.channels, self.slots, self.module_paths, type(self.model).__name__, self.unsupported)
        self._axes.clear()
        self._why_untracked.clear()
        self._alive.clear()
        return out, result

    def _push(self, mod: nn.Module, _args: Any) -> None:
        self._stack.append(mod)
        self._last_entered = mod

    def _failure_message(self, exc: Exception) -> str:
        m = self._last_entered
        where = "" if m is None else f" (last module entered: {self.module_paths.get(id(m)) or '<model>'} ({type(m).__name__}))"
        return f"forward of {type(self.model).__name__} failed on the example input{where}: {type(exc).__name__}: {exc}"

    def _pop(self, mod: nn.Module) -> None:
        if self._stack and self._stack[-1] is mod:
            self._stack.pop()


def prediction_outputs(model: nn.Module, out: Any) -> Any:
    """The part of a model's output that is predictions (pinned); e.g. not the features
    Ultralytics' Detect hands back beside its predictions for the loss."""
    for cls in type(model).__mro__:
        if cls.__name__ in ("DetectionModel", "BaseModel") and cls.__module__.startswith("ultralytics"):
            return _drop_key(out, "feats")
    return out


def _drop_key(obj: Any, key: str) -> Any:
    if isinstance(obj, dict):
        return {k: _drop_key(v, key) for k, v in obj.items() if k != key}
    if isinstance(obj, (list, tuple)):
        return [_drop_key(v, key) for v in obj]
    return obj


def _scrub_tracked_sizes(model: nn.Module) -> None:
    """Modules may cache shapes seen in forward (Ultralytics' Detect keeps ``self.shape``): make them plain."""
    for m in model.modules():
        for key, value in list(vars(m).items()):
            if isinstance(value, TrackedInt):
                setattr(m, key, int(value))
            elif isinstance(value, tuple) and any(isinstance(v, TrackedInt) for v in value):
                setattr(m, key, torch.Size(int(v) for v in value))

