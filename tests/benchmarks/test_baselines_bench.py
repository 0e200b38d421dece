"""benchmarks/baselines.py: the command it records recreates the same baseline file."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def bench(load_script):
    return load_script("baselines")


def test_the_recorded_command_names_a_non_default_output(bench) -> None:
    plain = bench.command_line(bench.parse_args(["--dataset", "synthetic", "--epochs", "40"]))
    assert "--out" not in plain and "--epochs 40" in plain
    own = bench.command_line(bench.parse_args(["--dataset", "synthetic", "--out", "/x/synthetic-e40.safetensors"]))
    assert own.endswith("--out /x/synthetic-e40.safetensors")  # else re-running it overwrites the default baseline


def test_the_recorded_command_keeps_its_own_results_folder(bench) -> None:
    plain = bench.command_line(bench.parse_args(["--dataset", "synthetic"]))
    assert "--results-dir" not in plain
    own = bench.command_line(bench.parse_args(["--dataset", "synthetic", "--results-dir", "benchmarks/results/x"]))
    assert own.endswith("--results-dir benchmarks/results/x")  # else re-running it writes the shared table
