"""Models for the pipeline: spec checking and loading, and the adapter factory.

The CLI names models by spec string (see :mod:`detprune.zoo`) plus ``demo-baseline``, the
checkpoint shipped for the demo. Adapters are chosen by where the model comes from:
built-in -> :class:`BuiltinAdapter`, torchvision -> :class:`TorchvisionAdapter`, Ultralytics ->
the Ultralytics adapter module when it provides a full adapter, else an evaluation-only one
(training and fine-tuning of Ultralytics models go through Ultralytics' own trainer).
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import Any

import torch
from torch import nn

DEMO_SPEC = "demo-baseline"


ULTRALYTICS_SUBSET = ("Ultralytics' trainer keeps one class of the data's labels (as class 0) but cannot renumber "
                      "several: fine-tune an Ultralytics model specialised to one class, or use a built-in or "
                      "torchvision detector")


class UnsupportedError(RuntimeError):
    """A combination the pipeline does not support (yet), e.g. training an Ultralytics model without it."""


def model_source(spec: str) -> str:
    """``builtin`` | ``torchvision`` | ``ultralytics`` | ``file`` | ``demo`` for a spec string."""
    if spec == DEMO_SPEC:
        return "demo"
    if spec.endswith(".safetensors"):
        return "file"
    source = spec.partition(":")[0] if ":" in spec else "builtin"
    return source


def check_model_spec(spec: str) -> None:
    """Raise ``ValueError``/``FileNotFoundError`` with a one-line reason if ``spec`` names no model."""
    source = model_source(spec)
    if source == "demo":
        from detprune.pipeline.baseline import BASELINE_PATH, has_baseline

        if not has_baseline():
            raise FileNotFoundError(f"the demo baseline {BASELINE_PATH} is missing from this installation")
    elif source == "file":
        if not Path(spec).is_file():
            raise FileNotFoundError(f"{spec} does not exist")
    elif source == "builtin":
        from detprune.detection.models import available_models

        if spec not in available_models():
            raise ValueError(f"unknown model {spec!r}; built-in models: {', '.join(available_models())}, "
                             "or torchvision:<name>, ultralytics:<cfg.yaml|file.pt>, a .safetensors file")
    elif source == "torchvision":
        from detprune.detection.adapters import TORCHVISION_DETECTORS

        name = spec.partition(":")[2]
        if name not in TORCHVISION_DETECTORS:
            raise ValueError(f"unknown torchvision detector {name!r}; choose from {', '.join(sorted(TORCHVISION_DETECTORS))}")
    elif source == "ultralytics":
        if importlib.util.find_spec("ultralytics") is None:
            raise ValueError("ultralytics is not installed (uv sync --extra ultralytics)")
        name = spec.partition(":")[2]
        if name.endswith(".pt") and not Path(name).is_file():
            raise FileNotFoundError(f"{name} does not exist locally (detprune never downloads weights)")
    else:
        raise ValueError(f"unknown model source {source!r} in {spec!r}; use a built-in name, torchvision:<name>, "
                         "ultralytics:<cfg>, a .safetensors file or demo-baseline")


def load_model(spec: str, num_classes: int | None = None, names: list[str] | None = None) -> nn.Module:
    """Build or load the model ``spec`` names, in eval mode (float32)."""
    check_model_spec(spec)
    source = model_source(spec)
    if source == "demo":
        from detprune.pipeline.baseline import load_baseline

        return load_baseline()
    if source == "file":
        from detprune.io import load

        return load(spec).float().eval()
    nc = num_classes if num_classes is not None else (len(names) if names else 80)
    if source == "builtin":
        from detprune.detection.models import build_model

        extra = {"names": list(names)} if names and len(names) == nc else {}
        return build_model(spec, num_classes=nc, **extra).eval()
    if source == "ultralytics":
        return _ultralytics(spec.partition(":")[2], nc, names)
    from detprune.zoo import load_model as zoo_load

    return zoo_load(spec, num_classes=nc).eval()


def _ultralytics(name: str, nc: int, names: list[str] | None) -> nn.Module:
    from ultralytics.nn.tasks import DetectionModel

    if name.endswith(".pt"):
        from detprune.zoo import load_model as zoo_load

        return zoo_load(f"ultralytics:{name}").float().eval()
    model = DetectionModel(name, nc=nc, verbose=False)
    if names and len(names) == nc:
        model.names = dict(enumerate(names))
    return model.eval()


def model_kind(model: nn.Module) -> str:
    """``builtin`` | ``torchvision`` | ``ultralytics`` for a model instance."""
    module = type(model).__module__
    if module.startswith("ultralytics"):
        return "ultralytics"
    if module.startswith("torchvision"):
        return "torchvision"
    if hasattr(model, "decode") and hasattr(model, "build_loss"):
        return "builtin"
    hint = " (a salient-object model: use --task saliency)" if module.startswith("detprune.saliency") else ""
    raise UnsupportedError(f"{type(model).__name__} is not a detector detprune can drive (built-in, torchvision or "
                           f"Ultralytics){hint}")


def model_names(model: nn.Module) -> list[str] | None:
    names = getattr(model, "names", None)
    if isinstance(names, dict):
        return [str(names[k]) for k in sorted(names)]
    return [str(n) for n in names] if isinstance(names, (list, tuple)) else None


def ultralytics_adapter_module() -> Any | None:
    """The Ultralytics adapter module of detprune, if present and importable (optional extra)."""
    name = "detprune.detection.adapters.ultralytics"
    try:
        if importlib.util.find_spec(name) is None:
            return None
        return importlib.import_module(name)
    except ImportError:
        return None


def make_adapter(model: nn.Module) -> Any:
    """The ``DetectorAdapter`` that drives ``model`` (see the module docstring)."""
    kind = model_kind(model)
    if kind == "builtin":
        from detprune.detection.models import BuiltinAdapter

        return BuiltinAdapter(model)
    if kind == "torchvision":
        from detprune.detection.adapters import TorchvisionAdapter

        return TorchvisionAdapter(model)
    module = ultralytics_adapter_module()
    full = getattr(module, "UltralyticsAdapter", None) if module else None
    if full is not None:
        return full(model)
    from detprune.pipeline.ultralytics_eval import UltralyticsEvalAdapter

    return UltralyticsEvalAdapter(model)


def example_input(model: nn.Module, img_size: int) -> Any:
    """Batch-1 forward input: a list of one image for torchvision detectors, else a tensor (any other model)."""
    if type(model).__module__.startswith("torchvision"):
        return [torch.rand(3, img_size, img_size)]
    return torch.rand(1, 3, img_size, img_size)
