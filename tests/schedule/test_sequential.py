"""Layer-by-layer pruning: same widths as one-shot local pruning, every stage scored on the pruned-so-far model."""

from __future__ import annotations

import copy

import pytest
import torch

import detprune
from detprune.criteria import CRITERIA
from detprune.criteria.magnitude import L1
from detprune.deploy import count_macs
from detprune.schedule.sequential import sequential_prune


class WatchingL1(L1):
    """l1 that records, at every prepare(), the stem's width the model has at that moment."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[int] = []

    def prepare(self, model, groups, data=None, **kwargs) -> None:
        self.seen.append(model.stem[0].out_channels)


def _shapes(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def test_widths_match_one_shot_local_and_stages_see_earlier_cuts(tiny) -> None:
    model, x = tiny
    one_shot = copy.deepcopy(model)
    detprune.prune(one_shot, x, "l1", ratio=0.5, schedule="local", measure=False)
    watch = WatchingL1()
    result = sequential_prune(model, x, watch, ratio=0.5)
    assert _shapes(model) == _shapes(one_shot)
    assert len(watch.seen) == len(result.groups) > 2 and result.schedule == "sequential"
    assert [(g.before, g.after) for g in result.groups] == [(32, 16), (64, 32), (32, 16)]  # stem, residual, c
    assert watch.seen[0] == 32 and all(w == 16 for w in watch.seen[1:])  # the stem group is cut first
    head, fc = model(x)
    assert head.shape == (1, 6, 16, 16) and fc.shape == (1, 4)


class ReferenceL1(L1):
    """l1 that asks for the unpruned model (as attribution does for its spatial mask) and records its widths."""

    reference_option = "reference"
    seen: list[tuple[int, int, bool]] = []

    def __init__(self, reference: torch.nn.Module | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.reference = reference

    def prepare(self, model, groups, data=None, **kwargs) -> None:
        ref = self.reference
        ReferenceL1.seen.append((model.stem[0].out_channels, ref and ref.stem[0].out_channels,
                                 ref is model or (ref is not None and ref.training)))


def test_a_criterion_asking_for_the_unpruned_model_gets_it_in_every_stage(tiny, monkeypatch) -> None:
    model, x = tiny
    fresh = copy.deepcopy(model)
    monkeypatch.setitem(CRITERIA, "reference_l1", ReferenceL1)
    ReferenceL1.seen = []
    sequential_prune(model, x, "reference_l1", ratio=0.5)
    assert len(ReferenceL1.seen) == 3
    assert [w for w, _, _ in ReferenceL1.seen] == [32, 16, 16]  # the scored model is cut stage by stage
    assert all(ref == 32 and not same_or_training for _, ref, same_or_training in ReferenceL1.seen)  # a frozen copy
    ReferenceL1.seen = []
    sequential_prune(fresh, x, "reference_l1", ratio=0.5, reference=None)  # declined explicitly
    assert [ref for _, ref, _ in ReferenceL1.seen] == [None] * 3


def test_fewer_stages_and_a_macs_target(tiny) -> None:
    model, x = tiny
    macs0 = count_macs(model, x)
    watch = WatchingL1()
    report = sequential_prune(model, x, watch, target="macs=0.5", stages=2)
    assert len(watch.seen) == 2
    assert 0.4 < count_macs(model, x) / macs0 <= 0.5
    assert 0 < report.ratio < 0.9 and report.target.met and report.target.achieved == count_macs(model, x)
    assert "sequential" in report.summary() and "macs" in report.summary()


@pytest.mark.parametrize("kwargs, match", [({"ratio": 0.5, "target": "macs=0.5"}, "exactly one"),
                                           ({}, "exactly one"), ({"ratio": 1.0}, "ratio"),
                                           ({"ratio": 0.5, "stages": 0}, "stages"),
                                           ({"target": "latency=0.5"}, "macs or params")])
def test_bad_arguments_are_named(tiny, kwargs, match) -> None:
    model, x = tiny
    with pytest.raises(ValueError, match=match):
        sequential_prune(model, x, "l1", **kwargs)


@pytest.mark.parametrize("seed", [0, 2])
def test_another_criterion_on_a_yolo_still_meets_the_target(seed: int) -> None:
    # random scores cut other classes of C2f's split and concat groups than l1's search did
    from detprune.detection.models import build_model

    torch.manual_seed(seed)
    model, x = build_model("yolov8n", num_classes=3).eval(), torch.rand(1, 3, 64, 64)
    report = sequential_prune(model, x, "random", target="macs=0.5", stages=4, seed=seed, progress=False)
    assert report.target.met and report.target.goal == pytest.approx(0.5 * report.macs_before)  # 50.2 % without slack
    assert report.macs_after / report.macs_before > 0.47  # close to the goal, not far under it
