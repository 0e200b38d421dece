"""Atomic, pickle-free training checkpoints.

Checkpoints hold state dicts, never ``nn.Module`` objects: pruned models have non-default
layer shapes, so the caller rebuilds the architecture (``detprune.save``/``detprune.load``
persist pruned architectures) and loads the weights here. Only tensors and primitive
containers are written, so ``torch.load(weights_only=True)`` can read them without
executing arbitrary code.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from detprune.atomic import atomic_path

_PRIMITIVES = (int, float, str, bool, type(None))


def check_safe(obj: Any, where: str = "checkpoint") -> None:
    """Raise ``TypeError`` if ``obj`` contains anything but tensors and primitive containers.

    Failing at save time beats discovering an unloadable checkpoint after a crash.
    """
    if isinstance(obj, (Tensor, *_PRIMITIVES)):
        return
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, (*_PRIMITIVES,)):
                raise TypeError(f"{where}: key {k!r} of type {type(k).__name__} is not weights_only-safe")
            check_safe(v, f"{where}[{k!r}]")
        return
    if isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            check_safe(v, f"{where}[{i}]")
        return
    raise TypeError(f"{where}: {type(obj).__name__} is not weights_only-safe (store tensors/primitives only)")


def atomic_save(obj: dict[str, Any], path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file in the same directory, fsync, then ``os.replace``.

    A crash or kill mid-write leaves the previous file at ``path`` intact and loadable.
    """
    path = Path(path)
    check_safe(obj)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(obj, f)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by ``atomic_save`` with ``weights_only=True``."""
    return torch.load(Path(path), map_location=map_location, weights_only=True)


def load_weights(model: nn.Module, path: str | os.PathLike, ema: bool = True, strict: bool = True) -> nn.Module:
    """Load a training checkpoint's weights into an already built ``model``.

    ``ema=True`` prefers the EMA weights (those that were validated) when the checkpoint has them.
    """
    ckpt = load_checkpoint(path)
    state = ckpt["ema"]["module"] if ema and ckpt.get("ema") else ckpt["model"]
    model.load_state_dict(state, strict=strict)
    return model
