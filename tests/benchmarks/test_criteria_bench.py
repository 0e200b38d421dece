"""benchmarks/criteria.py: precomputed-score pruning, attribution scoring, resume guard and goal check (no data set)."""

from __future__ import annotations

import argparse
import copy
import json

import pytest
import torch

import detprune
from detprune.detection.models import build_model


@pytest.fixture(scope="module")
def bench(load_script):
    return load_script("criteria")


@pytest.fixture(scope="module")
def results(load_script):
    return load_script("criteria_results")


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return build_model("yolov8n", num_classes=3, width=0.0625, names=["a", "b", "c"]).eval()


def batch(size: int = 64):
    g = torch.Generator().manual_seed(0)
    images = torch.rand(2, 3, size, size, generator=g)
    targets = [{"boxes": torch.tensor([[8.0, 8.0, 30.0, 28.0]]), "labels": torch.tensor([1]), "image_id": i}
               for i in range(2)]
    return images, targets


def test_precomputed_scores_prune_like_the_criterion(bench, tiny):
    x = torch.zeros(1, 3, 64, 64)
    scores, timing = bench.compute_scores("l1", tiny, [], 64)
    assert timing["crit_s"] >= 0 and timing["groups"] > 0
    a, b = copy.deepcopy(tiny), copy.deepcopy(tiny)
    detprune.prune(a, x, criterion=bench.Precomputed("l1", scores), ratio=0.5, measure=False)
    detprune.prune(b, x, criterion="l1", ratio=0.5, measure=False)
    for (na, pa), (nb, pb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert na == nb and torch.equal(pa, pb)


def test_precomputed_scores_must_match_the_groups(bench, tiny):
    with pytest.raises(RuntimeError, match="do not match"):
        detprune.prune(copy.deepcopy(tiny), torch.zeros(1, 3, 64, 64), criterion=bench.Precomputed("l1", {}), ratio=0.5)


def test_attribution_with_labels_leaves_no_group_unranked(bench, tiny):
    # the box branch gets all-zero gradients from the class logits: those groups must fall back to l1
    scores, timing = bench.compute_scores("attribution", tiny, [batch()], 64)
    assert timing["all_zero_groups"] == 0


def test_resume_refuses_other_settings(results, tmp_path):
    config = {k: 1 for k in results.CONFIG_KEYS}
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"config": config, "rows": [{"criterion": "l1", "ratio": 0.5}], "errors": []}))
    data = results.load_results(path, dict(config), fresh=False)
    assert results.done(data, "l1", 0.5) and not results.done(data, "l1", 0.7)
    with pytest.raises(SystemExit, match="ft_epochs"):
        results.load_results(path, {**config, "ft_epochs": 2}, fresh=False)
    assert results.load_results(path, {**config, "ft_epochs": 2}, fresh=True)["rows"] == []


def row(crit: str, ratio: float, before: float, after: float) -> dict:
    return {"criterion": crit, "ratio": ratio, "map50": before, "map": before / 2, "map50_ft": after, "map_ft": after / 2,
            "params": 1e6, "macs": 1e9, "latency_ms": 10.0, "crit_s": 1.0, "crit_cpu_s": 1.0}


def test_goal_check_and_markdown(results, tmp_path):
    rows = [row("attribution", 0.5, 0.40, 0.60), row("coupling", 0.5, 0.22, 0.55), row("l1", 0.5, 0.30, 0.58),
            row("random", 0.5, 0.20, 0.50)]
    text = "\n".join(results.goal_check(rows, margin=0.05))
    assert "attribution @ 50%: mAP50 after FT 0.600 vs best baseline l1 0.580 (+2.0 pts) **met**" in text
    assert "coupling @ 50%: mAP50 after FT 0.550 vs best baseline l1 0.580 (-3.0 pts) **not met**" in text
    assert "vs random 0.200 (+20.0 pts; clear margin = 5 pts) **met**" in text
    assert "vs random 0.200 (+2.0 pts; clear margin = 5 pts) **not met**" in text
    args = argparse.Namespace(quick=True, margin=0.05, stem="t")
    md = results.markdown({"config": {}, "rows": rows, "errors": [], "cost": None}, args)
    assert md.count("| 50% |") == 4 and "## Goal check" in md
    results.plot(rows, tmp_path / "t.png")
    assert (tmp_path / "t.png").stat().st_size > 0
