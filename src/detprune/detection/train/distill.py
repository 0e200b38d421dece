"""Knowledge distillation from a frozen teacher on raw forward outputs.

A pruned student keeps its teacher's output heads, so for YOLO-style models (whose train-mode
``forward`` returns a list of raw prediction maps) teacher and student outputs have identical
shapes and can be matched element-wise. This recovers accuracy lost to pruning faster than
ground truth alone. The loss is generic over tensors / (nested) lists of tensors; anything
else (e.g. torchvision detectors, whose train-mode forward returns loss dicts) is rejected.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

_KINDS = ("mse", "kl", "bce")
_FROZEN_IN_TEACHER = (nn.modules.batchnorm._BatchNorm, nn.modules.dropout._DropoutNd)


def _as_module(obj: Any) -> nn.Module:
    """Accept a module or anything with a ``.model`` module (a ``DetectorAdapter``)."""
    if isinstance(obj, nn.Module):
        return obj
    model = getattr(obj, "model", None)
    if isinstance(model, nn.Module):
        return model
    raise TypeError(f"expected an nn.Module or an adapter with a .model, got {type(obj).__name__}")


def _flatten(out: Any, path: str = "output") -> list[tuple[str, Tensor]]:
    """Leaves of a tensor / nested list-or-tuple structure, with their paths for error messages."""
    if isinstance(out, Tensor):
        return [(path, out)]
    if isinstance(out, (list, tuple)):
        leaves: list[tuple[str, Tensor]] = []
        for i, o in enumerate(out):
            leaves += _flatten(o, f"{path}[{i}]")
        return leaves
    raise TypeError(
        f"distillation needs forward outputs made of tensors or lists/tuples of tensors; {path} is a "
        f"{type(out).__name__} (torchvision detectors return loss dicts in train mode and are not supported)"
    )


class DistillLoss:
    """``weight * mean over output maps of D(student_map, teacher_map)``.

    ``kind``: ``"mse"`` on all channels; ``"kl"`` (softmax over ``dim`` at temperature ``T``,
    scaled by T^2) or ``"bce"`` (sigmoid teacher probabilities as soft targets, suited to YOLO's
    per-class sigmoids) on the class channels ``cls_channels`` (a slice of ``dim``; all channels
    if None) plus MSE on the remaining (box) channels.

    Used by ``fit`` through a forward hook on ``student``: the student output produced inside
    ``adapter.loss`` is captured (no second forward), and the teacher is run on the same inputs,
    without gradients, in the student's train/eval mode but with BatchNorm and dropout frozen so
    its statistics never drift.
    """

    def __init__(
        self,
        teacher: nn.Module | Any,
        student: nn.Module | Any,
        weight: float = 1.0,
        kind: str = "mse",
        temperature: float = 1.0,
        cls_channels: slice | None = None,
        dim: int = 1,
    ) -> None:
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
        self.teacher = _as_module(teacher).requires_grad_(False)
        self.student = _as_module(student)
        self.weight = float(weight)
        self.kind = kind
        self.temperature = float(temperature)
        self.cls_channels = cls_channels
        self.dim = dim
        self._captured: tuple[tuple, dict, Any] | None = None
        self._handle: RemovableHandle | None = None

    # -- pure loss --------------------------------------------------------------------------
    def __call__(self, student_out: Any, teacher_out: Any) -> Tensor:
        """Weighted distillation loss between two outputs of identical structure and shapes."""
        s_leaves, t_leaves = _flatten(student_out), _flatten(teacher_out)
        if len(s_leaves) != len(t_leaves):
            raise ValueError(f"student returns {len(s_leaves)} output maps but teacher returns {len(t_leaves)}")
        terms = []
        for (path, s), (_, t) in zip(s_leaves, t_leaves):
            if s.shape != t.shape:
                raise ValueError(
                    f"distillation needs identical shapes: student {path} is {tuple(s.shape)} "
                    f"but teacher's is {tuple(t.shape)}"
                )
            terms.append(self._map_loss(s.float(), t.detach().float()))
        return self.weight * torch.stack(terms).mean()

    def _map_loss(self, s: Tensor, t: Tensor) -> Tensor:
        if self.kind == "mse":
            return F.mse_loss(s, t)
        dim = self.dim % s.ndim
        n = s.shape[dim]
        cls = self.cls_channels or slice(0, n)
        idx = torch.arange(n, device=s.device)
        cls_mask = torch.zeros(n, dtype=torch.bool, device=s.device)
        cls_mask[idx[cls]] = True
        s_cls, t_cls = s.index_select(dim, idx[cls_mask]), t.index_select(dim, idx[cls_mask])
        T = self.temperature
        if self.kind == "kl":
            log_s, log_t = F.log_softmax(s_cls / T, dim), F.log_softmax(t_cls / T, dim)
            cls_loss = F.kl_div(log_s, log_t, reduction="none", log_target=True).sum(dim).mean() * T * T
        else:
            cls_loss = F.binary_cross_entropy_with_logits(s_cls / T, torch.sigmoid(t_cls / T)) * T * T
        if cls_mask.all():
            return cls_loss
        box = idx[~cls_mask]
        return cls_loss + F.mse_loss(s.index_select(dim, box), t.index_select(dim, box))

    # -- hook-driven use inside fit ---------------------------------------------------------
    def attach(self) -> None:
        """Start capturing the student's forward inputs/outputs."""
        if self._handle is None:
            self._handle = self.student.register_forward_hook(self._hook, with_kwargs=True)

    def detach(self) -> None:
        """Stop capturing (removes the hook)."""
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        self._captured = None

    def reset(self) -> None:
        """Forget the last capture; call before each training step."""
        self._captured = None

    def _hook(self, module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
        if self._captured is None:  # first forward of the step is the one the loss used
            self._captured = (args, kwargs, output)

    def from_capture(self) -> Tensor:
        """Loss between the captured student output and the teacher's output on the same inputs."""
        if self._captured is None:
            raise RuntimeError("no student forward captured: attach() first and make adapter.loss call adapter.model")
        args, kwargs, output = self._captured
        self._captured = None
        return self(output, self.teacher_forward(*args, **kwargs))

    @torch.no_grad()
    def teacher_forward(self, *args: Any, **kwargs: Any) -> Any:
        """Teacher output in the student's mode, with BN/dropout frozen; previous modes restored."""
        modes = [(m, m.training) for m in self.teacher.modules()]
        try:
            self.teacher.train(self.student.training)
            for m in self.teacher.modules():
                if isinstance(m, _FROZEN_IN_TEACHER):
                    m.eval()
            return self.teacher(*args, **kwargs)
        finally:
            for m, mode in modes:
                m.training = mode
