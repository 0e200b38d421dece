"""Raw head outputs of torchvision detectors before decoding: per level, or per proposal for Faster R-CNN.

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
positions. Its proposals (at most ``rpn.post_nms_top_n`` per image, detached by torchvision) become
one "level" of shape [B, R, nc, 1, 1], softmax turned into logits as for SSD; images with fewer
proposals are padded with background-certain rows. ``HeadOutputs.per_proposal`` marks this layout,
which has no positions for a ground-truth spatial mask (``use_labels``); the ``tau`` mask works.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torchvision.models.detection.faster_rcnn import FasterRCNN
from torchvision.models.detection.fcos import FCOS
from torchvision.models.detection.retinanet import RetinaNet
from torchvision.models.detection.ssd import SSD

__all__ = ["HeadOutputs", "box_outputs", "class_logits", "head_outputs"]


@dataclass
class HeadOutputs:
    """What a detector's head returned for a batch, with the per-level grid needed to unflatten it."""

    outputs: dict[str, Tensor]          # cls_logits, bbox_regression (+ bbox_ctrness for FCOS), flattened
    sizes: list[tuple[int, int]]        # (H, W) of each level
    anchors: list[int]                  # anchors per position of each level
    softmax_background: bool            # SSD, Faster R-CNN: column 0 of cls_logits is a softmax background
    per_proposal: bool = False          # Faster R-CNN: one level of proposals, no spatial positions


def _pad(rows: list[Tensor], fill: Tensor) -> Tensor:
    """Per-image [R_i, k] -> [B, max R_i, k], missing rows set to ``fill`` [k]."""
    n = max(len(r) for r in rows)
    return torch.stack([torch.cat([r, fill.expand(n - len(r), -1)]) for r in rows])


def _proposal_outputs(model: FasterRCNN, batch: Any, features: dict[str, Tensor]) -> HeadOutputs:
    proposals, _ = model.rpn(batch, features)
    heads = model.roi_heads
    pooled = heads.box_head(heads.box_roi_pool(features, proposals, batch.image_sizes))
    logits, deltas = heads.box_predictor(pooled)
    counts = [len(p) for p in proposals]
    k = logits.shape[1]
    background = torch.zeros(k, dtype=logits.dtype, device=logits.device)
    background[0] = 50.0  # padding rows: background-certain, so no target class passes tau there
    cls = _pad(list(logits.split(counts)), background)
    deltas = deltas.view(len(deltas), k, 4)[:, 1:].flatten(1)  # foreground classes' box deltas
    box = _pad(list(deltas.split(counts)), deltas.new_zeros(deltas.shape[1]))
    return HeadOutputs({"cls_logits": cls, "bbox_regression": box}, [(1, 1)], [cls.shape[1]], True, True)


def head_outputs(model: nn.Module, images: Sequence[Tensor]) -> HeadOutputs:
    """Run ``model``'s transform, backbone and head on ``images`` (list of [3, H, W]) with gradients."""
    if not isinstance(model, (RetinaNet, FCOS, SSD, FasterRCNN)):
        raise TypeError(f"no known raw-output layout for {type(model).__name__}: pass scores_fn= and forward_fn= "
                        "to attribution, or use another criterion")
    batch, _ = model.transform(list(images))
    features = model.backbone(batch.tensors)
    if isinstance(features, Tensor):
        features = OrderedDict([("0", features)])
    if isinstance(model, FasterRCNN):
        return _proposal_outputs(model, batch, features)
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
    """Box regression per level [B, A, 4, H, W], with FCOS's centerness as a fifth entry
    (Faster R-CNN: [B, R, 4 * nc, 1, 1], every foreground class's deltas of each proposal)."""
    boxes = raw.outputs["bbox_regression"]
    if "bbox_ctrness" in raw.outputs:
        boxes = torch.cat([boxes, raw.outputs["bbox_ctrness"]], -1)
    return _unflatten(boxes, raw)
