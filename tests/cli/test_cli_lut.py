"""`detprune lut` builds a latency table on the device; `prune --schedule cluster --lut` uses it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import detprune
from detprune.cli import app
from detprune.detection.models import build_model
from detprune.schedule.layer_table import LayerTable

runner = CliRunner()
SIZE = ["--img-size", "32"]


def _points(path: Path) -> dict[str, set[str]]:
    return {sig: set(e["points"]) for sig, e in json.loads(path.read_text())["entries"].items()}


def _uneven_layer_signatures() -> set[str]:
    """Layers whose channels a group shares unevenly (producers of a concat group): the widths
    pruning gives them depend on which producer's channels score lowest, so no table holds them
    all in advance (see LayerTable.measure_grid)."""
    model, x = build_model("yolov3-tiny", 80).eval(), torch.rand(1, 3, 32, 32)
    found = detprune.groups(model, x)
    table = LayerTable(model, x, found)
    return {table.layers[lid].signature for gi, rows in table.touch.items() for lid, _, member in rows
            if not (table.counts[gi][member] == 1).all()}


def test_lut_then_cluster_prune_reuses_the_device_table(tmp_path: Path) -> None:
    table = tmp_path / "device.json"
    result = runner.invoke(app, ["lut", "-m", "yolov3-tiny", "--runtime", "torch", "-o", str(table), *SIZE,
                                 "--window", "4", "--rounds", "1"])
    assert result.exit_code == 0, result.output
    assert "group staircases" in result.output and table.is_file()
    data = json.loads(table.read_text())
    assert data["format"] == "detprune-latency-lut/1" and data["fingerprint"]["threads"] == 1
    before = _points(table)
    assert any(sig.startswith("layer:") for sig in before)
    result = runner.invoke(app, ["prune", "-m", "yolov3-tiny", "-c", "l1", "--schedule", "cluster", "--target",
                                 "macs=0.7", "--lut", str(table), *SIZE, "--threads", "1",
                                 "--project", str(tmp_path / "runs"), "--name", "p"])
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "prune" / "p"
    assert f"lut: {table}" in (run / "config.yaml").read_text()  # re-runnable with the same table
    groups = [sig for sig, pts in before.items() if not sig.startswith("layer:") and len(pts) > 1]
    assert len(json.loads((run / "metrics.json").read_text())["staircase"]["series"]) == len(groups)
    after = _points(table)
    new = {sig for sig, pts in after.items() if pts - before.get(sig, set())}
    assert new <= _uneven_layer_signatures(), new  # everything else came from the device table


def test_round_to_sets_the_cluster_size_of_the_cluster_schedule(tmp_path: Path) -> None:
    """--round-to is not ignored by --schedule cluster: cluster sizes (and so group widths) become multiples of it.

    Group widths, not every conv's: a concat group's clusters fall unevenly on its producers."""
    result = runner.invoke(app, ["prune", "-m", "yolov3-tiny", "-c", "l1", "--schedule", "cluster", "--target",
                                 "macs=0.7", "--round-to", "12", *SIZE, "--threads", "1",
                                 "--project", str(tmp_path / "runs"), "--name", "r"])
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "prune" / "r"
    assert "round_to: 12" in (run / "config.yaml").read_text()
    groups = json.loads((run / "metrics.json").read_text())["rows"][1]["groups"]
    changed = [(g["modules"], g["after"]) for g in groups if g["after"] != g["before"]]
    assert changed and all(after % 12 == 0 for _, after in changed), changed


def test_lut_round_to_builds_the_widths_prune_round_to_will_ask_for(tmp_path: Path) -> None:
    """The layer timings cover each group's cluster grid: with --round-to 12 every width below a
    group's full width is a multiple of 12, as `prune --schedule cluster --round-to 12` prunes to."""
    table = tmp_path / "device.json"
    result = runner.invoke(app, ["lut", "-m", "yolov3-tiny", "--runtime", "torch", "-o", str(table), *SIZE,
                                 "--window", "4", "--rounds", "1", "--round-to", "12"])
    assert result.exit_code == 0, result.output
    points = _points(table)
    full = {max(map(int, pts)) for sig, pts in points.items() if not sig.startswith("layer:")}
    widths = {int(w) for sig, pts in points.items() if sig.startswith("layer:") for key in pts for w in key.split("x")}
    grid = widths - full - {3, 255}  # the image's and the head's outputs are not pruned
    assert len(grid) > 10 and all(w % 12 == 0 for w in grid), sorted(grid)


@pytest.mark.parametrize("args, words", [
    (["--runtime", "tensorrt"], "--runtime: unknown runtime 'tensorrt'; choose from torch, onnxruntime, openvino"),
    (["--runtime", "torch", "--max-ratio", "1.0"], "--max-ratio: must be in (0, 1)"),
    (["--runtime", "torch", "--threads", "0"], "--threads: must be a positive integer"),
    (["--runtime", "torch", "--rounds", "0"], "--rounds: must be a positive integer"),
    (["--runtime", "torch", "--round-to", "0"], "--round-to: must be a positive integer"),
    (["--runtime", "openvino:cuda"], "--runtime: runtime 'openvino:cuda': unknown device 'cuda'"),
])
def test_lut_bad_arguments(args: list[str], words: str, tmp_path: Path) -> None:
    result = runner.invoke(app, ["lut", "-m", "yolov3-tiny", "-o", str(tmp_path / "t.json")] + args)
    assert result.exit_code == 2 and words in result.output, result.output
    assert not (tmp_path / "t.json").exists()


def test_a_latency_target_adds_its_runtime_to_the_comparison() -> None:
    from detprune.cli.common import target_runtimes

    assert target_runtimes("latency=0.7@openvino") == ["torch", "openvino"]
    assert target_runtimes("latency=0.7") is None and target_runtimes("macs=0.5") is None
    assert target_runtimes("latency=0.7@tensorrt") is None  # left to the target's own error
