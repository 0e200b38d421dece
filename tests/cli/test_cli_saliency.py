"""``--task saliency``: train / prune / finetune / eval the VGG16 salient-object net end to end on a tiny synthetic set.

Every run must leave a run folder with the resolved config, a loadable checkpoint, ``metrics.json`` holding the
six SOD metrics per model (in range) and a report (HTML + Markdown) showing them before/after.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import detprune
from detprune.api import count_params
from detprune.cli import app
from detprune.pipeline.recipe import load_recipe
from detprune.saliency import SaliencyNet

runner = CliRunner()
DATA = "synthetic:8"  # 8 training images, 8 val, 8 test
TINY = ["--task", "saliency", "--img-size", "32", "--threads", "1"]
SIX = ("mae", "max_f", "mean_f", "wf", "sm", "em")
HEADERS = ("MAE ↓", "max F ↑", "mean F ↑", "wF ↑", "S ↑", "E ↑")


@pytest.fixture(scope="module", autouse=True)
def _cache(tmp_path_factory: pytest.TempPathFactory):
    """Generate the synthetic split into a private cache, not the user's."""
    mp = pytest.MonkeyPatch()
    mp.setenv("DETPRUNE_CACHE", str(tmp_path_factory.mktemp("cache")))
    torch.set_num_threads(1)
    yield
    mp.undo()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("runs")


def _ok(args: list[str], project: Path, name: str) -> tuple[str, Path, dict]:
    result = runner.invoke(app, args + ["--project", str(project), "--name", name])
    assert result.exit_code == 0, result.output
    run_dir = project / args[0] / name
    for rel in ("config.yaml", "metrics.json", "report.html", "report.md", "logs/run.log"):
        assert (run_dir / rel).is_file(), rel
    recipe = load_recipe(run_dir / "config.yaml")
    assert recipe.command == args[0] and recipe.task == "saliency"
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m["task"] == "saliency"
    return result.output, run_dir, m


def _check_metrics(row: dict) -> None:
    for key in SIX:
        assert 0.0 <= row[key] <= 1.0, (key, row[key])
    assert row["images"] == 8


def _check_report(run_dir: Path, names: list[str]) -> None:
    md = (run_dir / "report.md").read_text()
    html = (run_dir / "report.html").read_text()
    header = next(line for line in md.splitlines() if line.startswith("| model"))
    assert all(h in header for h in HEADERS), header
    for name in names:
        assert f"| {name} |" in md and f"<td class=\"l\">{name}</td>" in html
    assert "Salient-object metrics on 8 images" in md and "S-measure" in html
    assert (run_dir / "samples" / "saliency.png").is_file() and "data:image/png;base64," in html
    assert "Latency staircase" not in md  # a detector-only section


@pytest.fixture(scope="module")
def trained(project: Path) -> tuple[str, Path, dict]:
    return _ok(["train", "-m", "vgg16", "--width", "0.125", "-d", DATA, "--epochs", "1", "--batch", "4"] + TINY,
               project, "train")


def test_train(trained: tuple[str, Path, dict]) -> None:
    out, run_dir, m = trained
    row = m["rows"][0]
    assert row["trained_epochs"] == 1 and row["checkpoint"] == "weights/baseline.safetensors"
    _check_metrics(row)
    assert m["saliency_eval"] == {"split": "val", "images": 8}
    assert m["architecture"] == {"name": "vgg16", "width": 0.125}
    cfg = load_recipe(run_dir / "config.yaml")
    assert (cfg.width, cfg.img_size, cfg.train.optimizer, cfg.train.lr) == (0.125, 32, "adamw", 1e-3)
    assert (run_dir / "train" / "baseline" / "results.csv").read_text().startswith("epoch,lr,bce,iou,loss")
    model = detprune.load(run_dir / "weights" / "baseline.safetensors")
    assert isinstance(model, SaliencyNet) and count_params(model) == row["params"]
    assert model.eval()(torch.rand(1, 3, 32, 32)).shape == (1, 1, 32, 32)
    assert "train (saliency)" in out and "MAE" in out
    _check_report(run_dir, ["baseline"])


@pytest.fixture(scope="module")
def pruned(trained: tuple[str, Path, dict], project: Path) -> tuple[str, Path, dict]:
    weights = trained[1] / "weights" / "baseline.safetensors"
    return _ok(["prune", "-m", str(weights), "-d", DATA, "-c", "wrg,hrank,l1,random", "--target", "params=0.4",
                "--epochs", "1", "--batch", "4", "--calib-batches", "1"] + TINY, project, "prune")


def test_prune_to_a_params_target_then_finetune(pruned: tuple[str, Path, dict]) -> None:
    out, run_dir, m = pruned
    rows = {r["name"]: r for r in m["rows"]}
    assert list(rows) == ["baseline", "wrg", "hrank", "l1", "random"]
    base = rows["baseline"]["params"]
    assert m["target"] == {"text": "params=0.4", "metric": "params", "goal": pytest.approx(0.4 * base), "base": base}
    for name in ("wrg", "hrank", "l1", "random"):
        row = rows[name]
        _check_metrics(row)
        assert row["role"] == "finetuned" and row["finetune_epochs"] == 1 and 0 < row["ratio"] < 1
        # the bisection stops at the nearest whole-channel step: about 1 % of the parameters at this tiny width
        assert row["params"] == pytest.approx(0.4 * base, abs=0.02 * base) and row["target"]["met"]
        assert row["macs"] < rows["baseline"]["macs"]
        for ckpt in (row["checkpoint"], row["pruned_checkpoint"]):  # fine-tuned and right after pruning
            model = detprune.load(run_dir / ckpt)
            assert isinstance(model, SaliencyNet) and count_params(model) == row["params"]
            assert model.eval()(torch.rand(2, 3, 32, 32)).shape == (2, 1, 32, 32)
    assert rows["wrg"]["groups"] and all(g["after"] <= g["before"] for g in rows["wrg"]["groups"])
    _check_report(run_dir, list(rows))
    md = (run_dir / "report.md").read_text()
    assert "Target `params=0.4`" in md
    wrg_line = next(line for line in md.splitlines() if line.startswith("| wrg |"))
    assert wrg_line.count(" (+") + wrg_line.count(" (-") >= 6  # each metric's change from the baseline
    assert "prune (saliency)" in out and "wrg @ ratio" in out


def test_prune_by_ratio_without_data(trained: tuple[str, Path, dict], project: Path) -> None:
    weights = trained[1] / "weights" / "baseline.safetensors"
    _, run_dir, m = _ok(["prune", "-m", str(weights), "-c", "l1", "--ratio", "0.5"] + TINY, project, "ratio")
    base, l1 = m["rows"]
    assert l1["ratio"] == pytest.approx(0.5) and l1["params"] < 0.5 * base["params"]
    assert "sm" not in l1 and "saliency_eval" not in m  # nothing evaluated without --data
    assert count_params(detprune.load(run_dir / "weights" / "l1.safetensors")) == l1["params"]


def test_finetune(pruned: tuple[str, Path, dict], project: Path) -> None:
    ckpt = pruned[1] / "weights" / "wrg-pruned.safetensors"
    _, run_dir, m = _ok(["finetune", "-m", str(ckpt), "-d", DATA, "--epochs", "1", "--batch", "4"] + TINY,
                        project, "finetune")
    before, tuned = m["rows"]
    assert (before["name"], tuned["name"]) == ("before", "finetuned")
    assert before["params"] == tuned["params"] == pruned[2]["rows"][1]["params"]
    _check_metrics(before)
    _check_metrics(tuned)
    assert load_recipe(run_dir / "config.yaml").finetune.lr == 3e-4
    assert count_params(detprune.load(run_dir / "weights" / "finetuned.safetensors")) == tuned["params"]
    _check_report(run_dir, ["before", "finetuned"])


def test_eval_rerun_and_report(pruned: tuple[str, Path, dict], project: Path) -> None:
    ckpt = pruned[1] / "weights" / "wrg.safetensors"
    out, run_dir, m = _ok(["eval", "-m", str(ckpt), "-d", DATA, "--split", "test"] + TINY, project, "eval")
    (row,) = m["rows"]
    _check_metrics(row)
    assert m["saliency_eval"]["split"] == "test" and row["params"] == pruned[2]["rows"][1]["params"]
    assert all(h in out for h in HEADERS)
    # the resolved config re-runs the same evaluation
    result = runner.invoke(app, ["run", str(run_dir / "config.yaml"), "--project", str(project), "--name", "rerun"])
    assert result.exit_code == 0, result.output
    again = json.loads((project / "eval" / "rerun" / "metrics.json").read_text())["rows"][0]
    assert {k: again[k] for k in SIX} == pytest.approx({k: row[k] for k in SIX})
    # `detprune report` re-renders with the saliency table
    (run_dir / "report.md").unlink()
    result = runner.invoke(app, ["report", str(run_dir)])
    assert result.exit_code == 0, result.output
    _check_report(run_dir, ["model"])


def test_eval_on_a_folder_of_images_and_masks(trained: tuple[str, Path, dict], project: Path, tmp_path: Path) -> None:
    from detprune.saliency.synthetic import render_sample

    for sub in ("images", "masks"):
        (tmp_path / "sod" / sub).mkdir(parents=True)
    for i in range(3):
        image, mask = render_sample(7, i, size=48)
        Image.fromarray(image).save(tmp_path / "sod" / "images" / f"im{i}.jpg")
        Image.fromarray(mask).save(tmp_path / "sod" / "masks" / f"im{i}.png")
    weights = trained[1] / "weights" / "baseline.safetensors"
    _, run_dir, m = _ok(["eval", "-m", str(weights), "-d", str(tmp_path / "sod"), "--task", "saliency",
                         "--img-size", "32", "--threads", "1"], project, "folder")
    row = m["rows"][0]
    assert row["images"] == 3 and all(0 <= row[k] <= 1 for k in SIX)
    assert np.isfinite([row[k] for k in SIX]).all()


@pytest.mark.parametrize("args, flag, words", [
    (["train", "-m", "vgg16", "-d", DATA, "--task", "segmentation"], "--task", "must be one of detection, saliency"),
    (["train", "-m", "vgg16", "-d", DATA, "--task", "saliency", "--mosaic", "0.5"], "--mosaic", "detection only"),
    (["eval", "-m", "vgg16", "-d", DATA, "--task", "saliency", "--num-classes", "3"], "--num-classes",
     "detection only"),
    (["prune", "-m", "vgg16", "--task", "saliency", "--schedule", "cluster", "--target", "macs=0.5"], "--schedule",
     "cluster pruning is for detectors"),
    (["eval", "-m", "yolov8n", "-d", DATA, "--task", "saliency"], "--model", "unknown saliency model 'yolov8n'"),
    (["train", "-m", "vgg16", "-d", DATA, "--task", "saliency", "--width", "1.5"], "--width", "must be in (0, 1]"),
    (["train", "-m", "yolov8n", "-d", DATA, "--width", "0.5"], "--width", "only with --task saliency"),
    (["eval", "-m", "vgg16", "-d", "no/such/folder", "--task", "saliency"], "--data", "does not exist"),
    (["prune", "-m", "vgg16", "--task", "saliency", "--ratio", "1.2"], "--ratio", "must be in [0, 1)"),
    (["prune", "-m", "vgg16", "--task", "saliency", "-c", "nosuch"], "--criterion", "unknown criterion 'nosuch'"),
    (["prune", "-m", "vgg16", "--task", "saliency", "-c", "l1,attribution"], "--criterion",
     "'attribution' scores detection class outputs"),
])
def test_bad_arguments_exit_2_naming_the_argument(args: list[str], flag: str, words: str, tmp_path: Path) -> None:
    result = runner.invoke(app, args + ["--threads", "1", "--project", str(tmp_path)])
    assert result.exit_code == 2, result.output
    out = result.output.strip()
    assert out.startswith("error:") and len(out.splitlines()) == 1 and "Traceback" not in out, out
    assert flag in out and words in out, out
    assert not any(tmp_path.iterdir()), "a failed validation must not create a run folder"


def test_data_folder_without_masks_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "data" / "images").mkdir(parents=True)
    result = runner.invoke(app, ["eval", "-m", "vgg16", "-d", str(tmp_path / "data"), "--task", "saliency",
                                 "--project", str(tmp_path / "runs")])
    assert result.exit_code == 2 and "--data" in result.output and "not a saliency dataset" in result.output


def test_saliency_checkpoint_without_the_task_flag_says_so(trained: tuple[str, Path, dict], tmp_path: Path) -> None:
    weights = trained[1] / "weights" / "baseline.safetensors"
    result = runner.invoke(app, ["eval", "-m", str(weights), "-d", "synthetic:8", "--img-size", "32", "--threads", "1",
                                 "--project", str(tmp_path)])
    out = result.output.strip()
    assert result.exit_code == 2 and len(out.splitlines()) == 1 and out.startswith("error: --model:"), out
    assert "is a salient-object model: add --task saliency" in out and not any(tmp_path.iterdir())
