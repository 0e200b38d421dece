"""A pruned model prints, trains, exports to ONNX and takes dict inputs; LayerNorm is pruned approximately."""

from __future__ import annotations

import torch
from torch import nn

import detprune
from detprune.deploy import check_onnx_parity, export_onnx
from detprune.detection.models import build_model
from detprune.graph.verify import check_equivalence


def test_pruned_yolo_prints_trains_and_exports(tmp_path) -> None:
    torch.manual_seed(0)
    model = build_model("yolov8n", num_classes=3).eval()
    x = torch.rand(1, 3, 128, 128)
    detprune.prune(model, x, criterion="l1", ratio=0.5, measure=False)
    first = model.prediction_convs()[0]
    assert "Conv2d" in repr(model)
    # one optimiser step through the built-in loss
    from detprune.detection.models import BuiltinAdapter

    adapter = BuiltinAdapter(model)
    model.train()
    losses = adapter.loss(torch.rand(2, 3, 128, 128), [
        {"boxes": torch.tensor([[10.0, 10.0, 60.0, 70.0]]), "labels": torch.tensor([1]), "image_id": 0},
        {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long), "image_id": 1}])
    total = sum(losses.values())
    total.backward()
    assert torch.isfinite(total) and first.weight.grad is not None
    model.eval()
    path = export_onnx(model, x, tmp_path / "pruned.onnx")
    assert check_onnx_parity(model, path, x) < 1e-3


class TokenNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.norm = nn.LayerNorm(16)
        self.fc1, self.fc2 = nn.Linear(16, 32), nn.Linear(32, 4)

    def forward(self, image, scale=1.0):
        tokens = self.conv(image).flatten(2).transpose(1, 2)  # [B, HW, C]
        return self.fc2(torch.relu(self.fc1(self.norm(tokens)))) * scale


def test_layernorm_on_channels_and_dict_inputs() -> None:
    model = TokenNet().eval()
    inputs = {"image": torch.rand(1, 3, 6, 6), "scale": 2.0}
    found = detprune.groups(model, inputs)
    conv = next(g for g in found if g.members[0].label == "conv.weight[0]")
    assert {"norm.weight[0]", "fc1.weight[1]"} <= {m.label for m in conv.members}
    assert conv.prunable == 16 and conv.inexact
    hidden = next(g for g in found if g.members[0].label == "fc1.weight[0]")
    assert not hidden.inexact
    # the exact groups still satisfy the contract; the approximate one is left out by the check
    err, removed = check_equivalence(model, inputs, 0.5, groups=found)
    assert removed == 16 and err < 1e-5 and model.conv.out_channels == 16 and model.fc1.out_features == 16
    report = detprune.prune(model, inputs, ratio=0.5, measure=False)  # prune() includes approximate groups
    assert model.norm.normalized_shape == (8,) and model.conv.out_channels == 8 and model.fc1.out_features == 8
    assert model(**inputs).shape == (1, 36, 4) and report.params_after < report.params_before
