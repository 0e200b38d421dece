"""The example-input convention shared by FLOP counting, ONNX export and latency measurement.

One object describes how a model is called, so detectors with unusual signatures need no
special cases: a Tensor -> ``model(t)``; a list -> ``model(list)`` (torchvision detectors);
a dict -> ``model(**d)``; a tuple -> ``model(*t)``.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

ExampleInputs = Tensor | list[Any] | tuple[Any, ...] | dict[str, Any]


def split_inputs(example_inputs: ExampleInputs) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """``(args, kwargs)`` for ``model(*args, **kwargs)``."""
    if isinstance(example_inputs, Tensor):
        return (example_inputs,), {}
    if isinstance(example_inputs, list):
        return (example_inputs,), {}
    if isinstance(example_inputs, dict):
        return (), dict(example_inputs)
    if isinstance(example_inputs, tuple):
        return example_inputs, {}
    raise TypeError(f"example_inputs must be a Tensor, list, tuple or dict, got {type(example_inputs).__name__}")


def call_model(model: nn.Module, example_inputs: ExampleInputs) -> Any:
    args, kwargs = split_inputs(example_inputs)
    return model(*args, **kwargs)


def flatten_tensors(obj: Any) -> list[Tensor]:
    """Tensors of a nested tuple/list/dict in order (dicts by insertion order), as ONNX flattens them."""
    if isinstance(obj, Tensor):
        return [obj]
    if isinstance(obj, dict):
        obj = list(obj.values())
    if isinstance(obj, (list, tuple)):
        return [t for item in obj for t in flatten_tensors(item)]
    return []


def to_device(obj: Any, device: str) -> Any:
    """``obj`` with every tensor (in nested tuples / lists / dicts) moved to ``device``."""
    if isinstance(obj, Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_device(v, device) for v in obj)
    return obj
