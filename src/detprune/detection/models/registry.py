"""Name -> built-in detector factory, with a rebuildable ``spec`` on every model.

``model.spec`` holds exactly the arguments of :func:`build_model` (width/depth resolved to numbers),
so ``build_model(**model.spec)`` recreates the unpruned architecture; checkpoints of pruned models
store the spec next to the weights and shrink the rebuilt modules to the saved shapes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from .yolov3_tiny import YOLOv3Tiny
from .yolov8 import SCALES, YOLOv8


def _yolov8(scale: str) -> tuple[Callable[..., nn.Module], float, float]:
    depth, width, max_channels = SCALES[scale]

    def make(**kw: Any) -> nn.Module:
        kw.setdefault("max_channels", max_channels)
        return YOLOv8(**kw)

    return make, width, depth


# name -> (constructor, default width, default depth)
_MODELS: dict[str, tuple[Callable[..., nn.Module], float, float]] = {
    "yolov3-tiny": (YOLOv3Tiny, 1.0, 1.0),
    **{f"yolov8{s}": _yolov8(s) for s in SCALES},
}


def available_models() -> list[str]:
    """Names accepted by :func:`build_model`."""
    return sorted(_MODELS)


def build_model(
    name: str, num_classes: int, width: float | None = None, depth: float | None = None, **kw: Any
) -> nn.Module:
    """Build a detector by name (``yolov3-tiny``, ``yolov8n``, ``yolov8s``, ...), randomly initialised.

    ``width``/``depth`` override the named scale's multipliers; extra keywords go to the model
    (e.g. ``names``, ``reg_max``, ``max_channels``, ``anchors``). The model gets ``spec``,
    ``names`` and ``num_classes`` attributes.
    """
    if name not in _MODELS:
        raise KeyError(f"unknown model {name!r}; available: {available_models()}")
    if not isinstance(num_classes, int) or num_classes < 1:  # else a ZeroDivisionError or a torch error in a conv
        raise ValueError(f"num_classes must be an integer >= 1, got {num_classes!r}")
    make, default_width, default_depth = _MODELS[name]
    width = default_width if width is None else float(width)
    depth = default_depth if depth is None else float(depth)
    model = make(num_classes=num_classes, width=width, depth=depth, **kw)
    model.spec = {"name": name, "num_classes": num_classes, "width": width, "depth": depth, **_plain(kw)}
    return model


def _plain(kw: dict[str, Any]) -> dict[str, Any]:
    """Tuples -> lists so the spec is JSON/YAML-serialisable as is."""

    def conv(v: Any) -> Any:
        return [conv(x) for x in v] if isinstance(v, (list, tuple)) else v

    return {k: conv(v) for k, v in kw.items()}
