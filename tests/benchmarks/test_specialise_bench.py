"""benchmarks/specialise.py: the paper's goal is judged per MACs target, against each seed's own reference."""

from __future__ import annotations


import pytest


@pytest.fixture(scope="module")
def bench(load_script):
    return load_script("specialise")


def _row(seed: int, crit: str, f1: float, macs: float, target: int | None = None) -> dict:
    row = {"kept": "bccd: WBC", "seed": seed, "criterion": crit, "macs_pct": macs, "f1_ft": f1}
    if target is not None:
        row["target_pct"] = target
    return row


def test_goal_is_checked_per_target_against_the_same_seed(bench) -> None:
    rows = [_row(0, "unpruned", 0.90, 100.0), _row(1, "unpruned", 0.80, 100.0),
            # 15 %: attribution loses 1 point on both seeds, l1 loses 3
            _row(0, "attribution", 0.89, 14.5, 15), _row(1, "attribution", 0.79, 14.4, 15),
            _row(0, "l1", 0.87, 14.6, 15), _row(1, "l1", 0.77, 14.6, 15),
            # 10 % (an older row without target_pct: its MACs decide): attribution loses 5, l1 2
            _row(0, "attribution", 0.85, 9.9), _row(0, "l1", 0.88, 9.4),
            _row(0, "l1", 0.10, 50.0, 50)]  # above the budget: ignored
    changes = bench.f1_changes(rows, "bccd: WBC")
    assert sorted(changes) == [10, 15]
    assert changes[15]["attribution"] == pytest.approx([-1.0, -1.0])
    assert changes[15]["l1"] == pytest.approx([-3.0, -3.0])
    lines = [line for line in bench.goal_check(rows) if line.startswith("- ")]
    assert len(lines) == 2
    at15, at10 = lines
    assert "15 % MACs" in at15 and "within 2.5 points: yes; ahead of l1: yes" in at15
    assert "10 % MACs" in at10 and "within 2.5 points: no; ahead of l1: no" in at10


def test_no_run_within_the_budget_is_said(bench) -> None:
    rows = [_row(0, "unpruned", 0.9, 100.0), _row(0, "l1", 0.8, 50.0, 50)]
    assert any("no run at <= 20% MACs" in line for line in bench.goal_check(rows))


def test_ahead_of_l1_is_not_judged_without_an_l1_run(bench) -> None:
    rows = [_row(0, "unpruned", 0.9, 100.0), _row(0, "attribution", 0.89, 14.5, 15)]
    (line,) = [line for line in bench.goal_check(rows) if line.startswith("- ")]
    assert "within 2.5 points: yes; ahead of l1: not judged (no l1 row at this target)" in line


def test_without_attribution_the_goal_is_not_judged(bench) -> None:
    rows = [_row(0, "unpruned", 0.9, 100.0), _row(0, "coupling", 0.91, 19.4, 20), _row(0, "l1", 0.88, 19.5, 20)]
    (line,) = [line for line in bench.goal_check(rows) if line.startswith("- ")]
    assert "coupling +1.0" in line and "best coupling." in line
    assert line.endswith("No attribution row at this target: the goal is not judged.") and "(None)" not in line


def test_a_reference_made_from_another_baseline_is_cached_apart(bench, monkeypatch) -> None:
    def path(*argv: str, seed: int = 0):
        monkeypatch.setattr("sys.argv", ["specialise.py", "--dataset", "synthetic", *argv])
        args = bench.parse_args()
        args.seed = seed  # main() sets it per seed
        return bench.reference_path("mango", 5, args)

    default, other = path(), path("--baseline", "/x/synthetic-yolov8n-320-e40.safetensors")
    assert default != other and "e40" in other.name and "e40" not in default.name
    assert path(seed=1) != default  # the seed is in the key too


def test_layerwise_needs_a_ratios_file_and_a_one_shot_cut(bench, monkeypatch) -> None:
    def parse(*argv: str):
        monkeypatch.setattr("sys.argv", ["specialise.py", "--dataset", "synthetic", *argv])
        return bench.parse_args()

    args = parse("--schedule", "layerwise", "--ratios", "benchmarks/configs/paper_allocation_yolov8.yaml")
    assert args.schedule == "layerwise" and args.ratios.name == "paper_allocation_yolov8.yaml"
    for argv in (["--schedule", "layerwise"], ["--ratios", "r.yaml"],
                 ["--schedule", "layerwise", "--ratios", "r.yaml", "--steps", "3"]):
        with pytest.raises(SystemExit):
            parse(*argv)
