"""YOLOv8-style detector: topology/scales, raw outputs, prune-friendly blocks, loss and overfitting."""

from __future__ import annotations

import math

import pytest
import torch
from models_helpers import GT_BOXES, SIZE, make_scene, overfit, recalibrate_bn
from torch import nn
from torchvision.ops import box_iou

from detprune.detection.models import BuiltinAdapter, build_model
from detprune.detection.models.blocks import C2f


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_named_scales_match_ultralytics_sizes() -> None:
    # Ultralytics summaries: yolov8n 3,157,200 and yolov8s 11,166,560 parameters (80 classes), of which
    # 16 are the fixed DFL projection conv that we implement as a plain arange in decoding.
    assert n_params(build_model("yolov8n", 80)) == 3_157_200 - 16
    assert n_params(build_model("yolov8s", 80)) == 11_166_560 - 16
    m = build_model("yolov8n", 80)
    assert (m.width, m.depth) == (0.25, 0.33)
    assert len(m.stage3[1].m) == 2 and len(m.td4.m) == 1  # 6 * 0.33 -> 2, 3 * 0.33 -> 1


@pytest.mark.parametrize("width", [0.125, 0.25])
@pytest.mark.parametrize("train", [True, False])
def test_raw_output_shapes(width: float, train: bool) -> None:
    nc = 5
    m = build_model("yolov8n", nc, width=width).train(train)
    out = m(torch.rand(2, 3, 64, 96))
    assert isinstance(out, list)
    assert [tuple(o.shape) for o in out] == [(2, 64 + nc, 8, 12), (2, 64 + nc, 4, 6), (2, 64 + nc, 2, 3)]
    assert m.strides == (8, 16, 32)


def test_reg_max_option() -> None:
    m = build_model("yolov8n", 2, width=0.125, reg_max=8)
    assert m(torch.rand(1, 3, 64, 64))[0].shape[1] == 4 * 8 + 2


def test_prediction_convs_are_the_head_outputs() -> None:
    m = build_model("yolov8n", 3, width=0.125)
    preds = m.prediction_convs()
    assert len(preds) == 6 and all(p.kernel_size == (1, 1) and p.bias is not None for p in preds)
    assert [p.out_channels for p in preds] == [64, 3] * 3


def test_c2f_runs_after_channel_pruning() -> None:
    """C2f splits with chunk(2, 1): shrinking cv1 (and cv2's input) must keep it runnable."""
    block = C2f(16, 16, n=1, shortcut=True).eval()
    keep = torch.tensor([0, 1, 2, 3, 8, 9, 10, 11])  # 4 channels of each half
    conv, bn = block.cv1.conv, block.cv1.bn
    conv.weight = nn.Parameter(conv.weight[keep])
    conv.out_channels = 8
    for name in ("weight", "bias"):
        setattr(bn, name, nn.Parameter(getattr(bn, name)[keep]))
    bn.running_mean, bn.running_var = bn.running_mean[keep], bn.running_var[keep]
    bn.num_features = 8
    # bottleneck now maps the 4-channel half: prune its in/out to 4 as well
    for sub in (block.m[0].cv1, block.m[0].cv2):
        sub.conv.weight = nn.Parameter(sub.conv.weight[:4, :4])
        for name in ("weight", "bias"):
            setattr(sub.bn, name, nn.Parameter(getattr(sub.bn, name)[:4]))
        sub.bn.running_mean, sub.bn.running_var = sub.bn.running_mean[:4], sub.bn.running_var[:4]
    block.cv2.conv.weight = nn.Parameter(
        block.cv2.conv.weight[:, torch.tensor([0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19])]
    )
    assert block(torch.rand(1, 16, 8, 8)).shape == (1, 16, 8, 8)


def test_class_accessors() -> None:
    m = build_model("yolov8n", 4, width=0.125)
    raw = m(torch.rand(1, 3, 64, 64))
    logits = m.class_logits(raw)
    assert [tuple(t.shape) for t in logits] == [(1, 1, 4, 8, 8), (1, 1, 4, 4, 4), (1, 1, 4, 2, 2)]
    assert torch.equal(logits[1][:, 0], raw[1][:, 64:])
    assert m.objectness(raw) is None
    assert torch.allclose(m.class_scores(raw)[2], logits[2].sigmoid())
    logits[0].sum().backward()  # the accessor is differentiable w.r.t. the network
    assert m.stem.conv.weight.grad is not None


def test_loss_finite_positive_and_empty_targets() -> None:
    ad = BuiltinAdapter(build_model("yolov8n", 2, width=0.125))
    img, targets = make_scene()
    losses = ad.loss(img, targets)
    assert set(losses) == {"box", "cls", "dfl"}
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
    empty = ad.loss(img, [dict(boxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.int64), image_id=0)])
    assert empty["box"] == 0 and empty["dfl"] == 0 and empty["cls"] > 0
    sum(empty.values()).backward()


def test_loss_batch_with_uneven_box_counts() -> None:
    ad = BuiltinAdapter(build_model("yolov8n", 2, width=0.125))
    img, targets = make_scene()
    second = dict(boxes=torch.tensor([[5.0, 5.0, 120.0, 90.0]]), labels=torch.tensor([1]), image_id=1)
    losses = ad.loss(img.repeat(2, 1, 1, 1), [targets[0], second])
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())


def test_overfit_single_image_then_predict() -> None:
    torch.manual_seed(0)
    m = build_model("yolov8n", 2, width=0.25)
    ad = BuiltinAdapter(m)
    img, targets = make_scene()
    history = overfit(ad, img, targets, steps=50, lr=0.003)
    assert all(math.isfinite(v) for v in history)
    assert min(history[-5:]) < 0.5 * history[0]
    recalibrate_bn(m, img)
    pred = ad.predict(img, conf_thres=0.25, iou_thres=0.5)[0]
    assert len(pred["boxes"]) > 0
    assert (pred["boxes"] >= 0).all() and (pred["boxes"] <= SIZE).all()
    assert box_iou(GT_BOXES, pred["boxes"]).max() > 0.5
