"""Raw per-level head outputs of torchvision's one-stage detectors (RetinaNet, FCOS, SSD).

Attribution pruning needs the class scores *before* decoding and NMS, per level and position.
torchvision's ``forward`` only returns post-processed detections in eval mode, so
:func:`head_outputs` runs the same stages itself (transform -> backbone -> head) and keeps what
the head returns: ``cls_logits`` [B, sum_l H_l W_l A_l, K], the box regression (and FCOS's
centerness) in the same flattened (H, W, A) order. :func:`class_logits` and :func:`box_outputs`
undo that flattening to detprune's score-map layout, per level [B, A, k, H, W].

SSD scores a softmax whose column 0 is background. Its foreground "logits" are returned as
``log(p / (1 - p))`` of the softmax probabilities, so that ``sigmoid`` of them is the model's own
class probability: the attribution criterion's ``tau`` threshold then means what it says.

Faster R-CNN is two-stage: its class scores belong to region proposals, not to feature-map
positions, so it has no such layout and is rejected with a clear error.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torchvision.models.detection.fcos import FCOS
from torchvision.models.detection.retinanet import RetinaNet
from torchvision.models.detection.ssd import SSD

__all__ = ["HeadOutputs", "box_outputs", "class_logits", "head_outputs"]


@dataclass
class HeadOutputs:
    """What a one-stage head returned for a batch, with the per-level grid needed to unflatten it."""

    outputs: dict[str, Tensor]          # cls_logits, bbox_regression (+ bbox_ctrness for FCOS), flattened
    sizes: list[tuple[int, int]]        # (H, W) of each level
    anchors: list[int]                  # anchors per position of each level
    softmax_background: bool            # SSD: column 0 of cls_logits is a softmax background


def _check(model: nn.Module) -> None:
    if not isinstance(model, (RetinaNet, FCOS, SSD)):
        raise TypeError(f"{type(model).__name__} has no per-position class scores (only RetinaNet, FCOS and SSD "
                        "do; Faster R-CNN scores region proposals): pass scores_fn= and forward_fn= to attribution, "
                        "or use another criterion")


def head_outputs(model: nn.Module, images: Sequence[Tensor]) -> HeadOutputs:
    """Run ``model``'s transform, backbone and head on ``images`` (list of [3, H, W]) with gradients."""
    _check(model)
    batch, _ = model.transform(list(images))
    features = model.backbone(batch.tensors)
    if isinstance(features, Tensor):
        features = OrderedDict([("0", features)])
    feats = list(features.values())
    outputs = model.head(feats)
    anchors = [int(a) for a in model.anchor_generator.num_anchors_per_location()]
    if len(anchors) != len(feats):
        raise ValueError(f"{type(model).__name__}: {len(anchors)} anchor levels but {len(feats)} feature levels")
    return HeadOutputs(outputs, [tuple(f.shape[-2:]) for f in feats], anchors, isinstance(model, SSD))


def _unflatten(flat: Tensor, raw: HeadOutputs) -> list[Tensor]:
    """[B, sum H W A, k] in torchvision's (H, W, A) order -> per level [B, A, k, H, W]."""
    total = sum(h * w * a for (h, w), a in zip(raw.sizes, raw.anchors))
    if flat.shape[1] != total:
        raise ValueError(f"head output has {flat.shape[1]} positions, the levels {raw.sizes} x anchors "
                         f"{raw.anchors} give {total}")
    out, start = [], 0
    for (h, w), a in zip(raw.sizes, raw.anchors):
        level = flat[:, start:start + h * w * a]
        out.append(level.reshape(flat.shape[0], h, w, a, flat.shape[2]).permute(0, 3, 4, 1, 2))
        start += h * w * a
    return out


def class_logits(raw: HeadOutputs) -> list[Tensor]:
    """Foreground class logits per level [B, A, nc, H, W] (SSD: logit of the softmax probability)."""
    logits = raw.outputs["cls_logits"]
    if raw.softmax_background:
        p = logits.softmax(-1)[..., 1:].clamp(1e-7, 1 - 1e-7)
        logits = torch.log(p) - torch.log1p(-p)
    return _unflatten(logits, raw)


def box_outputs(raw: HeadOutputs) -> list[Tensor]:
    """Box regression per level [B, A, 4, H, W], with FCOS's centerness as a fifth entry."""
    boxes = raw.outputs["bbox_regression"]
    if "bbox_ctrness" in raw.outputs:
        boxes = torch.cat([boxes, raw.outputs["bbox_ctrness"]], -1)
    return _unflatten(boxes, raw)
