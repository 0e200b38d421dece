"""Streaming activation (and gradient) statistics for data-driven criteria.

Forward hooks sit on the *producers* of every coupling group: the conv/linear modules owning a
member slot with role ``"out"`` and name ``"weight"``. Output channel ``k`` of such a module is
position ``k`` of that slot, hence class ``member.cls[k]`` of the group. Each captured map is
laid out as ``[N, C, *S]`` (images, channels, >= 1 spatial dims) and immediately reduced by the
criterion's ``statistic`` to a ``[..., C]`` tensor summed over the ``N`` images; only these
running sums are kept, never the feature maps, so any number of calibration batches fits.
A module called several times per forward (a head shared across FPN levels) contributes once
per call. Results are per-image means: ``sum / number of maps seen``.

Where the map is taken (``hook``):

* ``"output"`` - the producer's own output (pre-norm, pre-activation). Always available.
* ``"next"``   - the output of the module right after the producer in its parent ``nn.Sequential``
  (when that module keeps channels in place: a norm or an activation; e.g. the BN of conv-BN-act).
* ``"post"``   - the output after the per-channel modules that follow the producer (norms,
  activations, dropout, identity) inside its ``nn.Sequential``; or, when the producer is the
  ``conv`` of a ``Conv(conv, bn, act)`` wrapper (Ultralytics, built-in YOLOs), the wrapper's output.
  This is the post-activation map CHIP wants.

Which module follows a conv is not known generically (the dataflow of ``forward`` is arbitrary),
so ``"next"``/``"post"`` only use these structural cues and fall back to the producer's output
when the candidate is shared between several places (e.g. Ultralytics' class-level ``SiLU``).

Gradient statistics (``needs_grad``): a tensor hook registered on the output before any in-place
op receives ``dL/dA`` of that map; the loss comes from ``loss_fn(model, batch)``. The backward uses
``torch.autograd.grad`` so parameters' ``.grad`` are left untouched. By default the model runs in
eval mode (BN running statistics are used and not updated, dropout off) with grad enabled.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable, Iterable

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from detprune.graph.groups import Group, Member
from detprune.inputs import to_device

# (maps [N, C, *S], grads [N, C, *S] or None) -> [..., C], summed over the N images
Statistic = Callable[[Tensor, Tensor | None], Tensor]
LossFn = Callable[[nn.Module, Any], Tensor]
ForwardFn = Callable[[nn.Module, Any], Any]

HOOKS = ("output", "next", "post")
_PRODUCERS = (nn.modules.conv._ConvNd, nn.Linear)


def is_producer(member: Member) -> bool:
    """A conv/linear weight whose output dim is this slot: its output channels are the slot's positions."""
    s = member.slot
    return s.role == "out" and s.name == "weight" and isinstance(s.module, _PRODUCERS)


def producers(groups: Iterable[Group]) -> dict[str, nn.Module]:
    """Module path -> module of every producer member (deduplicated)."""
    out: dict[str, nn.Module] = {}
    for g in groups:
        for m in g.members:
            if is_producer(m):
                out.setdefault(m.slot.module_path, m.slot.module)
    return out


def _is_tuple_batch(batch: Any) -> bool:
    """``(images, targets, ...)`` rather than a torchvision-style list of CHW image tensors."""
    return (isinstance(batch, (tuple, list)) and len(batch) > 0 and isinstance(batch[0], Tensor)
            and not all(isinstance(b, Tensor) and b.dim() == 3 for b in batch))


def split_batch(batch: Any) -> tuple[Any, Any]:
    """``images`` or ``(images, targets, ...)`` -> (images, targets or None)."""
    if _is_tuple_batch(batch):
        return batch[0], batch[1] if len(batch) > 1 else None
    return batch, None


def replace_images(batch: Any, images: Any) -> Any:
    if _is_tuple_batch(batch):
        return type(batch)([images, *batch[1:]]) if isinstance(batch, list) else (images, *batch[1:])
    return images


def default_forward(model: nn.Module, batch: Any) -> Any:
    images, _ = split_batch(batch)
    return model(images)


def adapter_forward(adapter: Any) -> ForwardFn:
    """Forward through a DetectorAdapter's input convention (e.g. stride padding)."""
    return lambda model, batch: model(adapter.example_inputs(split_batch(batch)[0]))


def adapter_loss(adapter: Any) -> LossFn:
    """``loss_fn`` from a DetectorAdapter: the sum of ``adapter.loss(images, targets)``."""

    def loss(model: nn.Module, batch: Any) -> Tensor:
        images, targets = split_batch(batch)
        if targets is None:
            raise ValueError("adapter.loss needs (images, targets) batches")
        if adapter.model is not model:
            raise ValueError("adapter.model is not the model being pruned: its activations would not be hooked")
        losses = adapter.loss(images, targets)
        return torch.stack(list(losses.values())).sum() if isinstance(losses, dict) else losses

    return loss


def as_ncs(t: Tensor, linear: bool) -> Tensor:
    """A module output as [N, C, *S] (S >= 1 dims): channels on dim 1 for convs, last dim for linear."""
    if linear and t.dim() >= 2:
        t = t.movedim(-1, 1)
    if t.dim() == 1:
        t = t.unsqueeze(0)
    return t.unsqueeze(-1) if t.dim() == 2 else t


def _per_channel(module: nn.Module) -> bool:
    """Modules that keep channel k as channel k (norms, activations, dropout, identity)."""
    if isinstance(module, (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.Identity, nn.modules.dropout._DropoutNd)):
        return True
    return type(module).__module__ == "torch.nn.modules.activation" or "BatchNorm" in type(module).__name__


def hook_points(model: nn.Module, prods: dict[str, nn.Module], hook: str) -> dict[str, nn.Module]:
    """Producer path -> module whose output is hooked for it (see the module docstring)."""
    if hook not in HOOKS:
        raise ValueError(f"hook must be one of {HOOKS}, got {hook!r}")
    if hook == "output":
        return dict(prods)
    modules = dict(model.named_modules())
    uses = Counter(id(m) for _, m in model.named_modules(remove_duplicate=False))
    out: dict[str, nn.Module] = {}
    for path, prod in prods.items():
        parent_path, _, name = path.rpartition(".")
        parent = modules.get(parent_path) if path else None
        target = prod
        if isinstance(parent, nn.Sequential):
            kids = list(parent._modules.values())
            i = next(j for j, k in enumerate(kids) if k is prod)
            if hook == "next" and i + 1 < len(kids) and _per_channel(kids[i + 1]):
                target = kids[i + 1]
            elif hook == "post":
                while i + 1 < len(kids) and _per_channel(kids[i + 1]):
                    i += 1
                target = kids[i]
        elif hook == "post" and parent is not None and name == "conv" and hasattr(parent, "act"):
            kids = [k for k in parent.children() if k is not prod]
            if all(_per_channel(k) for k in kids):  # a Conv(conv, bn, act) wrapper
                target = parent
        out[path] = target if uses[id(target)] == 1 and target not in out.values() else prod
    return out


class ActivationCollector:
    """Accumulates ``statistic`` over calibration batches for every producer of ``groups``."""

    def __init__(self, model: nn.Module, groups: list[Group], statistic: Statistic, *, needs_grad: bool = False,
                 loss_fn: LossFn | None = None, forward_fn: ForwardFn | None = None, hook: str = "output",
                 max_batches: int | None = None, progress: bool = True, train_mode: bool = False,
                 desc: str = "collecting") -> None:
        if needs_grad and loss_fn is None:
            raise ValueError("this criterion needs gradients of a loss: pass loss_fn=callable(model, batch) "
                             "-> Tensor or adapter=<DetectorAdapter>")
        self.model, self.statistic, self.needs_grad = model, statistic, needs_grad
        self.loss_fn, self.forward_fn = loss_fn, forward_fn or default_forward
        self.max_batches, self.progress, self.train_mode, self.desc = max_batches, progress, train_mode, desc
        self.prods = producers(groups)
        self.points = hook_points(model, self.prods, hook)
        self.sums: dict[str, Tensor] = {}
        self.counts: Counter[str] = Counter()

    def _update(self, key: str, maps: Tensor, grads: Tensor | None) -> None:
        with torch.no_grad():
            s = self.statistic(maps, grads).detach().double().cpu()
        self.sums[key] = self.sums[key] + s if key in self.sums else s
        self.counts[key] += maps.shape[0]

    def _hook(self, key: str, channels: int, linear: bool) -> Callable:
        def fn(module: nn.Module, args: Any, out: Any) -> None:
            if not isinstance(out, Tensor):
                return
            maps = as_ncs(out, linear)
            if maps.shape[1] != channels:
                return  # not the expected channel layout (e.g. an unbatched call): skip rather than mis-map
            if not self.needs_grad:
                self._update(key, maps.detach(), None)
            elif out.requires_grad:
                saved = maps.detach().clone()  # a later in-place op (ReLU(inplace)) must not change it
                out.register_hook(lambda g: self._update(key, saved, as_ncs(g, linear)))

        return fn

    def run(self, data: Iterable) -> dict[str, np.ndarray]:
        """Per-image mean statistic per producer path (paths whose maps were never seen are absent)."""
        params = [p for p in self.model.parameters()]
        device = params[0].device if params else torch.device("cpu")
        handles = []
        for path, target in self.points.items():
            prod = self.prods[path]
            channels = prod.out_features if isinstance(prod, nn.Linear) else prod.out_channels
            linear = isinstance(prod, nn.Linear)  # per-channel modules after it keep its layout
            handles.append(target.register_forward_hook(self._hook(path, channels, linear)))
        was_training = self.model.training
        self.model.train(self.train_mode)
        total = len(data) if hasattr(data, "__len__") else None
        if self.max_batches is not None:
            total = min(total, self.max_batches) if total is not None else self.max_batches
        try:
            for i, batch in enumerate(tqdm(data, total=total, desc=self.desc, disable=not self.progress, leave=False)):
                if self.max_batches is not None and i >= self.max_batches:
                    break
                self._step(to_device(batch, device, non_blocking=True), params)
        finally:
            for h in handles:
                h.remove()
            self.model.train(was_training)
        if not self.sums:
            raise RuntimeError("no activation reached the hooks: is the data/loss running this model?")
        return {k: (v / self.counts[k]).numpy() for k, v in self.sums.items()}

    def _step(self, batch: Any, params: list[nn.Parameter]) -> None:
        if not self.needs_grad:
            with torch.no_grad():
                self.forward_fn(self.model, batch)
            return
        images, _ = split_batch(batch)
        if isinstance(images, Tensor) and images.is_floating_point():
            images = images.detach().requires_grad_(True)  # a graph even when every parameter is frozen
            batch = replace_images(batch, images)
        with torch.enable_grad():
            loss = self.loss_fn(self.model, batch)
            if not isinstance(loss, Tensor) or not loss.requires_grad:
                raise RuntimeError("the loss does not depend on the model's outputs through autograd")
            inputs = [p for p in params if p.requires_grad]
            if isinstance(images, Tensor) and images.requires_grad:
                inputs.append(images)
            torch.autograd.grad(loss, inputs, allow_unused=True)  # fires the tensor hooks, leaves .grad alone


def collect(model: nn.Module, groups: list[Group], data: Iterable, statistic: Statistic, **kwargs: Any
            ) -> dict[str, np.ndarray]:
    """Functional form of :class:`ActivationCollector`."""
    return ActivationCollector(model, groups, statistic, **kwargs).run(data)
