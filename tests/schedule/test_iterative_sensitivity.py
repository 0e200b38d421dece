"""Iterative pruning schedules, early stopping with rollback, sensitivity analysis and proposals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import detprune
from detprune.deploy import count_macs
from detprune.schedule import resolve_ratios
from detprune.schedule.iterative import cumulative_fractions, iterative_prune, step_ratios
from detprune.schedule.sensitivity import sensitivity

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("schedule", ["linear", "geometric"])
def test_step_ratios_compose_to_final(schedule) -> None:
    ratios = step_ratios(0.6, 4, schedule)
    assert np.prod([1 - r for r in ratios]) == pytest.approx(0.4)
    kept = cumulative_fractions(0.4, 4, schedule)
    assert kept[-1] == pytest.approx(0.4) and all(a > b for a, b in zip(kept, kept[1:]))
    if schedule == "geometric":
        assert max(ratios) - min(ratios) < 1e-12  # the same share of what is left every step
    else:
        assert np.diff(kept) == pytest.approx([-0.15] * 3)  # equal slices of the original


def _macs_metric(x):
    """A deterministic stand-in for mAP: the fraction of MACs left (drops as pruning proceeds)."""
    def evaluate(model):
        return count_macs(model, x) / evaluate.base

    return evaluate


def test_iterative_records_every_step_and_plots(tiny, tmp_path) -> None:
    model, x = tiny
    evaluate = _macs_metric(x)
    evaluate.base = count_macs(model, x)
    tuned = []
    res = iterative_prune(model, x, steps=3, target="macs=0.5", schedule="linear", evaluate=evaluate,
                          finetune=lambda m, i: tuned.append(i), alloc_schedule="global")
    assert tuned == [1, 2, 3] and len(res.steps) == 3 and not res.stopped_early
    goals = [s.goal for s in res.steps]
    assert goals == pytest.approx([1 - 0.5 / 3, 1 - 1 / 3, 0.5])
    for s in res.steps:
        assert s.macs <= s.goal * res.baseline_macs
        assert s.map_before == pytest.approx(s.macs / res.baseline_macs) and s.map_after is not None
    assert res.steps[-1].macs == count_macs(model, x)
    png = res.plot(tmp_path / "iter.png")
    assert png.read_bytes()[:8] == PNG
    assert res.to_markdown().count("\n") >= 4


def test_iterative_stops_early_and_rolls_back(tiny) -> None:
    model, x = tiny
    evaluate = _macs_metric(x)
    evaluate.base = count_macs(model, x)
    res = iterative_prune(model, x, steps=4, final_ratio=0.8, schedule="geometric", evaluate=evaluate,
                          max_drop=0.6)
    assert res.stopped_early and "limit" in res.reason
    assert res.kept_step == len(res.steps) - 1 >= 1
    kept = res.steps[res.kept_step - 1]
    assert count_macs(model, x) == kept.macs  # the model is back at the last acceptable step
    assert 1 - kept.map_before <= 0.6 < 1 - res.steps[-1].map_before
    model(x)  # and it runs


def test_sensitivity_finds_the_sensitive_group_and_proposes(tiny, tmp_path) -> None:
    model, x = tiny
    stem_width = model.stem[0].out_channels

    def evaluate(m):  # only the stem matters to this "metric"
        return m.stem[0].out_channels / stem_width

    res = sensitivity(model, x, evaluate, ratios=(0.25, 0.5, 0.75), min_size=8)
    assert model.stem[0].out_channels == stem_width  # the model itself is untouched
    by_label = {r.label: r for r in res.rows}
    assert by_label["stem.0"].metric[0.75] < 0.5
    assert all(v == 1.0 for r in res.rows if r.label != "stem.0" for v in r.metric.values())
    ratios = res.propose("macs=0.7")
    stem = by_label["stem.0"].index
    assert ratios[stem] == 0.0 and max(ratios.values()) > 0
    # the proposal meets the target when applied
    macs0 = count_macs(model, x)
    path = res.save_ratios(ratios, tmp_path / "proposal.yaml")
    found = detprune.groups(model, x)
    assert {g.index: v for g, v in ((g, resolve_ratios(found, path)[g.index]) for g in found) if g.prunable} == \
        {g.index: ratios[g.index] for g in found if g.prunable}
    detprune.prune(model, x, "l1", schedule="layerwise", ratios=str(path))
    assert count_macs(model, x) <= 0.7 * macs0
    assert model.stem[0].out_channels == stem_width
    assert res.plot(tmp_path / "sens.png").read_bytes()[:8] == PNG
    assert "drop @ 0.5" in res.to_markdown()
    with pytest.warns(UserWarning, match="out of reach"):
        res.propose("macs=0.01")
    assert torch.is_tensor(x)


def test_an_unreachable_proposal_names_the_groups_left_out_of_the_study(tiny) -> None:
    """`analyze --target` studies only the largest --max-groups groups; when the target is out of reach the
    warning used to say "the largest tested ratio everywhere" although the unstudied groups stay at 0."""
    model, x = tiny
    res = sensitivity(model, x, lambda m: 1.0, ratios=(0.5,), only=[0])
    prunable = [g.index for g in res.groups if g.prunable]
    assert len(res.rows) == 1 < len(prunable)
    with pytest.warns(UserWarning, match=rf"each of the 1 studied groups; the {len(prunable) - 1} prunable groups "
                                         r"not studied keep ratio 0"):
        ratios = res.propose("macs=0.01")
    assert ratios[0] == 0.5 and all(ratios[i] == 0.0 for i in prunable if i != 0)
