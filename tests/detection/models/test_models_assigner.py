"""Task-aligned assigner invariants and the DFL target encoding."""

from __future__ import annotations

import torch
from torchvision.ops import box_iou

from detprune.detection.models.assigner import TaskAlignedAssigner, centres_in_boxes
from detprune.detection.models.box_coder import anchor_points, xyxy_to_ltrb
from detprune.detection.models.loss_yolov8 import distribution_focal_loss


def scene() -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(1)
    pts, st = anchor_points([(16, 16), (8, 8), (4, 4)], (8, 16, 32), torch.device("cpu"))
    points = pts * st
    n = len(points)
    scores = torch.rand(2, n, 3, generator=g)
    wh = torch.rand(2, n, 2, generator=g) * 60 + 10
    pd_boxes = torch.cat((points - wh / 2, points + wh / 2), -1)
    gt_boxes = torch.tensor([[[10.0, 10, 60, 70], [40, 40, 120, 110], [0, 0, 0, 0]],
                             [[5.0, 60, 50, 120], [0, 0, 0, 0], [0, 0, 0, 0]]])  # fmt: skip
    gt_labels = torch.tensor([[0, 2, 0], [1, 0, 0]])
    valid = torch.tensor([[True, True, False], [True, False, False]])
    return scores, pd_boxes, points, gt_labels, gt_boxes, valid


def test_assignment_invariants() -> None:
    scores, pd_boxes, points, gt_labels, gt_boxes, valid = scene()
    a = TaskAlignedAssigner(topk=10)(scores, pd_boxes, points, gt_labels, gt_boxes, valid)
    assert a.fg_mask.any()
    inside = centres_in_boxes(points, gt_boxes)  # [B, M, N]
    for b in range(2):
        for n in a.fg_mask[b].nonzero().flatten():
            g = a.gt_index[b, n]
            assert valid[b, g] and inside[b, g, n]  # positives lie inside their (real) gt
            assert torch.equal(a.target_boxes[b, n], gt_boxes[b, g])
            assert a.target_scores[b, n].argmax() == gt_labels[b, g]
        counts = torch.bincount(a.gt_index[b][a.fg_mask[b]], minlength=3)
        assert (counts <= 10).all() and (counts[~valid[b]] == 0).all()
    assert (a.target_scores[~a.fg_mask] == 0).all()
    assert (a.target_scores <= 1).all() and (a.target_scores >= 0).all()
    # the best positive of each gt gets (at most) its IoU as soft target
    b, g = 0, 0
    pos = a.fg_mask[b] & (a.gt_index[b] == g)
    best_iou = box_iou(gt_boxes[b, g : g + 1], pd_boxes[b, pos]).max()
    assert a.target_scores[b, pos].max() <= best_iou + 1e-5


def test_no_ground_truth_means_all_background() -> None:
    scores, pd_boxes, points, *_ = scene()
    a = TaskAlignedAssigner()(scores, pd_boxes, points, torch.zeros(2, 0, dtype=torch.int64),
                              torch.zeros(2, 0, 4), torch.zeros(2, 0, dtype=torch.bool))  # fmt: skip
    assert not a.fg_mask.any() and (a.target_scores == 0).all()


def test_dfl_targets_and_loss_minimum() -> None:
    ltrb = xyxy_to_ltrb(torch.tensor([[0.0, 1.0, 30.0, 4.5]]), torch.tensor([[2.0, 3.0]]), max_dist=15)
    assert torch.allclose(ltrb, torch.tensor([[2.0, 2.0, 14.99, 1.5]]))
    logits = torch.full((1, 16), -30.0)
    logits[0, 2] = logits[0, 3] = 0.0  # half the mass on bins 2 and 3
    at_centre = distribution_focal_loss(logits, torch.tensor([2.5]))
    off_centre = distribution_focal_loss(logits, torch.tensor([2.1]))
    assert torch.isclose(at_centre, torch.log(torch.tensor([2.0])), atol=1e-5)  # minimum of the bracketed CE
    assert off_centre > at_centre - 1e-6
