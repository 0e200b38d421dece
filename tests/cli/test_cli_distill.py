"""`--distill W`: fine-tuning after pruning learns from the model before pruning (`finetune --teacher`)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import detprune
from detprune.cli import app
from detprune.detection.models import build_model
from detprune.detection.train import DistillLoss
from detprune.pipeline.models import UnsupportedError
from detprune.pipeline.recipe import load_recipe
from detprune.pipeline.steps import distill_loss

runner = CliRunner()
TINY = ["--img-size", "64", "--threads", "1"]
DATA = ["-d", "synthetic:16", "--batch", "4", "--eval-images", "4"]


def _losses(run_dir: Path, name: str) -> list[dict[str, str]]:
    with open(run_dir / "finetune" / name / "results.csv") as f:
        return list(csv.DictReader(f))


def test_prune_then_distill_from_the_model_before_pruning(tmp_path: Path) -> None:
    args = ["prune", "-m", "yolov8n", "-c", "l1", "--ratio", "0.5", "--epochs", "1"] + DATA + TINY
    result = runner.invoke(app, args + ["--distill", "4", "--project", str(tmp_path), "--name", "kd"])
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / "prune" / "kd"
    assert load_recipe(run_dir / "config.yaml").finetune.distill == 4
    rows = _losses(run_dir, "l1")
    assert float(rows[0]["distill"]) > 0  # the term is in the loss that was minimised
    assert "distilling from the YOLOv8 teacher (bce" in (run_dir / "logs" / "run.log").read_text()
    rows = json.loads((run_dir / "metrics.json").read_text())["rows"]
    assert [r["name"] for r in rows] == ["baseline", "l1"] and rows[1]["params"] < rows[0]["params"]
    # without --distill no such term
    result = runner.invoke(app, args + ["--project", str(tmp_path), "--name", "plain"])
    assert result.exit_code == 0, result.output
    assert "distill" not in _losses(tmp_path / "prune" / "plain", "l1")[0]


def test_finetune_distills_from_a_teacher_file(tmp_path: Path) -> None:
    teacher, student = build_model("yolov3-tiny", num_classes=6), build_model("yolov3-tiny", num_classes=6)
    detprune.save(teacher, tmp_path / "teacher.safetensors")
    detprune.prune(student, torch.rand(1, 3, 64, 64), "l1", ratio=0.5)
    detprune.save(student, tmp_path / "student.safetensors")
    teacher_file = str(tmp_path / "teacher.safetensors")
    result = runner.invoke(app, ["finetune", "-m", str(tmp_path / "student.safetensors"), "--epochs", "1",
                                 "--max-images", "4", "--distill", "2", "--teacher", teacher_file,
                                 "--project", str(tmp_path), "--name", "ft"] + DATA + TINY)
    assert result.exit_code == 0, result.output
    assert float(_losses(tmp_path / "finetune" / "ft", "finetuned")[0]["distill"]) > 0
    assert load_recipe(tmp_path / "finetune" / "ft" / "config.yaml").finetune.teacher == teacher_file


@pytest.mark.parametrize("args, message", [
    (["prune", "-m", "yolov8n", "--ratio", "0.3", "--distill", "4"],
     "error: --distill: distillation happens while fine-tuning; add --epochs N"),
    (["prune", "-m", "yolov8n", "--ratio", "0.3", "--epochs", "1", "--distill", "-1"] + DATA,
     "error: --distill: must be finite and >= 0, got -1"),
    (["finetune", "-m", "yolov8n", "--epochs", "1", "--distill", "4"] + DATA,
     "error: --teacher: is required by --distill without pruning (when pruning, the teacher is the model before "
     "pruning)"),
    (["finetune", "-m", "yolov8n", "--epochs", "1", "--teacher", "yolov8n"] + DATA,
     "error: --teacher: is only used with --distill W > 0"),
    (["finetune", "-m", "yolov8n", "--epochs", "1", "--distill", "4", "--teacher", "no/such.safetensors"] + DATA,
     "error: --teacher: "),
    (["finetune", "--task", "saliency", "-m", "vgg16", "--epochs", "1", "--distill", "4", "--teacher", "vgg16",
      "-d", "synthetic:16"], "error: --distill: detection only, not with --task saliency"),
])
def test_distill_errors_name_the_flag(args: list[str], message: str, tmp_path: Path) -> None:
    result = runner.invoke(app, args + ["--project", str(tmp_path)] + TINY)
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines()[-1].startswith(message), result.output


def test_distill_loss_matches_the_output_layout() -> None:
    v8, v3 = build_model("yolov8n", num_classes=2), build_model("yolov3-tiny", num_classes=2)
    loss = distill_loss(v8, build_model("yolov8n", num_classes=2), 8.0, log=lambda _: None)
    assert isinstance(loss, DistillLoss) and loss.kind == "bce" and loss.weight == 8.0
    assert loss.cls_channels == slice(4 * v8.reg_max, None)  # class logits after the box DFL logits
    assert distill_loss(v3, build_model("yolov3-tiny", num_classes=2), 1.0, log=lambda _: None).kind == "mse"
    with pytest.raises(ValueError, match="predicts 3 classes but the model 2"):
        distill_loss(v8, build_model("yolov8n", num_classes=3), 1.0, log=lambda _: None)
    with pytest.raises(ValueError, match="needs a teacher"):
        distill_loss(v8, None, 1.0, log=lambda _: None)
    from torchvision.models.detection import ssdlite320_mobilenet_v3_large

    with pytest.raises(UnsupportedError, match="the teacher is a torchvision model"):
        distill_loss(v8, ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=2), 1.0,
                     log=lambda _: None)
