"""Each command end to end on tiny inputs: exit code, run folder, table and metrics contents."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import detprune
from detprune.cli import app
from detprune.pipeline.recipe import load_recipe

runner = CliRunner()
TINY = ["--img-size", "64", "--threads", "1"]


def _ok(args: list[str], project: Path, name: str) -> tuple[str, Path, dict]:
    result = runner.invoke(app, args + ["--project", str(project), "--name", name])
    assert result.exit_code == 0, result.output
    run_dir = project / args[0] / name
    assert f"report: {run_dir / 'report.html'}" in result.output
    for rel in ("config.yaml", "metrics.json", "report.html", "report.md", "logs/run.log"):
        assert (run_dir / rel).is_file(), rel
    assert load_recipe(run_dir / "config.yaml").command == args[0]
    return result.output, run_dir, json.loads((run_dir / "metrics.json").read_text())


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("runs")


def test_train_then_prune_then_finetune(project: Path) -> None:
    out, run_dir, m = _ok(["train", "-m", "yolov8n", "-d", "synthetic:16", "--epochs", "1", "--batch", "4",
                           "--max-images", "4", "--eval-images", "4"] + TINY, project, "t")
    weights = run_dir / "weights" / "baseline.safetensors"
    assert weights.is_file() and m["rows"][0]["trained_epochs"] == 1 and "mAP50" in out
    out, run_dir, m = _ok(["prune", "-m", str(weights), "-d", "synthetic:16", "-c", "l1,l2", "--ratio", "0.4",
                           "--round-to", "4", "--eval-images", "4"] + TINY, project, "p")
    rows = {r["name"]: r for r in m["rows"]}
    assert list(rows) == ["baseline", "l1", "l2"]
    assert rows["l1"]["params"] < rows["baseline"]["params"] and rows["l1"]["ratio"] == pytest.approx(0.4)
    assert all(g["after"] % 4 == 0 or g["after"] == g["before"] for g in rows["l1"]["groups"])
    assert "l1 @ ratio 0.4" in out and "torch ms" in out
    pruned = run_dir / "weights" / "l1.safetensors"
    out, run_dir, m = _ok(["finetune", "-m", str(pruned), "-d", "synthetic:16", "--epochs", "1", "--batch", "4",
                           "--eval-images", "4"] + TINY, project, "f")
    assert [r["name"] for r in m["rows"]] == ["before", "finetuned"]
    assert m["rows"][0]["params"] == m["rows"][1]["params"] == rows["l1"]["params"]
    assert detprune.load(run_dir / "weights" / "finetuned.safetensors") is not None


def test_eval_bench_export(project: Path) -> None:
    out, run_dir, m = _ok(["eval", "-m", "yolov8n", "-d", "synthetic:16", "--max-images", "4"] + TINY, project, "e")
    assert m["eval"] == {"split": "val", "images": 4, "score_thres": 0.25} and "mAP50-95" in out
    assert (run_dir / "samples" / "detections.png").is_file()
    out, run_dir, m = _ok(["bench", "-m", "yolov3-tiny", "--runtime", "torch,onnxruntime", "--runs", "2",
                           "--warmup", "0"] + TINY, project, "b")
    lat = m["rows"][0]["latency_ms"]
    assert set(lat) == {"torch", "onnxruntime"} and all(v > 0 for v in lat.values())
    assert "onnxruntime ms" in out
    out, run_dir, m = _ok(["export", "-m", "yolov8n", "-f", "onnx"] + TINY, project, "x")
    assert (run_dir / "weights" / "model.onnx").stat().st_size > 100_000 and "onnx: weights/model.onnx" in out
    # the resolved config re-runs the same command
    result = runner.invoke(app, ["run", str(run_dir / "config.yaml"), "--project", str(project), "--name", "xr"])
    assert result.exit_code == 0, result.output
    again = json.loads((project / "export" / "xr" / "metrics.json").read_text())
    assert again["rows"][0]["macs"] == m["rows"][0]["macs"] and (project / "export" / "xr" / "weights" / "model.onnx").is_file()


def test_analyze_and_report_staircase(project: Path, tmp_path: Path) -> None:
    out, run_dir, m = _ok(["analyze", "-m", "yolov8n", "-d", "synthetic:16", "--ratios", "0.5", "--max-groups", "2",
                           "--max-images", "4"] + TINY, project, "a")
    s = m["sensitivity"]
    assert s["ratios"] == [0.5] and len(s["groups"]) == 2 and s["images"] == 4
    assert (run_dir / "plots" / "sensitivity.png").is_file() and "Sensitivity" in (run_dir / "report.md").read_text()
    stair = tmp_path / "stair.csv"
    stair.write_text("label,channels,latency_ms\nconv,8,1.0\nconv,16,1.0\nconv,24,2.0\nconv,32,2.0\n")
    result = runner.invoke(app, ["report", str(run_dir), "--staircase", str(stair)])
    assert result.exit_code == 0, result.output
    assert (run_dir / "plots" / "staircase.png").is_file()
    assert json.loads((run_dir / "metrics.json").read_text())["staircase"]["series"][0]["channels"] == [8, 16, 24, 32]
    assert "No staircase data" not in (run_dir / "report.md").read_text()


def test_analyze_proposes_ratios_that_prune_reads(project: Path) -> None:
    """Sensitivity -> per-layer ratios for a MACs target -> `prune --ratios`: the proposal is what prune does."""
    out, run_dir, m = _ok(["analyze", "-m", "yolov8n", "-d", "synthetic:16", "--ratios", "0.25,0.5,0.75",
                           "--max-groups", "4", "--max-images", "4", "--target", "macs=0.9"] + TINY, project, "ap")
    pr = m["sensitivity"]["proposal"]
    assert pr["met"] and pr["predicted"] <= pr["goal"] == 0.9 * pr["base"] and pr["file"] == "ratios.yaml"
    assert 1 <= len(pr["ratios"]) <= 4 and "Proposed per-layer ratios for `macs=0.9`" in (run_dir / "report.md").read_text()
    _, _, pruned = _ok(["prune", "-m", "yolov8n", "--num-classes", "6", "--ratios", str(run_dir / "ratios.yaml")] + TINY,
                       project, "apr")  # the 6 classes of synthetic data, as analyzed
    assert pruned["rows"][1]["macs"] == pr["predicted"]
