"""--steps: iterative pruning in the pipeline (prune -> fine-tune rounds, early stop, per-step checkpoints)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import detprune
from detprune.cli import app
from detprune.deploy import count_macs
from detprune.pipeline.recipe import EvalSpec, FinetuneSpec, PruneSpec, Recipe
from detprune.report.format import describe

runner = CliRunner()


def _recipe(**prune: object) -> Recipe:
    return Recipe(model="demo-baseline", data="synthetic:16", img_size=128, threads=1, command="prune",
                  prune=PruneSpec(criteria=["l1"], target="macs=0.6", steps=2, **prune),
                  finetune=FinetuneSpec(epochs=1, batch=4, max_images=4), eval=EvalSpec(max_images=8, batch=8))


def test_steps_prune_and_tune_in_rounds_recording_every_step(tmp_path: Path, run: Callable[[Recipe, Path], dict]) -> None:
    metrics = run(_recipe(step_schedule="linear"), tmp_path)
    it = metrics["iterative"]["l1"]
    base, row = metrics["rows"][0], metrics["rows"][1]
    assert [s["step"] for s in it["steps"]] == [1, 2] and it["kept_step"] == 2 and not it["stopped_early"]
    macs = [s["macs"] for s in it["steps"]]
    assert base["macs"] > macs[0] > macs[1] and macs[1] <= 0.6 * base["macs"] == pytest.approx(0.6 * it["baseline_macs"])
    assert macs[0] == pytest.approx(0.8 * base["macs"], rel=0.05)  # linear: half of the cut per step
    assert all(s["map_before"] is not None and s["map_after"] is not None for s in it["steps"])
    assert row["macs"] == macs[1] and row["finetune_epochs"] == 2 and describe(row) == "l1 in 2 steps, fine-tuned 2 ep"
    for step, path in zip((1, 2), it["checkpoints"]):
        assert path == f"weights/l1-step{step}.safetensors"
        assert count_macs(detprune.load(tmp_path / path), torch.rand(1, 3, 128, 128)) == macs[step - 1]
    assert (tmp_path / "plots" / "iterative_l1.png").is_file()
    assert "## Iterative pruning: l1" in (tmp_path / "report.md").read_text()


def test_max_drop_stops_and_keeps_the_last_acceptable_step(tmp_path: Path, run: Callable[[Recipe, Path], dict]) -> None:
    metrics = run(_recipe(max_drop=0.0), tmp_path)  # any loss of mAP50 stops at step 1
    it, base, row = metrics["iterative"]["l1"], metrics["rows"][0], metrics["rows"][1]
    assert it["stopped_early"] and it["kept_step"] == 0 and len(it["steps"]) == 1
    assert it["steps"][0]["map_after"] < it["baseline_map"]
    assert row["macs"] == base["macs"] and row["role"] == "pruned"  # rolled back to the unpruned model
    assert "(stopped at the mAP limit)" in describe(row) and "Stopped early" in (tmp_path / "report.md").read_text()


@pytest.mark.parametrize("args, words", [
    (["--ratio", "0.3", "--steps", "0"], "--steps: must be >= 1"),
    (["--ratio", "0.3", "--max-drop", "0.02"], "--max-drop: stops iterative pruning early; add --steps N"),
    (["--ratio", "0.3", "--steps", "2", "--step-schedule", "cubic"], "--step-schedule: must be one of linear, geometric"),
    (["--target", "macs=0.5", "--steps", "2", "--schedule", "cluster"], "--steps: iterative pruning uses the local"),
    (["--target", "params=200k", "--steps", "2"], "--target: iterative pruning needs a relative target"),
    (["--ratio", "0.3", "--schedule", "global", "--max-ratio", "1.5"], "--max-ratio: must be in (0, 1]"),
    (["-m", "ultralytics:yolov8n.yaml", "-d", "synthetic:8", "--ratio", "0.3", "--steps", "2", "--epochs", "1"],
     "--steps: iterative pruning fine-tunes the model in place"),
    (["--ratio", "0.3", "--schedule", "global", "--min-channels", "0"], "--min-channels: must be >= 1"),
    (["--target", "macs=0.5", "--schedule", "cluster", "--pricing", "fastest"], "--pricing: must be one of"),
    (["--ratio", "0.3", "--pricing", "best"], "--pricing: prices the cluster schedule's steps, not 'local'"),
    (["--target", "macs=0.5", "--schedule", "cluster", "--pricing", "best", "--finetune-every", "2"],
     "--finetune-every: --pricing best prunes twice"),
    (["--target", "latency=0.7", "--schedule", "cluster", "--margin", "0.5"], "--margin: must be in [0, 0.5)"),
    (["--target", "macs=0.5", "--schedule", "global", "--margin", "0.05"], "--margin: is how far under a latency goal"),
])
def test_bad_iterative_arguments_exit_2(args: list[str], words: str, tmp_path: Path) -> None:
    result = runner.invoke(app, ["prune", "-m", "yolov8n", "--img-size", "64", "--threads", "1",
                                 "--project", str(tmp_path)] + args)
    out = result.output.strip()
    assert result.exit_code == 2 and out.startswith("error:") and words in out, out
    assert not any(tmp_path.iterdir())


def test_max_drop_without_data_is_refused(tmp_path: Path) -> None:
    result = runner.invoke(app, ["prune", "-m", "yolov8n", "--ratio", "0.3", "--steps", "2", "--max-drop", "0.1",
                                 "--img-size", "64", "--project", str(tmp_path)])
    assert result.exit_code == 2 and "--max-drop: needs --data" in result.output, result.output


def test_the_global_schedule_caps_reach_the_pruner(tmp_path: Path, run: Callable[[Recipe, Path], dict]) -> None:
    """--max-ratio / --min-channels bound what one group loses under one global ranking."""
    def groups(**caps: object) -> list[dict]:
        recipe = Recipe(model="yolov8n", img_size=64, threads=1, command="prune",
                        prune=PruneSpec(criteria=["l1"], ratio=0.5, schedule="global", **caps))
        return run(recipe, tmp_path / str(len(caps)))["rows"][1]["groups"]

    free, capped = groups(), groups(max_ratio=0.3, min_channels=12)
    assert any(g["after"] < 0.7 * g["before"] for g in free)
    assert all(g["after"] >= min(g["before"], 12) and g["after"] >= 0.7 * g["before"] - 1 for g in capped), capped


def test_cluster_pruning_fine_tunes_between_rounds(tmp_path: Path, run: Callable[[Recipe, Path], dict]) -> None:
    """--finetune-every K: the greedy loop stops every K steps for one epoch of fine-tuning, then re-scores."""
    recipe = Recipe(model="yolov3-tiny", data="synthetic:16", img_size=64, threads=1, command="prune",
                    prune=PruneSpec(criteria=["l1"], schedule="cluster", target="macs=0.6", finetune_every=2),
                    finetune=FinetuneSpec(epochs=1, batch=4, max_images=4), eval=EvalSpec(max_images=4, batch=4))
    metrics = run(recipe, tmp_path)
    base, row = metrics["rows"]
    rounds = sorted(p.name for p in (tmp_path / "finetune").iterdir() if p.name.startswith("l1-round"))
    assert rounds and (tmp_path / "finetune" / rounds[0] / "results.csv").is_file(), rounds
    assert row["macs"] <= 0.6 * base["macs"] and row["finetune_epochs"] == 1  # the final fine-tune as usual


def test_finetune_every_is_for_the_cluster_schedule(tmp_path: Path) -> None:
    result = runner.invoke(app, ["prune", "-m", "yolov8n", "--ratio", "0.3", "--finetune-every", "2",
                                 "--img-size", "64", "--project", str(tmp_path)])
    assert result.exit_code == 2 and "--finetune-every: is for the cluster schedule" in result.output, result.output


def test_max_ratio_bounds_the_whole_iterative_cut(tmp_path: Path, run: Callable[[Recipe, Path], dict]) -> None:
    """Each step caps what is left of a group, so the cap is compounded down: after every step a group has
    lost at most --max-ratio of its original channels, not 1 - (1 - max_ratio) ** steps."""
    import torch

    from detprune.detection.models import build_model
    from detprune.pipeline.iterate import step_cap

    assert (1 - step_cap(0.3, 3)) ** 3 == pytest.approx(0.7)
    recipe = Recipe(model="yolov8n", img_size=64, threads=1, command="prune",
                    prune=PruneSpec(criteria=["l1"], ratio=0.5, schedule="global", steps=3, max_ratio=0.3))
    run(recipe, tmp_path)
    pruned = dict(detprune.load(tmp_path / "weights" / "l1.safetensors").named_modules())
    original = dict(build_model("yolov8n", 80).named_modules())
    kept = {n: pruned[n].out_channels / m.out_channels for n, m in original.items()
            if isinstance(m, torch.nn.Conv2d) and pruned[n].out_channels != m.out_channels}
    assert kept and min(kept.values()) >= 0.7 - 0.05, sorted(kept.items(), key=lambda kv: kv[1])[:3]
    report = (tmp_path / "report.md").read_text()  # no finetune section: the report must not claim one
    assert "pruned in 3 geometric step(s); mAP50" in report and "followed by fine-tuning" not in report


def test_margin_reaches_cluster_pruning(monkeypatch: pytest.MonkeyPatch) -> None:
    """--margin / prune.margin is passed on to cluster_prune (whose own tests check what it does)."""
    import detprune.schedule.cluster_prune as cp
    from detprune.pipeline import steps
    from detprune.zoo import load_model

    seen: dict[str, object] = {}

    def fake(model: object, example: object, target: object, **kwargs: object) -> str:
        seen.update(kwargs, target=target)
        return "report"

    monkeypatch.setattr(cp, "cluster_prune", fake)
    spec = PruneSpec(criteria=["l1"], target="latency=0.7@onnxruntime", schedule="cluster", margin=0.05)
    assert steps.prune_in_place(load_model("yolov8n"), "l1", spec, 64, None, None, {}) == "report"
    assert seen["margin"] == 0.05 and seen["target"] == "latency=0.7@onnxruntime"
