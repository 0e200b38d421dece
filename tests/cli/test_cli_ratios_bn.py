"""`prune --ratios FILE.yaml` (layerwise schedule), `--schedule sequential`; `--bn-sparsity` (Network Slimming) in train and finetune."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import detprune
from detprune.cli import app
from detprune.criteria.bn_scale import bn_l1_penalty
from detprune.pipeline.recipe import load_recipe

runner = CliRunner()
TINY = ["--img-size", "64", "--threads", "1"]


def _ok(args: list[str], project: Path, name: str) -> tuple[Path, dict]:
    result = runner.invoke(app, args + ["--project", str(project), "--name", name])
    assert result.exit_code == 0, result.output
    run_dir = project / args[0] / name
    return run_dir, json.loads((run_dir / "metrics.json").read_text())


def test_prune_with_per_layer_ratios(tmp_path: Path) -> None:
    ratios = tmp_path / "ratios.yaml"
    ratios.write_text("default: 0.25\nratios:\n  stem: 0.0\n  stage2: 0.5\n  6: 0.75\n")
    run_dir, m = _ok(["prune", "-m", "yolov8n", "-c", "l1", "--ratios", str(ratios)] + TINY, tmp_path, "lw")
    base, l1 = m["rows"]
    assert l1["schedule"] == "layerwise" and base["params"] > l1["params"]
    kept = {g["modules"][0].split(" ")[0]: (g["before"], g["after"]) for g in l1["groups"]}
    assert kept["stem.conv"] == (16, 16)  # ratio 0: untouched
    assert kept["stage2.0.conv"] == (32, 16) and kept["stage2.1.cv1.conv"] == (16, 8)  # prefix stage2: 0.5
    assert kept["stage3.0.conv"] == (64, 16)  # group 6: 0.75
    assert kept["stage3.1.cv1.conv"] == (32, 24)  # the default 0.25
    cfg = load_recipe(run_dir / "config.yaml")
    assert (cfg.prune.schedule, cfg.prune.ratios, cfg.prune.ratio) == ("layerwise", str(ratios), None)
    model = detprune.load(run_dir / "weights" / "l1.safetensors")
    assert model.eval()(torch.rand(1, 3, 64, 64)) is not None


def test_prune_with_the_sequential_schedule_reaches_a_macs_target(tmp_path: Path) -> None:
    run_dir, m = _ok(["prune", "-m", "yolov8n", "-c", "l1", "--schedule", "sequential", "--target", "macs=0.5"] + TINY,
                     tmp_path, "seq")
    base, l1 = m["rows"]
    assert l1["schedule"] == "sequential" and 0.4 * base["macs"] < l1["macs"] <= 0.5 * base["macs"]
    assert all(g["after"] < g["before"] for g in l1["groups"])  # the same ratio for every group
    model = detprune.load(run_dir / "weights" / "l1.safetensors")
    assert model.eval()(torch.rand(1, 3, 64, 64)) is not None


def test_sequential_stages_reach_the_schedule_and_the_recipe(tmp_path: Path, monkeypatch) -> None:
    import detprune.schedule.sequential as sequential

    seen, real = [], sequential.sequential_prune
    monkeypatch.setattr(sequential, "sequential_prune", lambda *a, **kw: seen.append(kw["stages"]) or real(*a, **kw))
    run_dir, m = _ok(["prune", "-m", "yolov8n", "-c", "l1", "--schedule", "sequential", "--ratio", "0.25",
                      "--stages", "3"] + TINY, tmp_path, "stages")
    assert seen == [3] and load_recipe(run_dir / "config.yaml").prune.stages == 3
    assert m["rows"][1]["params"] < m["rows"][0]["params"]


@pytest.mark.parametrize("extra, words", [
    (["--schedule", "sequential", "--stages", "0"], "must be a positive integer, got 0"),
    (["--stages", "2"], "not 'local'"),
])
def test_bad_stages_exit_2_naming_the_flag(extra: list[str], words: str, tmp_path: Path) -> None:
    result = runner.invoke(app, ["prune", "-m", "yolov8n", "--ratio", "0.2", "--project", str(tmp_path)] + extra + TINY)
    assert result.exit_code == 2, result.output
    assert "--stages" in result.output and words in " ".join(result.output.split()), result.output


@pytest.mark.parametrize("content, extra, flag, words", [
    (None, [], "--ratios", "does not exist"),
    ("ratios:\n  stage2: 1.5\n", [], "--ratios", "must be a ratio in [0, 1)"),
    ("ratios: [0.5\n", [], "--ratios", "not valid YAML"),
    ("stage2: 0.5\n", ["--ratio", "0.3"], "--ratio", "not both"),
    ("stage2: 0.5\n", ["--schedule", "global"], "--ratios", "layerwise schedule"),
    ("ratios:\n  no.such.layer: 0.5\n", [], "--ratios", "match no coupling group: ['no.such.layer']"),
])
def test_bad_ratios_exit_2(content: str | None, extra: list[str], flag: str, words: str, tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    if content is not None:
        path.write_text(content)
    result = runner.invoke(app, ["prune", "-m", "yolov8n", "--ratios", str(path), "--project", str(tmp_path / "runs")]
                           + extra + TINY)
    assert result.exit_code == 2, result.output
    last = result.output.strip().splitlines()[-1]  # a key matching no group is found while pruning: after the log
    assert last.startswith("error:") and flag in last and words in last, result.output


def _gammas(path: Path) -> float:
    return float(bn_l1_penalty(detprune.load(path), 1.0).detach())


def test_train_with_bn_sparsity_shrinks_the_scales(tmp_path: Path) -> None:
    args = ["train", "-m", "yolov8n", "-d", "synthetic:16", "--epochs", "2", "--batch", "4", "--max-images", "8",
            "--eval-images", "4"] + TINY
    plain, _ = _ok(args, tmp_path, "plain")
    sparse, _ = _ok(args + ["--bn-sparsity", "0.01"], tmp_path, "sparse")
    assert load_recipe(sparse / "config.yaml").train.bn_sparsity == 0.01
    with open(sparse / "train" / "baseline" / "results.csv") as f:
        log = list(csv.DictReader(f))
    # the penalty is in the loss: 0.01 x sum |gamma| (yolov8n starts with 5200 scales at 1.0)
    assert float(log[0]["bn_l1"]) == pytest.approx(52.0, rel=0.01)
    with open(plain / "train" / "baseline" / "results.csv") as f:
        assert "bn_l1" not in f.readline()
    # same seed, data and steps: only the penalty differs, and it pulls the scales down
    sparse_sum, plain_sum = (_gammas(d / "weights" / "baseline.safetensors") for d in (sparse, plain))
    assert sparse_sum < plain_sum - 0.5


def test_finetune_with_bn_sparsity_and_its_errors(tmp_path: Path) -> None:
    run_dir, m = _ok(["finetune", "-m", "yolov8n", "-d", "synthetic:16", "--epochs", "1", "--batch", "4",
                      "--max-images", "4", "--eval-images", "4", "--bn-sparsity", "1e-3"] + TINY, tmp_path, "ft")
    assert "bn_l1" in (run_dir / "finetune" / "finetuned" / "results.csv").read_text().splitlines()[0]
    assert load_recipe(run_dir / "config.yaml").finetune.bn_sparsity == 1e-3
    result = runner.invoke(app, ["train", "-m", "yolov8n", "-d", "synthetic:16", "--bn-sparsity", "-1",
                                 "--project", str(tmp_path / "bad")] + TINY)
    assert result.exit_code == 2 and result.output.strip() == "error: --bn-sparsity: must be finite and >= 0, got -1"


def test_bn_sparsity_adapter_adds_the_penalty() -> None:
    from detprune.detection.models import BuiltinAdapter, build_model
    from detprune.pipeline.steps import BNSparsityAdapter, with_bn_sparsity

    model = build_model("yolov3-tiny", num_classes=2)
    inner = BuiltinAdapter(model)
    assert with_bn_sparsity(inner, 0.0) is inner
    wrapped = with_bn_sparsity(inner, 1e-3, log=lambda _: None)
    assert isinstance(wrapped, BNSparsityAdapter) and wrapped.model is model and wrapped.num_classes == 2
    images = torch.rand(2, 3, 64, 64)
    targets = [{"boxes": torch.tensor([[4.0, 4.0, 30.0, 30.0]]), "labels": torch.tensor([1])}] * 2
    losses = wrapped.loss(images, targets)
    assert set(losses) == set(inner.loss(images, targets)) | {"bn_l1"}
    assert float(losses["bn_l1"].detach()) == pytest.approx(float(bn_l1_penalty(model, 1e-3).detach()))
    losses["bn_l1"].backward()
    bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert torch.allclose(bn.weight.grad, 1e-3 * bn.weight.sign())
    other = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match="--bn-sparsity: .* no trainable BatchNorm"):
        with_bn_sparsity(type("A", (), {"model": other})(), 1e-3)
