"""The example-input convention shared by tracing, FLOP counting, export, latency and calibration.

One object describes how a model is called, so detectors with unusual signatures need no
special cases: a Tensor -> ``model(t)``; a list -> ``model(list)`` (torchvision detectors);
a dict -> ``model(**d)``; a tuple -> ``model(*t)``. Kept apart from graph / deploy / criteria
(and importing nothing of detprune) so that all of them read inputs the same way.
"""

from __future__ import annotations

from typing import Any, TypeVar

import torch
from torch import Tensor, nn

__all__ = ["ExampleInputs", "call_model", "flatten_tensors", "leaves", "split_inputs", "to_device"]

ExampleInputs = Tensor | list[Any] | tuple[Any, ...] | dict[str, Any]
T = TypeVar("T")


def split_inputs(example_inputs: Any, *, strict: bool = True) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """``(args, kwargs)`` for ``model(*args, **kwargs)``.

    Any other object is a ``TypeError`` when ``strict``, else passed as the one argument.
    """
    if isinstance(example_inputs, dict):
        return (), dict(example_inputs)
    if isinstance(example_inputs, tuple):
        return example_inputs, {}
    if strict and not isinstance(example_inputs, (Tensor, list)):
        raise TypeError(f"example_inputs must be a Tensor, list, tuple or dict, got {type(example_inputs).__name__}")
    return (example_inputs,), {}


def call_model(model: nn.Module, example_inputs: Any, *, strict: bool = False) -> Any:
    """``model`` called on ``example_inputs`` by the convention; see :func:`split_inputs` for ``strict``."""
    args, kwargs = split_inputs(example_inputs, strict=strict)
    return model(*args, **kwargs)


def leaves(obj: Any, kind: type[T]) -> list[T]:
    """The ``kind`` objects of a nested tuple/list/dict in order (dicts by insertion order)."""
    if isinstance(obj, kind):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [t for o in obj for t in leaves(o, kind)]
    if isinstance(obj, dict):
        return [t for o in obj.values() for t in leaves(o, kind)]
    return []


def flatten_tensors(obj: Any) -> list[Tensor]:
    """Tensors of a nested tuple/list/dict in order, as ONNX flattens them."""
    return leaves(obj, Tensor)


def to_device(obj: Any, device: str | torch.device, non_blocking: bool = False) -> Any:
    """``obj`` with every tensor (in nested tuples / lists / dicts) moved to ``device``.

    Lists and tuples keep their type (named tuples included); dicts become plain dicts.
    """
    if isinstance(obj, Tensor):
        return obj.to(device, non_blocking=non_blocking)
    if isinstance(obj, dict):
        return {k: to_device(v, device, non_blocking) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        items = [to_device(v, device, non_blocking) for v in obj]
        if type(obj) in (list, tuple):
            return type(obj)(items)
        return type(obj)(*items) if hasattr(obj, "_fields") else type(obj)(items)
    return obj
