"""DistillLoss on raw forward outputs, standalone and inside fit."""

from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from detprune.detection.train import DistillLoss, TrainConfig, fit, seed_everything
from detprune.detection.train.toy import ToyAdapter, ToyBoxes, ToyDetector, collate


pytestmark = pytest.mark.usefixtures("one_thread")


def _pair(width_s: int = 8) -> tuple[ToyDetector, ToyDetector]:
    seed_everything(0)
    return ToyDetector(width=16), ToyDetector(width=width_s)  # a "pruned" student: narrower body, same head


def test_mse_and_kl_values() -> None:
    t, s = _pair()
    d = DistillLoss(t, s, weight=2.0, kind="mse")
    a, b = [torch.randn(2, 7, 4, 4)], [torch.randn(2, 7, 4, 4)]
    assert d(a, a).item() == pytest.approx(0.0)
    assert d(a, b).item() == pytest.approx(2.0 * torch.mean((a[0] - b[0]) ** 2).item(), rel=1e-5)

    kl = DistillLoss(t, s, kind="kl", cls_channels=slice(4, 7))
    assert kl(a, a).item() == pytest.approx(0.0, abs=1e-6)
    box_only = [b[0].clone()]
    box_only[0][:, 4:] = a[0][:, 4:]  # same class logits: only the box MSE remains
    expected_box = torch.mean((a[0][:, :4] - b[0][:, :4]) ** 2).item()
    assert kl(a, box_only).item() == pytest.approx(expected_box, rel=1e-5)
    shifted = [a[0].clone()]
    shifted[0][:, 4:] += 5.0  # softmax is shift-invariant: KL stays 0
    assert kl(a, shifted).item() == pytest.approx(0.0, abs=1e-5)
    bce = DistillLoss(t, s, kind="bce", cls_channels=slice(4, 7))
    assert bce(a, shifted).item() > bce(a, a).item()


def test_shape_and_type_errors() -> None:
    t, s = _pair()
    d = DistillLoss(t, s)
    with pytest.raises(ValueError, match=r"identical shapes.*output\[1\]"):
        d([torch.zeros(1, 3), torch.zeros(1, 4)], [torch.zeros(1, 3), torch.zeros(1, 5)])
    with pytest.raises(ValueError, match="2 output maps"):
        d([torch.zeros(1), torch.zeros(1)], [torch.zeros(1)])
    with pytest.raises(TypeError, match="dict"):
        d({"loss": torch.zeros(())}, {"loss": torch.zeros(())})
    with pytest.raises(ValueError):
        DistillLoss(t, s, kind="l1")


def test_teacher_is_frozen_and_keeps_bn_stats() -> None:
    t, s = _pair()
    d = DistillLoss(ToyAdapter(t), s)  # adapters are accepted
    assert not any(p.requires_grad for p in t.parameters())
    before = t.body[1].running_mean.clone()
    s.train()
    out = d.teacher_forward(torch.rand(2, 3, 32, 32))
    assert torch.equal(t.body[1].running_mean, before)
    assert not out[0].requires_grad
    assert t.training  # mode restored (modules default to train)


def test_fit_with_distillation_pulls_student_to_teacher(tmp_path: Path) -> None:
    teacher, student = _pair()
    loader = DataLoader(ToyBoxes(8, 32), batch_size=4, shuffle=True, collate_fn=collate)
    x = torch.rand(4, 3, 32, 32)
    teacher.eval()
    student.eval()

    def gap() -> float:
        with torch.no_grad():
            return (teacher(x)[0] - student(x)[0]).pow(2).mean().item()

    gap0 = gap()
    distill = DistillLoss(teacher, student, weight=50.0)
    cfg = TrainConfig(lr=0.05, warmup_epochs=0, ema=False, progress=False)
    result = fit(ToyAdapter(student), loader, 4, cfg=cfg, run_dir=tmp_path, distill=distill)
    assert "distill" in result.history[0]
    assert result.history[-1]["distill"] < result.history[0]["distill"]
    assert gap() < gap0
    assert distill._handle is None  # hook removed after fit
    assert not any(p.requires_grad for p in teacher.parameters())


def test_fit_rejects_dict_outputs(tmp_path: Path) -> None:
    class DictModel(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = ToyDetector()
            self.num_classes = 3

        def forward(self, x):
            return {"map": self.inner(x)[0]}

    class DictAdapter(ToyAdapter):
        def _pooled(self, images):
            out = self.model(images)["map"].mean((2, 3))
            return out[:, :4].sigmoid() * images.shape[-1], out[:, 4:]

    student, teacher = DictModel(), DictModel()
    loader = DataLoader(ToyBoxes(4, 32), batch_size=4, collate_fn=collate)
    with pytest.raises(TypeError, match="lists/tuples of tensors"):
        fit(
            DictAdapter(student),
            loader,
            1,
            cfg=TrainConfig(progress=False),
            run_dir=tmp_path,
            distill=DistillLoss(teacher, student),
        )
