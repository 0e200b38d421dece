"""YOLOv8 training loss: TAL assignment + BCE classification + CIoU box loss + distribution focal loss.

Gains (box 7.5, cls 0.5, dfl 1.5) and normalisation (by the sum of soft class targets, total
multiplied by the batch size) follow Ultralytics, so its hyper-parameters carry over.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.ops import complete_box_iou_loss

from ..types import Target
from .assigner import TaskAlignedAssigner
from .box_coder import anchor_points, dfl_expectation, ltrb_to_xyxy, xyxy_to_ltrb
from .targets import pad_targets


def distribution_focal_loss(logits: Tensor, target: Tensor) -> Tensor:
    """DFL (GFL paper): cross-entropy towards the two bins bracketing a continuous target.

    ``logits`` [K, reg_max], ``target`` [K] in [0, reg_max - 1) -> per-sample loss [K].
    """
    left = target.long()
    w_left = left + 1 - target
    return F.cross_entropy(logits, left, reduction="none") * w_left + F.cross_entropy(
        logits, left + 1, reduction="none"
    ) * (1 - w_left)


class YOLOv8Loss:
    """Callable ``loss(raw, targets) -> {"box", "cls", "dfl"}`` for anchor-free DFL heads."""

    def __init__(
        self,
        strides: Sequence[int],
        num_classes: int,
        reg_max: int = 16,
        box_gain: float = 7.5,
        cls_gain: float = 0.5,
        dfl_gain: float = 1.5,
        topk: int = 10,
        alpha: float = 0.5,
        beta: float = 6.0,
    ) -> None:
        self.strides = tuple(strides)
        self.num_classes, self.reg_max = num_classes, reg_max
        self.box_gain, self.cls_gain, self.dfl_gain = box_gain, cls_gain, dfl_gain
        self.assigner = TaskAlignedAssigner(topk=topk, alpha=alpha, beta=beta)

    def __call__(self, raw: list[Tensor], targets: list[Target]) -> dict[str, Tensor]:
        bs, rm = raw[0].shape[0], self.reg_max
        device, dtype = raw[0].device, raw[0].dtype
        flat = torch.cat([r.flatten(2) for r in raw], 2).transpose(1, 2)  # [B, N, 4*reg_max + nc]
        dist, cls_logits = flat.split((4 * rm, self.num_classes), -1)
        points, stride_t = anchor_points([r.shape[2:] for r in raw], self.strides, device, dtype)
        pred_boxes = ltrb_to_xyxy(dfl_expectation(dist, rm), points)  # grid units of each level

        gt_labels, gt_boxes, valid = pad_targets(targets, device)
        assign = self.assigner(
            cls_logits.detach().sigmoid(), pred_boxes.detach() * stride_t, points * stride_t, gt_labels, gt_boxes, valid
        )
        scores_sum = assign.target_scores.sum().clamp(min=1)
        cls = F.binary_cross_entropy_with_logits(cls_logits, assign.target_scores, reduction="none").sum() / scores_sum

        fg = assign.fg_mask
        weight = assign.target_scores.sum(-1)[fg]  # [P]
        target_boxes = assign.target_boxes / stride_t  # same grid units as pred_boxes
        box = (complete_box_iou_loss(pred_boxes[fg], target_boxes[fg], reduction="none") * weight).sum() / scores_sum
        target_ltrb = xyxy_to_ltrb(target_boxes, points, rm - 1)[fg]  # [P, 4]
        dfl = distribution_focal_loss(dist[fg].reshape(-1, rm), target_ltrb.reshape(-1)).view(-1, 4).mean(-1)
        dfl = (dfl * weight).sum() / scores_sum
        return {
            "box": box * self.box_gain * bs,
            "cls": cls * self.cls_gain * bs,
            "dfl": dfl * self.dfl_gain * bs,
        }
