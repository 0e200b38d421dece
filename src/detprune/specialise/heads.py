"""Slice a detector's class outputs down to a subset of its classes.

This is the one place detprune removes *output* channels: the prediction layers' class
channels are the format of the output, so they are pinned for ordinary pruning, but a model
specialised to (say) white blood cells only has no use for the other classes' logits. Each
family lays class channels out differently; the kept channels are selected with the layout
and the attributes that encode the class count are updated, so decoding, losses and
:func:`detprune.save` see a model that was built for the subset.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
from torch import nn


def _slice_out(layer: nn.Module, keep: Sequence[int]) -> None:
    """Keep output rows ``keep`` of a Conv2d / Linear (weight and bias)."""
    idx = torch.as_tensor(list(keep), dtype=torch.long, device=layer.weight.device)
    with torch.no_grad():
        layer.weight = nn.Parameter(layer.weight.index_select(0, idx).clone(), layer.weight.requires_grad)
        if layer.bias is not None:
            layer.bias = nn.Parameter(layer.bias.index_select(0, idx).clone(), layer.bias.requires_grad)
    if isinstance(layer, nn.Linear):
        layer.out_features = len(idx)
    else:
        layer.out_channels = len(idx)


def _last_conv(block: nn.Module) -> nn.Conv2d:
    if isinstance(block, nn.Conv2d):
        return block
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise TypeError(f"no Conv2d in prediction block {type(block).__name__}")
    return convs[-1]


def _anchor_major(per_anchor: int, anchors: int, fixed: Sequence[int], classes: Sequence[int]) -> list[int]:
    """Channels a*per_anchor + j for every anchor a and j in ``fixed`` + ``classes`` (shifted)."""
    return [a * per_anchor + j for a in range(anchors) for j in list(fixed) + list(classes)]


def _check_hidden_width(model: nn.Module, first: int, nc_old: int, nc_new: int) -> None:
    """YOLOv8-style heads size their class branch max(first, min(nc, 100)): a smaller nc rebuilds narrower."""
    if max(first, min(nc_old, 100)) != max(first, min(nc_new, 100)):
        warnings.warn(f"{type(model).__name__}: its class branch was sized for {nc_old} classes; a model rebuilt "
                      f"for {nc_new} is narrower, so detprune.save/load cannot restore this specialised model "
                      "(keep it with torch.save, or prune the class branch to the rebuilt width)", stacklevel=3)


def slice_builtin(model: nn.Module, classes: list[int]) -> str:
    from detprune.detection.models import YOLOv3Tiny, YOLOv8

    nc = model.num_classes
    if isinstance(model, YOLOv3Tiny):
        keep = _anchor_major(5 + nc, model.num_anchors, range(5), [5 + c for c in classes])
        for pred in model.prediction_convs():
            _slice_out(pred, keep)
        family = "yolov3-tiny"
    elif isinstance(model, YOLOv8):
        first = model.head.cv3[0][0].conv.in_channels
        _check_hidden_width(model, first, nc, len(classes))
        for branch in model.head.cv3:
            _slice_out(branch[-1], classes)
        family = "yolov8"
    else:
        raise TypeError(f"not a built-in detector: {type(model).__name__}")
    model.num_classes = len(classes)
    model.names = [model.names[c] for c in classes]
    if isinstance(getattr(model, "spec", None), dict):
        model.spec = {**model.spec, "num_classes": len(classes)}
        if "names" in model.spec:
            model.spec["names"] = list(model.names)
    return family


def slice_ultralytics(model: nn.Module, classes: list[int]) -> str:
    head = model.model[-1]
    nc = int(head.nc)
    first = head.cv3[0][0].conv.in_channels if hasattr(head.cv3[0][0], "conv") else head.cv3[0][0][0].conv.in_channels
    _check_hidden_width(model, first, nc, len(classes))
    for attr in ("cv3", "one2one_cv3"):
        branches = getattr(head, attr, None)
        if branches is not None:
            for branch in branches:
                _slice_out(branch[-1], classes)
    head.nc = len(classes)
    head.no = head.nc + head.reg_max * 4
    names = getattr(model, "names", None)
    if isinstance(names, dict):
        model.names = {i: names[c] for i, c in enumerate(classes)}
    elif isinstance(names, (list, tuple)):
        model.names = [names[c] for c in classes]
    if isinstance(getattr(model, "yaml", None), dict):
        model.yaml["nc"] = len(classes)
    if hasattr(model, "nc"):
        model.nc = len(classes)
    return "ultralytics"


def slice_torchvision(model: nn.Module, classes: list[int]) -> str:
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.fcos import FCOS
    from torchvision.models.detection.retinanet import RetinaNet
    from torchvision.models.detection.ssd import SSD

    if isinstance(model, FasterRCNN):
        pred = model.roi_heads.box_predictor
        keep = [0] + [c + 1 for c in classes]  # output 0 is background
        _slice_out(pred.cls_score, keep)
        _slice_out(pred.bbox_pred, [4 * j + d for j in keep for d in range(4)])
        family = "fasterrcnn"
    elif isinstance(model, SSD):
        head = model.head.classification_head
        cols = head.num_columns  # background + foreground
        keep_cols = [0] + [c + 1 for c in classes]
        for block in head.module_list:
            conv = _last_conv(block)
            _slice_out(conv, _anchor_major(cols, conv.out_channels // cols, [], keep_cols))
        head.num_columns = len(keep_cols)
        family = "ssd"
    elif isinstance(model, (RetinaNet, FCOS)):
        head = model.head.classification_head
        k = head.num_classes
        conv = head.cls_logits
        _slice_out(conv, _anchor_major(k, conv.out_channels // k, [], classes))
        head.num_classes = len(classes)
        family = "retinanet" if isinstance(model, RetinaNet) else "fcos"
    else:
        raise TypeError(f"unsupported torchvision detector {type(model).__name__}")
    if isinstance(getattr(model, "spec", None), dict):
        model.spec = {**model.spec, "num_classes": len(classes)}
    return family


def slice_classes(model: nn.Module, classes: list[int]) -> str:
    """Slice the class outputs of ``model`` to ``classes`` (old indices, in the new order); returns the family."""
    module = type(model).__module__
    if module.startswith("torchvision"):
        return slice_torchvision(model, classes)
    if module.startswith("ultralytics"):
        return slice_ultralytics(model, classes)
    if module.startswith("detprune"):
        return slice_builtin(model, classes)
    raise TypeError(f"cannot specialise a {type(model).__name__}: supported are the built-in YOLOs, "
                    "Ultralytics detection models and torchvision Faster R-CNN / RetinaNet / FCOS / SSD")
