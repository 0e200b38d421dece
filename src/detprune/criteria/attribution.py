"""Attribution pruning: channels ranked by their contribution to the detector's class scores.

Shi, Li, Yamaguchi, "An attribution-based pruning method for real-time mango detection with YOLO
network", Computers and Electronics in Agriculture, 2020. Per calibration image a target

    T = sum over levels, anchors, classes c, positions (h, w) of  S[c, h, w] * Mc[c] * Ms[c, h, w]

is built from the raw class outputs ``S`` (see :mod:`detprune.criteria.score_maps`), a channel
mask ``Mc`` (target classes ``classes``; all if None) and a spatial mask ``Ms``: elements whose
class probability is >= ``tau`` (default 0.02), or, with ``use_labels=True``, the cells whose
centre lies inside a ground-truth box of that class (plus the cell holding each box centre);
``detected_only=True`` keeps of those only the cells whose probability is also >= ``tau``, the
positions where the model predicts the labelled objects (a small object's box also covers cells of the
coarse levels, where the model never predicts it: on BCCD Platelets a third of the labelled cells).
For every producer output A (gradient x activation attribution):

    score_k = sum over images of  max over (h, w) of (A * dT/dA)[k]      (reduction="max", paper)
    score_k = sum over images of  mean over (h, w) of |A * dT/dA|[k]     (reduction="mean_abs")

``with_boxes=True`` also adds to T the box outputs (see ``boxes_fn`` in :mod:`detprune.criteria.score_maps`) at the
positions where any target class passes the spatial mask, as the authors' code does (it sums the raw box, objectness
and class outputs of the detected cells): channels that place the target's boxes then count too, and YOLOv8's box
branch, which never reaches a class score, is scored by attribution instead of the fallback.

``mask_from``: a model whose predictions give the spatial mask (and ``detected_only``'s filter) instead of
the scored model's own: layer-by-layer pruning (:mod:`detprune.schedule.sequential`) passes the unpruned
model, because a model cut half-way predicts nothing above ``tau`` and the mask would go empty (on yolov8s
cut to 20 % of its MACs, from the 25th of 43 groups on), leaving those groups to the l1 fallback. The plain
label mask does not read predictions and ignores it.

``weight_exponent=a > 0`` multiplies each filter's score by (its L1 norm / the layer's mean L1 norm)^a,
as WRG joins its factors: attribution says which channels the target classes use now, the weights
how much a channel carries into fine-tuning (after long fine-tuning l1 beats plain attribution on our
specialisation benchmark); channels with zero attribution stay at zero, so the class slicing holds.

The model runs in eval mode (BN running statistics) with grad enabled so the raw head outputs
carry gradients. ``space``: "logit" when scores_fn returns logits (the defaults; thresholded
through a sigmoid and T sums logits) or "prob" when it returns probabilities.
Channels feeding only non-target classes receive dT/dA = 0, hence score 0.
"""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from detprune.criteria.activation import ActivationCriterion
from detprune.criteria.base import register_criterion
from detprune.criteria.collect import LossFn, split_batch
from detprune.criteria.score_maps import ScoresFn, default_boxes_fn, default_scores_fn
from detprune.criteria.magnitude import slot_norms, unit_mean
from detprune.graph.groups import Group, Member


def box_mask(level: Tensor, targets: Sequence[dict], input_hw: tuple[int, int], classes: Tensor) -> Tensor:
    """[B, A, nc, H, W] bool: cells (any anchor) inside a ground-truth box of a target class, per class."""
    B, A, nc, H, W = level.shape
    sy, sx = input_hw[0] / H, input_hw[1] / W
    cy = (torch.arange(H, device=level.device) + 0.5) * sy
    cx = (torch.arange(W, device=level.device) + 0.5) * sx
    mask = torch.zeros(B, nc, H, W, dtype=torch.bool, device=level.device)
    for b, t in enumerate(targets):
        for box, label in zip(t["boxes"].tolist(), t["labels"].tolist()):
            if not classes[label]:
                continue
            x1, y1, x2, y2 = box
            inside = ((cy >= y1) & (cy <= y2))[:, None] & ((cx >= x1) & (cx <= x2))[None, :]
            inside[min(int((y1 + y2) / 2 / sy), H - 1), min(int((x1 + x2) / 2 / sx), W - 1)] = True
            mask[b, label] |= inside
    return mask.unsqueeze(1).expand(B, A, nc, H, W)


@register_criterion("attribution")
class Attribution(ActivationCriterion):
    needs_grad = True
    reference_option = "mask_from"  # layer-by-layer pruning hands the unpruned model over under this name

    def __init__(self, classes: Sequence[int] | None = None, tau: float = 0.02, use_labels: bool = False,
                 reduction: str = "max", scores_fn: ScoresFn | None = None, space: str = "logit",
                 detected_only: bool = False, weight_exponent: float = 0.0, mask_from: nn.Module | None = None,
                 with_boxes: bool = False, boxes_fn: ScoresFn | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if weight_exponent < 0:
            raise ValueError(f"weight_exponent must be >= 0, got {weight_exponent}")
        if reduction not in ("max", "mean_abs"):
            raise ValueError(f"reduction must be 'max' or 'mean_abs', got {reduction!r}")
        if space not in ("logit", "prob"):
            raise ValueError(f"space must be 'logit' or 'prob', got {space!r}")
        if detected_only and not use_labels:
            raise ValueError("detected_only=True restricts the label mask: it needs use_labels=True")
        self.classes, self.tau, self.use_labels, self.detected_only = classes, tau, use_labels, detected_only
        self.reduction, self.scores_fn, self.space = reduction, scores_fn, space
        self.weight_exponent, self.mask_from = weight_exponent, mask_from
        self.with_boxes, self.boxes_fn = with_boxes, boxes_fn
        self.masked = 0  # elements that passed the spatial mask in the last prepare()

    def prepare(self, model: nn.Module, groups: list[Group], data: Any = None, **kwargs: Any) -> None:
        self.masked = 0
        if self.mask_from is not None:
            self.mask_from.eval()
        super().prepare(model, groups, data=data, **kwargs)
        if self.masked == 0:
            mask = "ground-truth boxes" if self.use_labels else f"probability >= tau {self.tau}"
            if self.detected_only:
                mask += f" with probability >= tau {self.tau}"
            warnings.warn(f"attribution: no class score passed the spatial mask ({mask}) on the calibration data, "
                          f"so every score is 0 and the {self.fallback.name if self.fallback else 'zero'} fallback "
                          "decides; check tau, the labels and the target classes", stacklevel=2)

    def statistic(self, maps: Tensor, grads: Tensor | None) -> Tensor:
        prod = (maps * grads).flatten(2)
        per_image = prod.amax(-1) if self.reduction == "max" else prod.abs().mean(-1)
        return per_image.sum(0)

    def finalize(self, member: Member, stat: np.ndarray) -> np.ndarray:
        if self.weight_exponent == 0:
            return stat
        return stat * unit_mean(slot_norms(member, 1)) ** self.weight_exponent

    def target(self, raw: Any, scores_fn: ScoresFn, targets: Any, input_hw: tuple[int, int],
               mask_raw: Any = None, boxes_fn: ScoresFn | None = None) -> Tensor:
        """T for a batch: the masked sum of class scores over every level (the mask from ``mask_raw`` if given),
        plus, with ``boxes_fn``, the box outputs at the positions where a target class passes the mask."""
        total = None
        levels = scores_fn(raw)
        boxes = boxes_fn(raw) if boxes_fn is not None else [None] * len(levels)
        if len(boxes) != len(levels) or any(b is not None and (b.shape[:2] != v.shape[:2] or b.shape[3:] != v.shape[3:])
                                            for b, v in zip(boxes, levels)):
            raise ValueError(f"box outputs {[tuple(b.shape) for b in boxes]} do not line up with the class scores "
                             f"{[tuple(v.shape) for v in levels]}: boxes_fn must give [B, A, k, H, W] per level")
        mask_levels = levels if mask_raw is None else scores_fn(mask_raw)
        if len(mask_levels) != len(levels) or any(m.shape != v.shape for m, v in zip(mask_levels, levels)):
            raise ValueError(f"mask_from's class scores {[tuple(m.shape) for m in mask_levels]} do not match the "
                             f"pruned model's {[tuple(v.shape) for v in levels]}: it must be the same detector")
        for level, seen, box in zip(levels, mask_levels, boxes):
            nc = level.shape[2]
            keep = torch.ones(nc, dtype=torch.bool, device=level.device)
            if self.classes is not None:
                keep = torch.zeros_like(keep)
                keep[list(self.classes)] = True
            prob = seen.detach().sigmoid() if self.space == "logit" else seen.detach()  # cheap beside the backward
            if self.use_labels:
                if targets is None:
                    raise ValueError("use_labels=True needs (images, targets) batches")
                mask = box_mask(level, targets, input_hw, keep)
                if self.detected_only:
                    mask = mask & (prob >= self.tau)
            else:
                mask = (prob >= self.tau) & keep.view(1, 1, nc, 1, 1)
            self.masked += int(mask.sum())
            t = (level * mask).sum()
            if box is not None:
                t = t + (box * mask.any(2, keepdim=True)).sum()
            total = t if total is None else total + t
        if total is None:
            raise ValueError("scores_fn returned no levels")
        return total

    def resolve(self, model: nn.Module, **overrides: Any) -> dict[str, Any]:
        adapter = overrides.get("adapter") or self.options["adapter"]
        forward_fn = overrides.get("forward_fn") or self.options["forward_fn"]
        scores_fn = overrides.get("scores_fn") or self.scores_fn or default_scores_fn(model, adapter)
        opts = super().resolve(model, **{**overrides, "loss_fn": None})
        boxes_fn = None
        if self.with_boxes:
            boxes_fn = overrides.get("boxes_fn") or self.boxes_fn or default_boxes_fn(model, adapter)
        opts["loss_fn"] = self._loss(adapter, forward_fn, scores_fn, boxes_fn)
        return opts

    def _loss(self, adapter: Any, forward_fn: Any, scores_fn: ScoresFn, boxes_fn: ScoresFn | None) -> LossFn:
        def loss(model: nn.Module, batch: Any) -> Tensor:
            images, targets = split_batch(batch)
            x = adapter.example_inputs(images) if adapter is not None else images
            raw_outputs = getattr(adapter, "raw_outputs", None)  # torchvision: head outputs before decoding
            run = forward_fn or ((lambda m, _: raw_outputs(m, x)) if raw_outputs else (lambda m, _: m(x)))
            raw, mask_raw = run(model, batch), None
            if self.use_labels and getattr(raw, "per_proposal", False):
                raise ValueError(f"use_labels=True needs class scores per position; {type(model).__name__} scores "
                                 "region proposals: use the tau mask (use_labels=False)")
            if self.mask_from is not None:
                with torch.no_grad():
                    mask_raw = run(self.mask_from, batch)
            ref = x if isinstance(x, Tensor) else images
            return self.target(raw, scores_fn, targets, tuple(ref.shape[-2:]), mask_raw, boxes_fn)

        return loss
