"""Task-aligned assigner (TAL, TOOD) as used by YOLOv8.

For every ground truth, candidate anchors are the cell centres inside the box; each candidate is
scored by ``t = s^alpha * u^beta`` (s: predicted score of the gt's class, u: CIoU of the predicted
box with the gt), the ``topk`` best candidates become positives, and an anchor claimed by several
gts keeps the one it overlaps most. Soft class targets are ``t`` rescaled per gt so that its best
anchor's target equals that anchor's IoU, which makes the classification score IoU-aware.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.ops import complete_box_iou_loss


@dataclass
class Assignment:
    """Per-anchor training targets: boxes [B, N, 4] (pixels), scores [B, N, nc], fg_mask [B, N], gt_index [B, N]."""

    target_boxes: Tensor
    target_scores: Tensor
    fg_mask: Tensor
    gt_index: Tensor


def centres_in_boxes(points: Tensor, boxes: Tensor, eps: float = 1e-9) -> Tensor:
    """[B, M, N] mask of the points [N, 2] lying strictly inside each box [B, M, 4] (xyxy)."""
    x, y = points[:, 0], points[:, 1]
    b = boxes[..., None, :]  # [B, M, 1, 4]
    deltas = torch.stack((x - b[..., 0], y - b[..., 1], b[..., 2] - x, b[..., 3] - y), -1)
    return deltas.amin(-1) > eps


class TaskAlignedAssigner:
    """Callable computing an :class:`Assignment` from detached predictions and padded ground truth."""

    def __init__(self, topk: int = 10, alpha: float = 0.5, beta: float = 6.0, eps: float = 1e-9) -> None:
        self.topk, self.alpha, self.beta, self.eps = topk, alpha, beta, eps

    @torch.no_grad()
    def __call__(
        self,
        pd_scores: Tensor,
        pd_boxes: Tensor,
        points: Tensor,
        gt_labels: Tensor,
        gt_boxes: Tensor,
        valid: Tensor,
    ) -> Assignment:
        """``pd_scores`` [B, N, nc] probabilities, ``pd_boxes`` [B, N, 4] and ``points`` [N, 2] in pixels,
        ``gt_labels`` [B, M], ``gt_boxes`` [B, M, 4] pixels, ``valid`` [B, M] (padding mask)."""
        bs, n, nc = pd_scores.shape
        m = gt_boxes.shape[1]
        if m == 0:
            return Assignment(
                torch.zeros_like(pd_boxes),
                torch.zeros_like(pd_scores),
                torch.zeros(bs, n, dtype=torch.bool, device=pd_scores.device),
                torch.zeros(bs, n, dtype=torch.int64, device=pd_scores.device),
            )

        candidates = centres_in_boxes(points, gt_boxes) & valid[..., None]  # [B, M, N]
        overlaps, align = self._alignment(pd_scores, pd_boxes, gt_labels, gt_boxes, candidates)

        topk_idx = align.topk(min(self.topk, n), dim=-1).indices  # [B, M, k]
        in_topk = torch.zeros_like(candidates).scatter_(-1, topk_idx, True)
        mask_pos = in_topk & candidates

        # An anchor claimed by several gts trains only on the gt it overlaps most.
        claimed_twice = mask_pos.sum(1, keepdim=True) > 1  # [B, 1, N]
        best_gt = torch.zeros_like(mask_pos).scatter_(1, overlaps.argmax(1, keepdim=True), True)
        mask_pos = torch.where(claimed_twice, best_gt, mask_pos)

        fg_mask = mask_pos.any(1)  # [B, N]
        gt_index = mask_pos.to(torch.uint8).argmax(1)  # [B, N], 0 for background
        labels = gt_labels.gather(1, gt_index)
        target_boxes = gt_boxes.gather(1, gt_index[..., None].expand(-1, -1, 4))
        target_scores = F.one_hot(labels, nc).to(pd_scores.dtype) * fg_mask[..., None]

        # Normalise the alignment of each gt so its best positive gets that positive's IoU.
        align = align * mask_pos
        pos_align = align.amax(-1, keepdim=True)  # [B, M, 1]
        pos_overlap = (overlaps * mask_pos).amax(-1, keepdim=True)
        norm = (align * pos_overlap / (pos_align + self.eps)).amax(1)  # [B, N]
        return Assignment(target_boxes, target_scores * norm[..., None], fg_mask, gt_index)

    def _alignment(
        self, pd_scores: Tensor, pd_boxes: Tensor, gt_labels: Tensor, gt_boxes: Tensor, candidates: Tensor
    ) -> tuple[Tensor, Tensor]:
        """CIoU overlaps and alignment metrics [B, M, N], computed on candidate pairs only (0 elsewhere)."""
        b, g, a = candidates.nonzero(as_tuple=True)
        ciou = 1.0 - complete_box_iou_loss(gt_boxes[b, g], pd_boxes[b, a], reduction="none")
        ciou = ciou.clamp(min=0).to(pd_scores.dtype)
        score = pd_scores[b, a, gt_labels[b, g]]
        overlaps = torch.zeros(candidates.shape, dtype=pd_scores.dtype, device=pd_scores.device)
        align = torch.zeros_like(overlaps)
        overlaps[b, g, a] = ciou
        align[b, g, a] = score.pow(self.alpha) * ciou.pow(self.beta)
        return overlaps, align
