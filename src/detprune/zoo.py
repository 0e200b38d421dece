"""Models by spec string, and the rebuildable spec a saved pruned model records.

Spec strings (CLI and Python alike):
  ``yolov3-tiny``, ``yolov8n``, ...            built-in detectors (random weights)
  ``ultralytics:yolov8n.yaml``                 an Ultralytics model built by Ultralytics from its yaml
  ``torchvision:fasterrcnn_resnet50_fpn``      a torchvision detector (random weights)
  ``path/to/model.safetensors``                a model saved by :func:`detprune.save`
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

SpecDict = dict[str, Any]  # {"source": "builtin"|"torchvision"|"ultralytics", "args": {...}}


def load_model(spec: str, num_classes: int = 80) -> nn.Module:
    """Build (or load) the model a spec string names, in eval mode."""
    if spec.endswith(".safetensors") or Path(spec).is_file() and not spec.endswith((".yaml", ".yml", ".pt")):
        from detprune.io import load

        return load(spec).eval()
    source, _, name = spec.partition(":") if ":" in spec else ("builtin", "", spec)
    if source == "builtin":
        return build_from_spec({"source": "builtin", "args": {"name": name, "num_classes": num_classes}})
    if source == "torchvision":
        return build_from_spec({"source": "torchvision", "args": {"name": name, "num_classes": num_classes}})
    if source == "ultralytics":
        return _ultralytics(name).eval()
    raise ValueError(f"unknown model source {source!r} in {spec!r}; use a built-in name, 'ultralytics:', "
                     "'torchvision:' or a saved .safetensors file")


def _ultralytics(name: str) -> nn.Module:
    try:
        from ultralytics.nn.tasks import DetectionModel
    except ImportError as exc:  # pragma: no cover - ultralytics is an optional extra
        raise ImportError("ultralytics is not installed: uv sync --extra ultralytics") from exc
    if name.endswith(".pt"):
        if not Path(name).is_file():
            raise FileNotFoundError(f"{name}: no such file (detprune never downloads weights)")
        from detprune.detection.adapters.ultralytics import load_ultralytics  # unpickles allow-listed classes only

        return load_ultralytics(name).float()
    return DetectionModel(name, verbose=False)


def build_from_spec(spec: SpecDict) -> nn.Module:
    source, args = spec.get("source"), dict(spec.get("args", {}))
    if source == "builtin":
        from detprune.detection.models import available_models, build_model

        if args.get("name") not in available_models():
            raise ValueError(f"unknown built-in model {args.get('name')!r}; available: {', '.join(available_models())}")
        return build_model(**args).eval()
    if source == "torchvision":
        from detprune.detection.adapters import build_torchvision

        return build_torchvision(**args).eval()
    if source == "ultralytics":
        from ultralytics.nn.tasks import DetectionModel

        return DetectionModel(args["cfg"], verbose=False).eval()
    if source == "saliency":
        from detprune.saliency.model import build_saliency_model

        return build_saliency_model(**args).eval()
    raise ValueError(f"cannot rebuild a model from spec {spec!r}")


def model_spec(model: nn.Module) -> SpecDict | None:
    """How to rebuild the unpruned architecture of ``model``, or None if we cannot tell."""
    module = type(model).__module__
    if module.startswith("ultralytics") and isinstance(getattr(model, "yaml", None), dict):
        return {"source": "ultralytics", "args": {"cfg": model.yaml}}
    spec = getattr(model, "spec", None)
    if isinstance(spec, dict):
        source = "saliency" if module.startswith("detprune.saliency") else "builtin"
        return {"source": "torchvision" if module.startswith("torchvision") else source, "args": spec}
    return None


def example_inputs_for(model: nn.Module, size: int = 320) -> Any:
    """A forward input of the right form: a list of images for torchvision detectors, else a batch."""
    if type(model).__module__.startswith("torchvision"):
        return [torch.rand(3, size, size)]
    return torch.rand(1, 3, size, size)
