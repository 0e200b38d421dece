"""Stock Ultralytics YOLOv8n / YOLO11n, built by Ultralytics itself, pruned exactly."""

from __future__ import annotations

import copy

import pytest
import torch

import detprune
from detprune.graph.verify import check_equivalence, randomize_norm_stats

tasks = pytest.importorskip("ultralytics.nn.tasks")


@pytest.fixture(scope="module", params=["yolov8n.yaml", "yolo11n.yaml"])
def yolo(request):
    torch.manual_seed(0)
    return request.param, randomize_norm_stats(tasks.DetectionModel(request.param, verbose=False).eval())


@pytest.mark.parametrize("ratio", [0.3, 0.5, 0.7])
def test_ultralytics_pruning_equals_masking(yolo, ratio: float) -> None:
    _, base = yolo
    model = copy.deepcopy(base)
    x = torch.rand(1, 3, 256, 256)
    err, removed = check_equivalence(model, x, ratio)
    assert removed > 0 and err < 1e-4
    detect = model.model[-1]
    # Detect's inner convs lost channels; its prediction convs kept theirs
    assert detect.cv2[0][0].conv.out_channels < base.model[-1].cv2[0][0].conv.out_channels
    assert detect.cv3[0][2].out_channels == base.model[-1].cv3[0][2].out_channels
    assert detect.cv2[0][2].out_channels == base.model[-1].cv2[0][2].out_channels


def test_ultralytics_groups_pin_only_predictions(yolo) -> None:
    _, model = yolo
    found = detprune.groups(model, torch.rand(1, 3, 256, 256))
    pinned = {m.slot.module_path for g in found if g.prunable == 0 for m in g.members if m.slot.role == "out"}
    assert any(p.endswith("cv3.0.2") for p in pinned)  # class scores
    assert any(p.endswith("cv2.0.2") for p in pinned)  # DFL box bins
    neck_and_backbone = [g for g in found if any(m.slot.module_path.startswith("model.1.") for m in g.members)]
    assert neck_and_backbone and all(g.prunable > 0 for g in neck_and_backbone)
