"""torchvision detectors (random weights): backbone, FPN, RPN conv and RoI heads pruned exactly."""

from __future__ import annotations

import pytest
import torch

import detprune
from detprune.graph.verify import check_equivalence, randomize_norm_stats

from zoo import TORCHVISION, build_torchvision, torchvision_raw_outputs


@pytest.mark.parametrize("ratio", [0.3, 0.5, 0.7])
@pytest.mark.parametrize("name", TORCHVISION)
def test_torchvision_pruning_equals_masking(name: str, ratio: float) -> None:
    torch.manual_seed(0)
    model = randomize_norm_stats(build_torchvision(name, size=256))
    x = [torch.rand(3, 256, 256)]
    before = {n: p.shape for n, p in model.named_parameters()}
    err, removed = check_equivalence(model, x, ratio, outputs=torchvision_raw_outputs)
    assert removed > 0 and err < 1e-4
    after = {n: p.shape for n, p in model.named_parameters()}
    shrunk = {n.split(".")[0] + "." + n.split(".")[1] for n in before if after[n] != before[n]}
    if name.startswith("fasterrcnn"):
        assert {"backbone.body", "backbone.fpn", "rpn.head", "roi_heads.box_head"} <= shrunk
        assert after["roi_heads.box_predictor.cls_score.weight"][0] == before["roi_heads.box_predictor.cls_score.weight"][0]
    else:
        assert "backbone.body" in shrunk or "backbone.features" in shrunk
    if name.endswith("frozenbn"):
        assert type(model.backbone.body.bn1).__name__ == "FrozenBatchNorm2d"
        assert model.backbone.body.bn1.weight.shape[0] < 64


def test_shared_head_is_coupled_across_levels() -> None:
    model = build_torchvision("retinanet_resnet50_fpn", size=256)
    found = detprune.groups(model, [torch.rand(3, 256, 256)])
    fpn = next(g for g in found if any(m.slot.module_path == "backbone.fpn.layer_blocks.0.0" and m.slot.role == "out"
                                       for m in g.members))
    paths = {m.slot.module_path for m in fpn.members}
    # every FPN level feeds the one shared head: all output convs of the FPN are one group
    assert {f"backbone.fpn.layer_blocks.{i}.0" for i in range(3)} <= paths
    assert {"backbone.fpn.extra_blocks.p6", "head.classification_head.conv.0.0", "head.regression_head.conv.0.0"} <= paths


def test_train_mode_trace_matches_eval() -> None:
    model = build_torchvision("fasterrcnn_mobilenet_v3_large_fpn", size=256)
    images = [torch.rand(3, 256, 256)]
    targets = [{"boxes": torch.tensor([[10.0, 20.0, 120.0, 140.0]]), "labels": torch.tensor([1])}]
    eval_groups = detprune.groups(model, images)
    model.train()
    train_groups = detprune.groups(model, (images, targets))
    model.eval()
    summary = lambda gs: sorted((g.size, g.prunable, len(g.members)) for g in gs if g.prunable)  # noqa: E731
    assert summary(train_groups) == summary(eval_groups)
