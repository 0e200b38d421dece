"""Wrong arguments: one line naming the argument, exit code 2, no traceback, no run folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from detprune.cli import app

runner = CliRunner()
FAST = ["--img-size", "64", "--threads", "1"]


def _invoke(args: list[str], project: Path):
    return runner.invoke(app, args + ["--project", str(project)])


@pytest.mark.parametrize("args, flag, words", [
    (["prune", "-m", "yolov8n", "--ratio", "1.5"], "--ratio", "must be in [0, 1), got 1.5"),
    (["prune", "-m", "yolov8n", "--ratio", "-0.2"], "--ratio", "must be in [0, 1)"),
    (["prune", "-m", "yolov8n", "-c", "nosuch"], "--criterion", "unknown criterion 'nosuch'"),
    (["prune", "-m", "missing.safetensors"], "--model", "does not exist"),
    (["prune", "-m", "yolov99"], "--model", "unknown model 'yolov99'"),
    (["prune", "-m", "yolov8n", "--target", "speed=2"], "--target", "cannot read target"),
    (["prune", "-m", "yolov8n", "--target", "latency=0.7@tensorrt"], "--target", "unknown runtime 'tensorrt'"),
    (["prune", "-m", "yolov8n", "--runtime", "tensorrt"], "--runtime", "unknown runtime 'tensorrt'"),
    (["prune", "-m", "yolov8n", "--target", "latency=0.7@openvino:cuda"], "--target", "unknown device 'cuda'"),
    (["prune", "-m", "yolov8n", "--runtime", "torch:tpu"], "--runtime", "unknown device 'tpu' for torch"),
    (["prune", "-m", "yolov8n", "--threads", "many"], "--threads", "'auto' or a positive integer"),
    (["eval", "-m", "yolov8n", "-d", "no/such/data.yaml"], "--data", "does not exist"),
    (["eval", "-m", "yolov8n", "-d", "synthetic:abc"], "--data", "bad synthetic spec"),
    (["train", "-m", "yolov8n", "-d", "synthetic:8", "--epochs", "0"], "--epochs", "must be >= 1"),
    (["train", "-m", "yolov8n", "-d", "synthetic:8", "--lr", "inf"], "--lr", "must be a finite number > 0"),
    (["train", "-m", "yolov8n", "-d", "synthetic:8", "--bn-sparsity", "inf"], "--bn-sparsity", "must be finite"),
    (["export", "-m", "yolov8n", "-f", "tflite"], "--format", "unknown format 'tflite'"),
    (["analyze", "-m", "yolov8n", "-d", "synthetic:8", "--ratios", "0.5,1.2"], "--ratios", "must be in (0, 1)"),
    (["analyze", "-m", "yolov8n", "-d", "synthetic:8", "--ratios", "a,b"], "--ratios", "comma-separated numbers"),
    (["bench", "-m", "torchvision:nope"], "--model", "unknown torchvision detector"),
    (["prune", "-m", "yolov8n", "-c", "l1", "-o", "tau=0.1"], "--option", "criterion 'l1' takes no option 'tau'"),
    (["prune", "-m", "yolov8n", "-d", "synthetic:8", "-c", "attribution", "-o", "taus=0.1"], "--option",
     "'attribution' takes classes, combine, detected_only, fallback, hook, mask_from, normalize, reduction, space, tau,"),
    (["prune", "-m", "yolov8n", "-c", "l1,fpgm", "-o", "tau=0.1"], "--option",
     "none of ['l1', 'fpgm'] takes option 'tau'"),
    (["prune", "-m", "yolov8n", "-o", "novalue"], "--option", "expected KEY=VALUE"),
    (["prune", "-m", "yolov8n", "-d", "synthetic:8", "-c", "attribution", "-o", "detected_only=true"], "--option",
     "detected_only=True restricts the label mask: it needs use_labels=True"),
    (["prune", "-m", "yolov8n", "--schedule", "cluster"], "--target", "cluster pruning needs a target"),
    (["prune", "-m", "yolov8n", "--schedule", "magic", "--ratio", "0.2"], "--schedule", "must be one of"),
    (["prune", "-m", "yolov8n", "--schedule", "sequential", "--target", "latency=0.5"], "--target",
     "reaches a macs or params target"),
    (["prune", "-m", "yolov8n", "--ratio", "0.2", "--lut", "t.json"], "--lut", "read by the cluster schedule"),
    (["prune", "-m", "yolov8n", "--schedule", "cluster", "--target", "macs=0.5", "--lut", "no/t.json"], "--lut",
     "does not exist"),
])
def test_bad_arguments_exit_2_naming_the_argument(args: list[str], flag: str, words: str, tmp_path: Path) -> None:
    result = _invoke(args + (FAST if "--threads" not in args else FAST[:2]), tmp_path)
    assert result.exit_code == 2, result.output
    out = result.output.strip()
    assert out.startswith("error:") and len(out.splitlines()) == 1, out
    assert flag in out and words in out, out
    assert "Traceback" not in out
    assert not tmp_path.exists() or not any(tmp_path.iterdir()), "a failed validation must not create a run folder"


def test_run_reports_recipe_keys(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model: yolov8n\nprune:\n  ratoi: 0.3\n")
    result = runner.invoke(app, ["run", str(recipe)])
    assert result.exit_code == 2 and "prune.ratoi: unknown key" in result.output
    recipe.write_text("model: yolov8n\nprune:\n  ratio: 2\n")
    result = runner.invoke(app, ["run", str(recipe)])
    assert result.exit_code == 2 and "prune.ratio: must be in [0, 1)" in result.output
    result = runner.invoke(app, ["run", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 2 and "does not exist" in result.output and "Traceback" not in result.output


def test_report_needs_a_run_folder(tmp_path: Path) -> None:
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "RUN_DIR" in result.output and "no metrics.json" in result.output


@pytest.mark.parametrize("text, words", [('{"rows": [', "metrics.json: not valid JSON"),
                                         ("[1, 2]", "metrics.json: not a detprune metrics file"),
                                         ('{"rows": 5}', "metrics.json: not a detprune metrics file")])
def test_report_names_a_broken_metrics_file(tmp_path: Path, text: str, words: str) -> None:
    (tmp_path / "metrics.json").write_text(text)
    result = runner.invoke(app, ["report", str(tmp_path)])
    out = result.output.strip()
    assert result.exit_code == 2 and len(out.splitlines()) == 1 and words in out, out


def test_data_class_mismatch_is_one_line(tmp_path: Path) -> None:
    result = _invoke(["eval", "-m", "yolov8n", "-d", "synthetic:8", "--num-classes", "3"] + FAST, tmp_path)
    assert result.exit_code == 2 and "6 classes but the model predicts 3" in result.output


@pytest.mark.parametrize("command", ["demo", "train", "prune", "finetune", "eval", "bench", "export", "analyze",
                                     "inspect", "report", "run", "lut"])
def test_every_command_has_help_with_examples(command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0 and "Examples:" in result.output and f"detprune {command}" in result.output


def test_unexpected_failure_is_one_line_with_traceback_in_the_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import detprune.pipeline.runner as runner_module

    def boom(*args, **kwargs):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(runner_module, "run_recipe", boom)
    result = runner.invoke(app, ["bench", "-m", "yolov8n", "--project", str(tmp_path), "--name", "x"] + FAST)
    assert result.exit_code == 2
    out = result.output.strip()
    assert len(out.splitlines()) == 1 and out.startswith("error: RuntimeError: boom (traceback in ")
    log = (tmp_path / "bench" / "x" / "logs" / "run.log").read_text()
    assert "Traceback" in log and "second line" in log


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a CUDA GPU")
@pytest.mark.parametrize("args, flag", [
    (["prune", "-m", "yolov8n", "--target", "latency=0.7@torch:cuda"], "--target"),
    (["prune", "-m", "yolov8n", "--schedule", "cluster", "--target", "macs=0.5", "--runtime", "torch:cuda"],
     "--runtime"),
    (["bench", "-m", "yolov8n", "--runtime", "torch,torch:cuda"], "--runtime"),
])
def test_an_absent_gpu_is_refused_before_any_work(args: list[str], flag: str, tmp_path: Path) -> None:
    """A GPU timing must not quietly become a CPU one, nor fail after minutes of pruning."""
    result = _invoke(args + FAST, tmp_path)
    out = result.output.strip()
    assert result.exit_code == 2 and out.startswith("error:") and flag in out, out
    assert "torch:cuda:0: no such device on this machine" in out, out
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_error_text_keeps_its_quotes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = _invoke(["bench", "-m", "yolov8n", "--name", "a/b"] + FAST, tmp_path)
    assert result.exit_code == 2 and result.output.strip().endswith("got 'a/b'"), result.output
    import detprune.pipeline.runner as runner_module

    def missing(*args, **kwargs):
        raise KeyError("'x' is not a stage")

    monkeypatch.setattr(runner_module, "run_recipe", missing)
    result = _invoke(["bench", "-m", "yolov8n", "--name", "k"] + FAST, tmp_path)
    assert result.exit_code == 2 and result.output.strip() == "error: 'x' is not a stage", result.output
