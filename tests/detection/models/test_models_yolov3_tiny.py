"""YOLOv3-tiny: darknet layout, raw outputs, loss behaviour and an overfit sanity check."""

from __future__ import annotations

import math

import pytest
import torch
from models_helpers import GT_BOXES, SIZE, make_scene, overfit, recalibrate_bn
from torch import nn
from torchvision.ops import box_iou

from detprune.detection.models import BuiltinAdapter, YOLOv3Tiny, build_model
from detprune.detection.models.yolov3_tiny import DARKNET_TINY_ANCHORS


def test_darknet_layout_has_13_convs_6_maxpools() -> None:
    m = build_model("yolov3-tiny", 80)
    convs = [mod for mod in m.modules() if isinstance(mod, nn.Conv2d)]
    # yolov3-tiny.cfg: 13 [convolutional] sections, 2 of them the linear 1x1 prediction layers.
    assert len(convs) == 13
    preds = m.prediction_convs()
    assert len(preds) == 2 and all(p.kernel_size == (1, 1) and p.bias is not None for p in preds)
    assert all(p.out_channels == 255 for p in preds)
    hidden = [c for c in convs if all(c is not p for p in preds)]
    assert all(c.bias is None for c in hidden)
    assert [c.out_channels for c in hidden] == [16, 32, 64, 128, 256, 512, 1024, 256, 512, 128, 256]
    pools = [mod for mod in m.modules() if isinstance(mod, nn.MaxPool2d)]
    assert len(pools) == 6 and pools[-1].stride == 1
    assert isinstance(m.backbone32.pad11, nn.ZeroPad2d) and m.backbone32.pad11.padding == (0, 1, 0, 1)
    assert sum(isinstance(mod, nn.LeakyReLU) and mod.negative_slope == 0.1 for mod in m.modules()) == 11


def test_416_input_gives_13_and_26_grids() -> None:
    m = build_model("yolov3-tiny", 80, width=0.125).eval()
    with torch.no_grad():
        out = m(torch.zeros(1, 3, 416, 416))
    assert [tuple(o.shape) for o in out] == [(1, 255, 13, 13), (1, 255, 26, 26)]
    assert m.strides == (32, 16)
    # darknet masks: 3,4,5 on the stride-32 head, 0,1,2 on the stride-16 head, pixels of the 416 input.
    assert m.anchors.tolist() == [list(map(list, DARKNET_TINY_ANCHORS[3:])), list(map(list, DARKNET_TINY_ANCHORS[:3]))]


@pytest.mark.parametrize("width", [0.125, 0.25, 0.5])
@pytest.mark.parametrize("train", [True, False])
def test_raw_output_shapes(width: float, train: bool) -> None:
    nc = 3
    m = build_model("yolov3-tiny", nc, width=width).train(train)
    out = m(torch.rand(2, 3, 64, 96))
    assert isinstance(out, list) and [tuple(o.shape) for o in out] == [(2, 3 * (5 + nc), 2, 3), (2, 3 * (5 + nc), 4, 6)]
    assert all(c.out_channels % 8 == 0 and c.out_channels >= 8 for c in m.modules() if isinstance(c, nn.Conv2d)
               and c not in m.prediction_convs())  # fmt: skip


def test_width_scales_channels_min_8() -> None:
    m = build_model("yolov3-tiny", 1, width=0.25)
    assert m.backbone16.conv0.conv.out_channels == 8  # 16 * 0.25 = 4 -> min 8
    assert m.backbone32.conv12.conv.out_channels == 256


def test_depth_is_accepted_and_ignored() -> None:
    a, b = build_model("yolov3-tiny", 2, width=0.25), build_model("yolov3-tiny", 2, width=0.25, depth=0.33)
    assert [p.shape for p in a.parameters()] == [p.shape for p in b.parameters()]
    assert b.spec["depth"] == 0.33


def test_class_accessors_views() -> None:
    m = build_model("yolov3-tiny", 4, width=0.125)
    raw = m(torch.rand(1, 3, 64, 64))
    logits, obj, scores = m.class_logits(raw), m.objectness(raw), m.class_scores(raw)
    assert [tuple(t.shape) for t in logits] == [(1, 3, 4, 2, 2), (1, 3, 4, 4, 4)]
    assert [tuple(t.shape) for t in obj] == [(1, 3, 2, 2), (1, 3, 4, 4)]
    # anchor-major darknet layout: channel a*(5+nc) + 5 + k is class k of anchor a
    assert torch.equal(logits[0][:, 1, 2], raw[0][:, 1 * 9 + 5 + 2])
    assert torch.equal(obj[1][:, 2], raw[1][:, 2 * 9 + 4])
    assert torch.allclose(scores[0], logits[0].sigmoid() * obj[0].sigmoid().unsqueeze(2))


def test_loss_finite_positive_and_empty_targets() -> None:
    m = build_model("yolov3-tiny", 2, width=0.125)
    ad = BuiltinAdapter(m)
    img, targets = make_scene()
    losses = ad.loss(img, targets)
    assert set(losses) == {"box", "obj", "cls"}
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
    empty = ad.loss(img, [dict(boxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.int64), image_id=0)])
    assert empty["box"] == 0 and empty["cls"] == 0 and empty["obj"] > 0
    sum(empty.values()).backward()  # still differentiable


def test_anchor_matching_by_wh_iou() -> None:
    loss = YOLOv3Tiny(1, width=0.125).build_loss()
    # a 10x14 box matches exactly darknet anchor 0 (stride-16 level, anchor index 0 -> flat index 3)
    pos = loss.match(torch.tensor([[0.0, 0.0, 10.0, 14.0], [0.0, 0.0, 300.0, 300.0]]), loss.anchors)
    assert pos[0].nonzero().flatten().tolist() == [3]
    assert pos[1, 2]  # 344x319 anchor: stride-32 level, index 2


def test_overfit_single_image_then_predict() -> None:
    torch.manual_seed(0)
    m = build_model("yolov3-tiny", 2, width=0.25)
    ad = BuiltinAdapter(m)
    img, targets = make_scene()
    history = overfit(ad, img, targets, steps=60)
    assert all(math.isfinite(v) for v in history)
    assert min(history[-5:]) < 0.5 * history[0]
    recalibrate_bn(m, img)
    pred = ad.predict(img, conf_thres=0.25, iou_thres=0.5)[0]
    assert len(pred["boxes"]) > 0
    assert (pred["boxes"] >= 0).all() and (pred["boxes"] <= SIZE).all()
    assert box_iou(GT_BOXES, pred["boxes"]).max() > 0.5
