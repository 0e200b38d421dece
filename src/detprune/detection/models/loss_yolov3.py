"""YOLOv3 training loss: anchor matching by wh-IoU, CIoU box loss, BCE objectness and class losses.

Matching (darknet): each ground truth is assigned to the grid cell holding its centre, on the anchor
(over all levels) whose width/height IoU with it is best, plus every other anchor whose wh-IoU
exceeds ``multi_anchor_iou`` (darknet's ``iou_thresh``). Objectness of non-matched predictions whose
decoded box already overlaps a ground truth by more than ``ignore_thresh`` is not penalised.

Normalisation follows YOLOv5: box and class terms are means over positives, objectness a mean over
the (non-ignored) cells of each level; the total is multiplied by the batch size like Ultralytics,
so that its SGD hyper-parameters (lr 0.01, nominal batch 64) carry over.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.ops import box_iou, complete_box_iou_loss

from ..types import Target
from .box_coder import cell_grid, yolo_boxes
from .targets import flatten_targets


def wh_iou(wh1: Tensor, wh2: Tensor) -> Tensor:
    """IoU of boxes sharing a centre, from their sizes only: [M, 2] x [K, 2] -> [M, K]."""
    inter = torch.min(wh1[:, None], wh2[None]).prod(-1)
    return inter / (wh1.prod(-1)[:, None] + wh2.prod(-1)[None] - inter + 1e-9)


class YOLOv3Loss:
    """Callable ``loss(raw, targets) -> {"box", "obj", "cls"}`` for darknet-style heads."""

    def __init__(
        self,
        anchors: Tensor,
        strides: Sequence[int],
        num_classes: int,
        box_gain: float = 0.05,
        obj_gain: float = 1.0,
        cls_gain: float = 0.5,
        multi_anchor_iou: float = 0.5,
        ignore_thresh: float = 0.7,
    ) -> None:
        self.anchors = anchors.detach().clone()  # [L, A, 2] pixels
        self.strides = tuple(strides)
        self.num_classes = num_classes
        self.box_gain, self.obj_gain, self.cls_gain = box_gain, obj_gain, cls_gain
        self.multi_anchor_iou = multi_anchor_iou
        self.ignore_thresh = ignore_thresh

    def match(self, gt_boxes: Tensor, anchors: Tensor) -> Tensor:
        """Boolean [M, L*A]: which anchors (flattened level-major) each ground truth trains."""
        ious = wh_iou(gt_boxes[:, 2:] - gt_boxes[:, :2], anchors.view(-1, 2))
        pos = ious > self.multi_anchor_iou
        if len(gt_boxes):
            pos[torch.arange(len(gt_boxes), device=pos.device), ious.argmax(1)] = True
        return pos

    def __call__(self, raw: list[Tensor], targets: list[Target]) -> dict[str, Tensor]:
        device, bs, nc = raw[0].device, raw[0].shape[0], self.num_classes
        img_idx, labels, gt = flatten_targets(targets, device)
        anchors = self.anchors.to(device)
        na = anchors.shape[1]
        pos = self.match(gt, anchors)

        zero = sum(r.sum() for r in raw) * 0.0  # keeps every term in the graph when it is empty
        box_sum, cls_sum, obj_loss, n_pos = zero, zero, zero, 0
        for level, (r, stride) in enumerate(zip(raw, self.strides, strict=True)):
            _, _, h, w = r.shape
            p = r.unflatten(1, (na, 5 + nc)).permute(0, 1, 3, 4, 2)  # [B, A, H, W, 5+nc]
            anc = anchors[level]
            obj_target = torch.zeros(p.shape[:4], device=device, dtype=p.dtype)
            obj_weight = self._not_ignored(p, anc, stride, img_idx, gt)

            gt_i, a_i = pos[:, level * na : (level + 1) * na].nonzero(as_tuple=True)
            if len(gt_i):
                centre = (gt[gt_i, :2] + gt[gt_i, 2:]) / 2
                gx = (centre[:, 0] / stride).long().clamp(0, w - 1)
                gy = (centre[:, 1] / stride).long().clamp(0, h - 1)
                b_i = img_idx[gt_i]
                ps = p[b_i, a_i, gy, gx]  # [P, 5+nc]
                pbox = yolo_boxes(ps[:, :4], torch.stack((gx, gy), 1).to(ps), anc[a_i], stride)
                box_sum = box_sum + complete_box_iou_loss(pbox, gt[gt_i], reduction="sum")
                cls_t = F.one_hot(labels[gt_i], nc).to(ps)
                cls_sum = cls_sum + F.binary_cross_entropy_with_logits(ps[:, 5:], cls_t, reduction="sum")
                obj_target[b_i, a_i, gy, gx] = 1.0
                obj_weight[b_i, a_i, gy, gx] = 1.0
                n_pos += len(gt_i)
            bce = F.binary_cross_entropy_with_logits(p[..., 4], obj_target, reduction="none")
            obj_loss = obj_loss + (bce * obj_weight).sum() / obj_weight.sum().clamp(min=1)

        n_pos = max(n_pos, 1)
        return {
            "box": box_sum / n_pos * self.box_gain * bs,
            "obj": obj_loss * self.obj_gain * bs,
            "cls": cls_sum / (n_pos * nc) * self.cls_gain * bs,
        }

    @torch.no_grad()
    def _not_ignored(self, p: Tensor, anc: Tensor, stride: int, img_idx: Tensor, gt: Tensor) -> Tensor:
        """Objectness weights [B, A, H, W]: 0 where a prediction overlaps a ground truth > ignore_thresh."""
        weight = torch.ones(p.shape[:4], device=p.device, dtype=p.dtype)
        if len(gt) == 0 or self.ignore_thresh >= 1.0:
            return weight
        cells = cell_grid(p.shape[2], p.shape[3], p.device, p.dtype)
        boxes = yolo_boxes(p[..., :4], cells, anc[:, None, None, :], stride)  # [B, A, H, W, 4]
        for i in range(p.shape[0]):
            own = gt[img_idx == i]
            if len(own):
                best = box_iou(boxes[i].reshape(-1, 4), own).amax(1).view(weight.shape[1:])
                weight[i][best > self.ignore_thresh] = 0.0
        return weight
