"""Analytic cost model and target search (MACs, params, latency with a fake clock)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import detprune
from detprune.deploy import count_macs, count_params
from detprune.deploy.latency import LatencyResult
from detprune.detection.models import build_model
from detprune.graph import refresh_submodules, remove_channels
from detprune.graph.verify import random_removal
from detprune.schedule import Target, bisect_knob
from detprune.schedule.cost import CostModel


@pytest.mark.parametrize("name", ["tiny", "yolov8n"])
def test_cost_model_is_exact(tiny, name) -> None:
    model, x = tiny if name == "tiny" else (build_model("yolov8n", 3).eval(), torch.rand(1, 3, 64, 64))
    found = detprune.groups(model, x)
    cm = CostModel(model, x, found)
    assert cm.macs_total == count_macs(model, x) and cm.params_total == count_params(model)
    removal = random_removal(found, 0.45, seed=3, exact_only=False)
    predicted = cm.predict(removal)
    remove_channels(found, removal)
    refresh_submodules(model)
    assert predicted == {"macs": count_macs(model, x), "params": count_params(model)}


def test_target_parse() -> None:
    assert Target.parse("macs=0.5") == Target("macs", 0.5, True)
    assert Target.parse("params=2.5M") == Target("params", 2.5e6, False)
    assert Target.parse("macs=1.2G") == Target("macs", 1.2e9, False)
    assert Target.parse("latency=12ms@openvino") == Target("latency", 12.0, False, "openvino")
    assert Target.parse("latency=0.7", runtime="onnxruntime").runtime == "onnxruntime"
    assert Target.parse("macs=1.5").describe() == "macs 1.5"  # absolute (> 1), not rounded to "2"
    assert Target.parse("params=2.5M").describe() == "params 2,500,000"
    for bad in ("flops=0.5", "macs=12ms", "macs=-1", "macs"):
        with pytest.raises(ValueError):
            Target.parse(bad)


def test_bisect_finds_smallest_knob() -> None:
    cost = lambda k: 100.0 - k  # noqa: E731
    k, probes = bisect_knob(cost, 80, 57.5)
    assert k == 43 and cost(k) <= 57.5 < cost(k - 1)
    assert len(probes) <= 10
    assert bisect_knob(cost, 80, 5.0)[0] == 80  # unreachable: the largest knob
    assert bisect_knob(cost, 80, 200.0)[0] == 0


@pytest.mark.parametrize("schedule,metric,value", [("global", "macs", 0.5), ("local", "params", 0.6),
                                                   ("global", "params", 0.4)])
def test_prune_reaches_cost_target(tiny, schedule, metric, value) -> None:
    model, x = tiny
    base = count_macs(model, x) if metric == "macs" else count_params(model)
    report = detprune.prune(model, x, "l1", schedule=schedule, target=f"{metric}={value}", round_to=None)
    t = report.target
    assert t is not None and t.met
    after = count_macs(model, x) if metric == "macs" else count_params(model)
    assert t.achieved == after <= value * base
    # minimal: the knob just below the answer would miss the goal
    assert all(c > t.goal for k, c in t.probes if k < t.knob)
    assert "target" in report.summary()


def test_layerwise_target_scales_ratios(tiny) -> None:
    model, x = tiny
    report = detprune.prune(model, x, "l1", schedule="layerwise", ratios={"a": 0.5, "c": 0.25}, target="macs=0.8")
    assert report.target.met
    changed = {c.modules[0].split(" ")[0] for c in report.groups if c.after != c.before}
    assert changed <= {"a.0", "c.0"}  # groups without a ratio stay protected


def test_latency_target_with_fake_clock(tiny, monkeypatch) -> None:
    """The search logic on a latency target, with latency = a deterministic function of MACs."""
    model, x = tiny

    def fake(m, inputs, runtime="torch", warmup=0, runs=1, threads=None) -> LatencyResult:
        ms = count_macs(m, inputs) / 1e5
        return LatencyResult(runtime, ms, ms, ms, ms, runs, warmup, 1)

    import detprune.deploy.latency as latency_mod
    import detprune.schedule.preview as preview

    monkeypatch.setattr(latency_mod, "measure_latency", fake)
    monkeypatch.setattr(preview, "measure_latency", fake)
    base = count_macs(model, x) / 1e5
    report = detprune.prune(model, x, "l1", schedule="global", target="latency=0.6@openvino")
    t = report.target
    assert t.target.runtime == "openvino" and t.baseline == pytest.approx(base)
    assert t.met and t.achieved <= 0.6 * base
    assert len(t.probes) >= 3


def test_unreachable_target_is_reported(tiny) -> None:
    model, x = tiny
    report = detprune.prune(model, x, "l1", schedule="global", target="macs=0.01", max_ratio=0.5)
    assert not report.target.met and "NOT met" in report.summary()
    assert np.isfinite(report.target.achieved)
