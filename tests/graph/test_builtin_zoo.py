"""Built-in YOLOv3-tiny (darknet layout) and YOLOv8-style detectors pruned exactly."""

from __future__ import annotations

import pytest
import torch

import detprune
from detprune.detection.models import build_model
from detprune.graph.verify import check_equivalence, randomize_norm_stats


@pytest.mark.parametrize("ratio", [0.3, 0.5, 0.7])
@pytest.mark.parametrize("name", ["yolov3-tiny", "yolov8n"])
def test_builtin_pruning_equals_masking(name: str, ratio: float) -> None:
    torch.manual_seed(0)
    model = randomize_norm_stats(build_model(name, num_classes=3).eval())
    preds_before = [c.out_channels for c in model.prediction_convs()]
    x = torch.rand(1, 3, 256, 256)
    err, removed = check_equivalence(model, x, ratio)
    assert removed > 0 and err < 1e-4
    assert [c.out_channels for c in model.prediction_convs()] == preds_before


def test_yolov3_tiny_groups() -> None:
    model = build_model("yolov3-tiny", num_classes=3).eval()
    found = detprune.groups(model, torch.rand(1, 3, 256, 256))
    prunable = [g for g in found if g.prunable]
    # 11 hidden conv outputs, of which the route concat ties conv8 (26x26 branch) into one group with
    # conv19's upsampled output: every hidden conv is prunable, the two prediction convs are not
    out_convs = {m.slot.module_path for g in prunable for m in g.members if m.slot.role == "out" and m.slot.name == "weight"}
    assert len(out_convs) == 11
    assert not any("pred" in p for p in out_convs)
