"""--classes in the pipeline: the one-class specialisation of the attribution paper, end to end."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

import detprune
from detprune.cli import app
from detprune.detection.data import build_dataset
from detprune.pipeline.data import load_split
from detprune.pipeline.models import make_adapter
from detprune.pipeline.recipe import EvalSpec, FinetuneSpec, PruneSpec, Recipe
from detprune.report.format import describe

runner = CliRunner()


@pytest.fixture(scope="module")
def mango_run(tmp_path_factory: pytest.TempPathFactory, run: Callable[[Recipe, Path], dict]) -> tuple[Path, dict]:
    run_dir = tmp_path_factory.mktemp("mango")
    recipe = Recipe(model="yolov8n", data="synthetic:16", img_size=64, threads=1, command="prune", classes=["mango"],
                    prune=PruneSpec(criteria=["attribution", "l1"], target="macs=0.6", calib_batches=1, calib_batch=4),
                    finetune=FinetuneSpec(epochs=1, batch=4, max_images=4), eval=EvalSpec(max_images=4, batch=4))
    return run_dir, run(recipe, run_dir)


def test_the_data_is_relabelled_to_the_kept_classes() -> None:
    full = build_dataset("synthetic:16", "train", img_size=64)
    mango = full.names.index("mango")
    split = load_split("synthetic:16", "train", 64, classes=["mango"])
    assert split.names == ["mango"] and len(split) == len(full)  # images without mangos stay, as negatives
    kept = [split.dataset[i][1]["labels"] for i in range(len(split))]
    assert all((labels == 0).all() for labels in kept)
    assert sum(len(k) for k in kept) == sum(int((full[i][1]["labels"] == mango).sum()) for i in range(len(full)))


def test_a_specialised_run_slices_prunes_and_tunes_for_the_kept_class(mango_run: tuple[Path, dict]) -> None:
    run_dir, metrics = mango_run
    assert metrics["classes"] == ["mango"]
    rows = {r["name"]: r for r in metrics["rows"]}
    assert describe(rows["baseline"]) == "specialised to mango"
    for name in ("baseline", "attribution", "l1"):
        assert set(rows[name]["per_class"]) == {"mango"}, name  # evaluated on the relabelled data
    for name in ("attribution", "l1"):
        assert rows[name]["macs"] <= 0.6 * rows["baseline"]["macs"] and rows[name]["role"] == "finetuned"
        model = detprune.load(run_dir / "weights" / f"{name}.safetensors")
        assert make_adapter(model).num_classes == 1 and list(model.names) == ["mango"]
    assert "classes:\n- mango" in (run_dir / "config.yaml").read_text()  # `detprune run config.yaml` repeats it


def test_a_specialised_checkpoint_is_evaluated_on_the_full_data_without_slicing_again(
        mango_run: tuple[Path, dict], tmp_path: Path, run: Callable[[Recipe, Path], dict]) -> None:
    run_dir, metrics = mango_run
    recipe = Recipe(model=str(run_dir / "weights" / "l1.safetensors"), data="synthetic:16", img_size=64, threads=1,
                    command="eval", classes=["mango"], eval=EvalSpec(max_images=4, batch=4))
    again = run(recipe, tmp_path)
    row = again["rows"][0]
    assert set(row["per_class"]) == {"mango"} and row["params"] == next(
        r["params"] for r in metrics["rows"] if r["name"] == "l1")


@pytest.mark.parametrize("args, words", [
    (["prune", "-m", "yolov8n", "-d", "synthetic:8", "--classes", "durian"],
     "--classes: unknown class name 'durian'; known: ['apple'"),
    (["prune", "-m", "yolov8n", "-d", "synthetic:8", "--classes", "mango,mango"], "--classes: classes must be distinct"),
    (["prune", "-m", "yolov8n", "-d", "synthetic:8", "--classes", "7"], "--classes: classes must be distinct indices in [0, 6)"),
    (["prune", "-m", "yolov8n", "--classes", "mango"], "--classes: class names need --data"),
    (["prune", "-m", "ultralytics:yolov8n.yaml", "-d", "synthetic:8", "--classes", "mango,apple", "--epochs", "1"],
     "--classes: Ultralytics' trainer keeps one class of the data's labels (as class 0) but cannot renumber"),
    (["eval", "--task", "saliency", "-m", "vgg16", "-d", "synthetic:8", "--classes", "0"], "--classes: specialisation"),
])
def test_bad_classes_exit_2_before_any_work(args: list[str], words: str, tmp_path: Path) -> None:
    result = runner.invoke(app, args + ["--img-size", "64", "--threads", "1", "--project", str(tmp_path)])
    out = result.output.strip()
    assert result.exit_code == 2 and out.startswith("error:") and words in out, out
    assert not any(tmp_path.iterdir())


def test_an_ultralytics_model_is_fine_tuned_on_its_one_kept_class(tmp_path: Path) -> None:
    """Ultralytics' trainer reads the YOLO labels itself: the kept class reaches it as its own filter."""
    pytest.importorskip("ultralytics")
    import yaml

    result = runner.invoke(app, ["prune", "-m", "ultralytics:yolov8n.yaml", "-d", "synthetic:8", "--classes", "mango",
                                 "-c", "l1", "--ratio", "0.3", "--epochs", "1", "--batch", "4", "--eval-images", "4",
                                 "--img-size", "64", "--threads", "1", "--project", str(tmp_path), "--name", "u"])
    assert result.exit_code == 0, result.output
    run = tmp_path / "prune" / "u"
    args = yaml.safe_load((run / "finetune" / "l1" / "ultralytics" / "args.yaml").read_text())
    assert args["single_cls"] is True and args["classes"] == [1]  # mango is class 1 of the synthetic data
    assert make_adapter(detprune.load(run / "weights" / "l1.safetensors")).num_classes == 1
