"""torchvision one-stage heads: raw per-level outputs for attribution, and attribution on them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import detprune
from detprune.criteria import get_criterion
from detprune.detection.adapters import TorchvisionAdapter, build_torchvision

ONE_STAGE = ["retinanet_resnet50_fpn", "fcos_resnet50_fpn", "ssdlite320_mobilenet_v3_large"]


def _build(name: str, num_classes: int = 3) -> nn.Module:
    kwargs = {"size": 128} if name.startswith("ssd") else {"min_size": 128, "max_size": 128}
    torch.manual_seed(0)
    return build_torchvision(name, num_classes, **kwargs).eval()


def _conv_outputs(model: nn.Module, convs: list[nn.Module], images: list[torch.Tensor]) -> list[torch.Tensor]:
    """The final prediction convs' own outputs [B, A*k, H, W], captured by hooks during ``raw_outputs``."""
    seen: list[torch.Tensor] = []
    handles = [c.register_forward_hook(lambda m, i, o: seen.append(o.detach())) for c in convs]
    try:
        TorchvisionAdapter(model).raw_outputs(model, images)
    finally:
        for h in handles:
            h.remove()
    return seen


@pytest.mark.parametrize("name", ONE_STAGE)
def test_class_logits_and_boxes_are_the_prediction_convs_per_level(name) -> None:
    model = _build(name)
    adapter = TorchvisionAdapter(model)
    images = [torch.rand(3, 128, 128) for _ in range(2)]
    raw = adapter.raw_outputs(model, images)
    logits, boxes = adapter.class_logits(raw), adapter.box_outputs(raw)
    head = model.head
    if name.startswith("ssd"):
        cls_convs = [m[-1] if isinstance(m, nn.Sequential) else m for m in head.classification_head.module_list]
        box_convs = [m[-1] if isinstance(m, nn.Sequential) else m for m in head.regression_head.module_list]
    else:
        cls_convs, box_convs = [head.classification_head.cls_logits], [head.regression_head.bbox_reg]
    cls_maps, box_maps = _conv_outputs(model, cls_convs, images), _conv_outputs(model, box_convs, images)
    assert len(logits) == len(cls_maps) == len(boxes) >= 2
    for i, (level, box, conv, box_conv) in enumerate(zip(logits, boxes, cls_maps, box_maps)):
        b, a, nc, h, w = level.shape
        assert (b, nc, h, w) == (2, 3, *conv.shape[-2:]) and box.shape[:2] == (2, a) and box.shape[3:] == (h, w)
        if name.startswith("ssd"):  # sigmoid of the returned logits is the softmax's foreground probability
            prob = conv.view(b, a, nc + 1, h, w).softmax(2)[:, :, 1:]
            torch.testing.assert_close(level.sigmoid(), prob, atol=1e-5, rtol=1e-4)
        else:
            torch.testing.assert_close(level, conv.view(b, a, nc, h, w))
            if i == 0:  # the check can tell the (A, k) and (H, W) orders apart
                wrong = conv.view(b, nc, a, h, w).transpose(1, 2) if a > 1 else conv.view(b, a, nc, w, h).mT
                assert not torch.equal(level, wrong)
        expect = box_conv.view(b, a, 4, h, w)
        torch.testing.assert_close(box[:, :, :4], expect.relu() if name.startswith("fcos") else expect)
    if name.startswith("fcos"):
        assert boxes[0].shape[2] == 5  # centerness as the fifth entry


def _scores(crit, groups, label: str) -> np.ndarray:
    return crit.member_scores(next(m for g in groups for m in g.members if m.label == label))


def test_attribution_on_retinanet_scores_by_class_and_box_outputs() -> None:
    model = _build("retinanet_resnet50_fpn")
    adapter = TorchvisionAdapter(model)
    images = [torch.rand(3, 128, 128) for _ in range(2)]
    groups = detprune.groups(model, images)
    data = [torch.stack(images)]
    cls_tower, box_tower = "head.classification_head.conv.3.0.weight[0]", "head.regression_head.conv.3.0.weight[0]"
    per_class = []
    for cls in (0, 1):
        crit = get_criterion("attribution", classes=[cls], tau=0.0, adapter=adapter, progress=False, fallback=None)
        crit.prepare(model, groups, data=data)
        assert crit.masked > 0
        per_class.append(_scores(crit, groups, cls_tower))
        assert not np.any(_scores(crit, groups, box_tower))  # the box branch never reaches a class score
    assert np.any(per_class[0]) and not np.allclose(per_class[0], per_class[1])
    boxed = get_criterion("attribution", classes=[0], tau=0.0, with_boxes=True, adapter=adapter, progress=False,
                          fallback=None)
    boxed.prepare(model, groups, data=data)
    assert np.any(_scores(boxed, groups, box_tower))


def test_faster_rcnn_scores_are_per_proposal() -> None:
    model = build_torchvision("fasterrcnn_mobilenet_v3_large_fpn", 3, min_size=128, max_size=128).eval()
    model.rpn._post_nms_top_n["testing"] = 20
    adapter = TorchvisionAdapter(model)
    images = [torch.rand(3, 128, 128), torch.zeros(3, 128, 128)]
    raw = adapter.raw_outputs(model, images)
    (level,), (box,) = adapter.class_logits(raw), adapter.box_outputs(raw)
    assert raw.per_proposal and level.shape[0] == 2 and level.shape[2:] == (3, 1, 1) and box.shape[2] == 4 * 3
    # the rows are the box predictor's softmax over the same proposals, background dropped
    with torch.no_grad():
        batch, _ = model.transform(images)
        feats = model.backbone(batch.tensors)
        proposals, _ = model.rpn(batch, feats)
        heads = model.roi_heads
        logits, _ = heads.box_predictor(heads.box_head(heads.box_roi_pool(feats, proposals, batch.image_sizes)))
    n0 = len(proposals[0])
    torch.testing.assert_close(level[0, :n0, :, 0, 0].sigmoid(), logits[:n0].softmax(1)[:, 1:], atol=1e-5, rtol=1e-4)
    if len(proposals[1]) < level.shape[1]:  # padding rows never pass a tau mask
        assert float(level[1, len(proposals[1]):].sigmoid().max()) < 1e-6
    groups = detprune.groups(model, images[:1])
    label = "roi_heads.box_head.fc6.weight[0]"
    crit = get_criterion("attribution", classes=[0], tau=0.0, adapter=adapter, progress=False, fallback=None)
    crit.prepare(model, groups, data=[torch.stack(images)])
    assert crit.masked > 0 and np.any(_scores(crit, groups, label))
    labelled = get_criterion("attribution", use_labels=True, adapter=adapter, progress=False)
    target = {"boxes": torch.tensor([[10.0, 10.0, 60.0, 60.0]]), "labels": torch.tensor([0])}
    with pytest.raises(ValueError, match="FasterRCNN scores region proposals"):
        labelled.prepare(model, groups, data=[(torch.stack(images), [target, target])])


def test_unknown_torchvision_layout_is_named() -> None:
    from detprune.detection.adapters.torchvision_heads import head_outputs

    with pytest.raises(TypeError, match="no known raw-output layout for Linear.*scores_fn="):
        head_outputs(nn.Linear(2, 2), [torch.rand(3, 8, 8)])
