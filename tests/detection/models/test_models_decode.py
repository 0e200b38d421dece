"""Decoding of hand-built raw maps and NMS post-processing."""

from __future__ import annotations

import math

import torch

from detprune.detection.models import build_model
from detprune.detection.models.box_coder import dfl_expectation
from detprune.detection.models.decode import decode_dfl, decode_yolo
from detprune.detection.models.nms import postprocess

RM = 16


def peaked(bins: list[float]) -> torch.Tensor:
    """DFL logits [4*RM] whose 4 distributions put all mass on ``bins`` (x.5 -> half on each neighbour)."""
    logits = torch.full((4, RM), -50.0)
    for side, b in enumerate(bins):
        logits[side, math.floor(b)] = 50.0
        if b != math.floor(b):
            logits[side, math.floor(b) + 1] = 50.0
    return logits.flatten()


def test_dfl_expectation_of_peaked_distributions() -> None:
    assert torch.allclose(dfl_expectation(peaked([0, 3, 7.5, 15]), RM), torch.tensor([0.0, 3.0, 7.5, 15.0]))


def test_decode_dfl_known_box() -> None:
    nc = 2
    raw = torch.full((1, 4 * RM + nc, 2, 3), -20.0)  # one level, stride 8, 2x3 cells
    raw[0, : 4 * RM, 0, 1] = peaked([2, 3, 4, 5.5])  # cell (x=1, y=0), centre (1.5, 0.5) in grid units
    raw[0, 4 * RM + 1, 0, 1] = 3.0  # class 1
    boxes, scores = decode_dfl([raw], (8,), RM)
    assert boxes.shape == (1, 6, 4) and scores.shape == (1, 6, nc)
    n = 0 * 3 + 1  # (level, y, x) flattening
    expected = torch.tensor([(1.5 - 2) * 8, (0.5 - 3) * 8, (1.5 + 4) * 8, (0.5 + 5.5) * 8])
    assert torch.allclose(boxes[0, n], expected, atol=1e-4)
    assert torch.isclose(scores[0, n, 1], torch.sigmoid(torch.tensor(3.0)))
    assert scores[0, n, 0] < 1e-6


def test_yolov8_model_decode_multi_level_order() -> None:
    m = build_model("yolov8n", 1, width=0.125)
    raw = [torch.zeros(1, 4 * RM + 1, s, s) for s in (8, 4, 2)]  # 64x64 input
    raw[2][0, : 4 * RM, 1, 0] = peaked([1, 1, 1, 1])  # stride 32, cell (x=0, y=1): centre (16, 48) px
    boxes, _ = m.decode(raw)
    assert boxes.shape == (1, 64 + 16 + 4, 4)
    assert torch.allclose(boxes[0, 64 + 16 + 2], torch.tensor([-16.0, 16.0, 48.0, 80.0]), atol=1e-4)


def test_decode_yolo_known_box() -> None:
    nc, na = 3, 3
    anchors = torch.tensor([[[20.0, 40.0], [30.0, 30.0], [50.0, 10.0]]])
    raw = torch.zeros(1, na * (5 + nc), 2, 2)
    p = raw.view(1, na, 5 + nc, 2, 2)
    p[0, 1, :4, 1, 0] = torch.tensor([0.0, 0.0, math.log(2.0), 0.0])  # anchor 1, cell (x=0, y=1)
    p[0, 1, 4, 1, 0] = 20.0  # objectness ~1
    p[0, 1, 5 + 2, 1, 0] = 20.0  # class 2 ~1
    boxes, scores = decode_yolo([raw], anchors, (16,), nc)
    n = 1 * 4 + 1 * 2 + 0  # (anchor, y, x)
    assert torch.allclose(boxes[0, n], torch.tensor([8.0 - 30.0, 24.0 - 15.0, 8.0 + 30.0, 24.0 + 15.0]))
    assert torch.isclose(scores[0, n, 2], torch.tensor(1.0), atol=1e-6)
    assert torch.isclose(scores[0, 0, 0], torch.tensor(0.25))  # sigmoid(0) * sigmoid(0)


def test_nms_removes_duplicates_per_class() -> None:
    boxes = torch.tensor([[[0.0, 0, 10, 10], [1, 1, 10, 10], [0, 0, 10, 10], [50, 50, 60, 60]]])
    scores = torch.zeros(1, 4, 2)
    scores[0, 0, 0], scores[0, 1, 0], scores[0, 2, 1], scores[0, 3, 0] = 0.9, 0.8, 0.7, 0.05
    (pred,) = postprocess(boxes, scores, conf_thres=0.1, iou_thres=0.5)
    # box 1 duplicates box 0 (same class) -> removed; box 2 is another class -> kept; box 3 under threshold
    assert pred["scores"].tolist() == torch.tensor([0.9, 0.7]).tolist()
    assert pred["labels"].tolist() == [0, 1] and pred["labels"].dtype == torch.int64
    assert torch.equal(pred["boxes"], boxes[0, [0, 2]])


def test_nms_max_det_clip_and_empty() -> None:
    boxes = torch.tensor([[[-5.0, -5, 20, 20], [30, 30, 200, 90], [100, 0, 120, 10]]])
    scores = torch.tensor([[[0.5], [0.9], [0.7]]])
    (pred,) = postprocess(boxes, scores, conf_thres=0.1, max_det=2, image_size=(80, 150))
    assert pred["scores"].tolist() == torch.tensor([0.9, 0.7]).tolist()
    assert pred["boxes"][0].tolist() == [30, 30, 150, 80]
    (none,) = postprocess(boxes, scores, conf_thres=0.95)
    assert none["boxes"].shape == (0, 4) and none["labels"].shape == (0,)
