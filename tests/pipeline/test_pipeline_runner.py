"""run_recipe end to end on a tiny model: files, checkpoints, metrics, reproducible re-run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

import detprune
from detprune.deploy import count_macs
from detprune.pipeline.recipe import (BenchSpec, EvalSpec, ExportSpec, FinetuneSpec, PruneSpec, Recipe, ReportSpec,
                                      load_recipe)
from detprune.pipeline.runs import read_json


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, run: Callable[[Recipe, Path], dict]) -> tuple[Recipe, Path, dict]:
    run_dir = tmp_path_factory.mktemp("run")
    recipe = Recipe(model="yolov8n", data="synthetic:16", img_size=64, threads=1, command="prune",
                    prune=PruneSpec(criteria=["l1", "random"], target="macs=0.6"),
                    finetune=FinetuneSpec(epochs=1, batch=4, max_images=4),
                    eval=EvalSpec(max_images=4, batch=4), bench=BenchSpec(runs=2, warmup=0),
                    export=ExportSpec(formats=["onnx"]), report=ReportSpec(samples=2))
    return recipe, run_dir, run(recipe, run_dir)


def test_run_folder_contents(tiny_run: tuple[Recipe, Path, dict]) -> None:
    _, run_dir, metrics = tiny_run
    for rel in ("config.yaml", "metrics.json", "report.html", "report.md", "logs/run.log", "plots/kept_channels.png",
                "plots/map_vs_macs.png", "samples/detections.png", "weights/l1.safetensors",
                "weights/l1-pruned.safetensors", "weights/random.safetensors", "weights/l1.onnx", "finetune/l1/results.csv"):
        assert (run_dir / rel).is_file(), rel
    assert not list(run_dir.rglob("*.pt")), "torch state-dict checkpoints are replaced by .safetensors"
    assert not list(run_dir.rglob("*.tmp"))
    assert read_json(run_dir / "metrics.json") == metrics


def test_metrics_rows_meet_the_target(tiny_run: tuple[Recipe, Path, dict]) -> None:
    _, run_dir, metrics = tiny_run
    rows = {r["name"]: r for r in metrics["rows"]}
    assert list(rows) == ["baseline", "l1", "random"]
    base = rows["baseline"]
    for name in ("l1", "random"):
        r = rows[name]
        assert r["macs"] <= 0.6 * base["macs"] and r["params"] < base["params"]
        assert r["finetune_epochs"] == 1 and r["role"] == "finetuned"
        assert 0 <= r["map50"] <= 1 and set(r["latency_ms"]) == {"torch"}
        assert r["groups"] and all(g["after"] <= g["before"] for g in r["groups"])
    assert metrics["eval"]["images"] == 4 and metrics["exports"]["l1"]["onnx"] == "weights/l1.onnx"


def test_checkpoints_load_with_their_pruned_shape(tiny_run: tuple[Recipe, Path, dict]) -> None:
    _, run_dir, metrics = tiny_run
    model = detprune.load(run_dir / "weights" / "l1.safetensors")
    row = next(r for r in metrics["rows"] if r["name"] == "l1")
    assert count_macs(model, torch.rand(1, 3, 64, 64)) == row["macs"]


def test_rerun_from_resolved_config_reproduces(tiny_run: tuple[Recipe, Path, dict], tmp_path: Path,
                                              run: Callable[[Recipe, Path], dict]) -> None:
    recipe, run_dir, metrics = tiny_run
    again = load_recipe(run_dir / "config.yaml")
    assert again == recipe
    again.finetune = None  # the structural part (which channels, sizes) is what must repeat exactly
    again.eval = again.bench = again.export = None
    second = run(again, tmp_path)
    before = {r["name"]: (r["params"], r["macs"], [g["after"] for g in r["groups"]]) for r in metrics["rows"][1:]}
    after = {r["name"]: (r["params"], r["macs"], [g["after"] for g in r["groups"]]) for r in second["rows"][1:]}
    assert before == after
