from typer.testing import CliRunner

from detprune.cli import app

runner = CliRunner()


def test_inspect_builtin() -> None:
    result = runner.invoke(app, ["inspect", "--model", "yolov3-tiny", "--size", "128", "--num-classes", "3"])
    assert result.exit_code == 0, result.output
    assert "Coupling groups" in result.output and "model output" in result.output
    assert "13 groups, 10 prunable" in result.output


def test_inspect_unknown_model_exits_2() -> None:
    result = runner.invoke(app, ["inspect", "--model", "nope"])
    assert result.exit_code == 2
    assert "--model nope" in result.output and "Traceback" not in result.output


def test_inspect_saved_file(tmp_path) -> None:
    import torch

    import detprune
    from detprune.detection.models import build_model

    model = build_model("yolov3-tiny", num_classes=3).eval()
    detprune.prune(model, torch.rand(1, 3, 128, 128), ratio=0.5, measure=False)
    path = detprune.save(model, tmp_path / "tiny.safetensors")
    result = runner.invoke(app, ["inspect", "--model", str(path), "--size", "128"])
    assert result.exit_code == 0, result.output
    assert "8 / 8" in result.output  # conv0: 16 -> 8 channels after pruning


def test_inspect_bad_size_or_classes_is_one_line() -> None:
    for args, flag in ((["--size", "0"], "--size"), (["--size", "40"], "--size"), (["--num-classes", "0"], "--num-classes")):
        result = runner.invoke(app, ["inspect", "--model", "yolov8n", *args])
        assert result.exit_code == 2, result.output
        assert f"error: {flag}" in result.output and "Traceback" not in result.output


def test_inspect_prunable_only_hides_fully_pinned_groups() -> None:
    """--all was a flag defaulting to True, so fully pinned groups could not be hidden; --prunable-only does."""
    args = ["inspect", "--model", "yolov3-tiny", "--size", "128", "--num-classes", "3"]
    full = runner.invoke(app, args)
    short = runner.invoke(app, args + ["--prunable-only"])
    assert full.exit_code == 0 and short.exit_code == 0, short.output
    assert "model output" in full.output and "model output" not in short.output  # the pinned prediction convs
    assert "13 groups, 10 prunable" in short.output  # the summary still counts every group
    assert runner.invoke(app, args + ["--all"]).output == full.output
