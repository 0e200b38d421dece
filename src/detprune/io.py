"""Save and load pruned models without unpickling: safetensors weights + a JSON record.

The record names how to rebuild the unpruned architecture (see :mod:`detprune.zoo`) and the
shape of every tensor. Loading rebuilds the model, shrinks each parameter to its saved shape,
re-derives the channel attributes exactly as pruning does, then loads the weights strictly.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from detprune.atomic import atomic_path
from detprune.graph.surgery import _attributes, refresh_module, refresh_submodules
from detprune.zoo import build_from_spec, model_spec

FORMAT = "detprune/1"


class CheckpointError(ValueError):
    """The file is not a detprune model, or it does not fit the model it is loaded into."""


def save(model: nn.Module, path: str | Path, spec: dict | None = None) -> Path:
    """Write ``model`` (pruned or not) to ``path`` atomically; returns the path."""
    path = Path(path)
    own = model.state_dict()
    state = {k: v.detach().cpu().contiguous().clone() for k, v in own.items()}
    record = {
        "format": FORMAT,
        "model_class": f"{type(model).__module__}.{type(model).__qualname__}",
        "spec": spec if spec is not None else model_spec(model),
        "shapes": {k: list(v.shape) for k, v in state.items()},
        # module prefix -> state-dict version (what torch.save keeps as state_dict._metadata); modules read it
        # on load (MNASNet refuses a state dict without one, BatchNorm adapts old layouts)
        "versions": {prefix: meta["version"] for prefix, meta in getattr(own, "_metadata", {}).items()
                     if isinstance(meta, dict) and "version" in meta},
    }
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={"detprune": json.dumps(record)})
    return path


def read_record(path: str | Path) -> dict:
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as exc:
        raise CheckpointError(f"{path}: not a safetensors file ({exc})") from exc
    if "detprune" not in meta:
        raise CheckpointError(f"{path}: a safetensors file without a detprune record (not saved by detprune.save)")
    try:
        record = json.loads(meta["detprune"])
    except ValueError as exc:
        raise CheckpointError(f"{path}: unreadable detprune record ({exc})") from exc
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        got = record.get("format") if isinstance(record, dict) else record
        raise CheckpointError(f"{path}: unsupported format {got!r} (expected {FORMAT})")
    missing = [k for k in ("model_class", "spec", "shapes") if k not in record]
    if missing:
        raise CheckpointError(f"{path}: detprune record without {', '.join(missing)}")
    return record


def load(path: str | Path, model: nn.Module | None = None) -> nn.Module:
    """Load a saved model. ``model``: a freshly built *unpruned* instance, needed only when the
    file records no spec (models detprune does not know how to build)."""
    record = read_record(path)
    if model is None:
        if record.get("spec") is None:
            raise CheckpointError(f"{path}: saved without a spec; pass model=<an unpruned {record['model_class']}>")
        model = build_from_spec(record["spec"])
    kind = f"{type(model).__module__}.{type(model).__qualname__}"
    if kind != record["model_class"]:
        raise CheckpointError(f"{path}: checkpoint of a {record['model_class']}, cannot load into a {kind}")
    _check_spec(record.get("spec"), model_spec(model), str(path))
    shrink_to(model, record["shapes"], str(path))
    state = load_file(str(path))
    if isinstance(record.get("versions"), dict):  # files written before versions were recorded have none
        state = OrderedDict(state)
        setattr(state, "_metadata", OrderedDict((k, {"version": v}) for k, v in record["versions"].items()))
    model.load_state_dict(state, strict=True)
    return model


def _check_spec(saved: dict | None, own: dict | None, source: str) -> None:
    """A given model must be built as the saved one: shrink_to alone would take a smaller model's
    checkpoint (yolov8n into yolov8s, 3 classes into 5) for a pruned one."""
    if saved is None or own is None:
        return
    own = json.loads(json.dumps(own))  # tuples -> lists, as saved
    a, b = _architecture(saved.get("args", {})), _architecture(own.get("args", {}))
    diff = [f"{k} {a.get(k)!r} vs {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    if saved.get("source") != own.get("source") or diff:
        detail = "; ".join(diff)[:300] or f"source {saved.get('source')!r} vs {own.get('source')!r}"
        raise CheckpointError(f"{source}: checkpoint is from a different model (checkpoint vs given: {detail})")


_NOT_ARCHITECTURE = ("names", "yaml_file")  # labels and file names: same weights, same shapes


def _architecture(args: dict) -> dict:
    """Spec arguments that decide the layers (an Ultralytics ``cfg`` dict is compared the same way)."""
    out = {k: v for k, v in args.items() if k not in _NOT_ARCHITECTURE}
    if isinstance(out.get("cfg"), dict):
        out["cfg"] = _architecture(out["cfg"])
    return out


def shrink_to(model: nn.Module, shapes: dict[str, list[int]], source: str = "checkpoint") -> None:
    """Give every tensor of ``model`` its saved shape, then re-derive channel attributes."""
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(shapes)), sorted(set(shapes) - set(own))
    if missing or unexpected:
        raise CheckpointError(
            f"{source}: checkpoint is from a different model: {len(missing)} tensors missing "
            f"(e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]})")
    modules = dict(model.named_modules())
    touched: dict[int, tuple[nn.Module, dict]] = {}
    for key, shape in shapes.items():
        current = own[key]
        if list(current.shape) == shape:
            continue
        if len(shape) != current.dim() or any(s > c for s, c in zip(shape, current.shape)):
            raise CheckpointError(f"{source}: checkpoint is from a different model: {key} has shape {shape}, "
                                  f"the model's is {list(current.shape)} (pruning only shrinks)")
        owner, _, name = key.rpartition(".")
        module = modules[owner]
        touched.setdefault(id(module), (module, _attributes(module)))
        empty = torch.empty(shape, dtype=current.dtype, device=current.device)
        if name in module._parameters:
            module._parameters[name] = nn.Parameter(empty, requires_grad=module._parameters[name].requires_grad)
        else:
            module._buffers[name] = empty
    for module, old in touched.values():
        refresh_module(module, old)
    refresh_submodules(model)
