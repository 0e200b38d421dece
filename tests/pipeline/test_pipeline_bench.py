"""The report's latency column: every model of a run timed side by side, a failing runtime named."""

from __future__ import annotations

import pytest
from torch import nn

from detprune.pipeline import steps
from detprune.pipeline.recipe import BenchSpec


def _net(width: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, 8, 1)).eval()


def test_models_are_timed_in_one_interleaved_batch_per_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    from detprune.deploy import side_by_side

    batches: list[int] = []
    real = side_by_side.time_interleaved

    def spy(batch, *args, **kwargs):
        batches.append(len(batch))
        return real(batch, *args, **kwargs)

    monkeypatch.setattr(side_by_side, "time_interleaved", spy)
    latency, errors = steps.bench([_net(64), _net(8)], 32, BenchSpec(runtimes=["torch"], runs=6, warmup=1),
                                  log=lambda _: None)
    assert batches == [2] and errors == {}  # both models in one side-by-side batch
    assert len(latency) == 2 and all(row["torch"] > 0 for row in latency)


def test_a_runtime_failing_for_one_model_is_none_with_its_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    from detprune.deploy import side_by_side

    broken = _net(8)
    real = side_by_side.make_runner

    def make(module, inputs, runtime, threads, workdir=None):
        if module is broken:
            raise RuntimeError("no kernel for this layer\nsecond line")
        return real(module, inputs, runtime, threads, workdir)

    monkeypatch.setattr(side_by_side, "make_runner", make)
    seen: list[str] = []
    latency, errors = steps.bench([_net(16), broken], 32, BenchSpec(runtimes=["torch"], runs=3, warmup=1),
                                  log=seen.append)
    assert latency[0]["torch"] > 0 and latency[1]["torch"] is None
    assert errors == {"torch": "RuntimeError: no kernel for this layer"}
    assert any("latency on torch failed" in line for line in seen)
