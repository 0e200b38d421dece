"""Global ranking, per-layer ratios, round_to and protected layers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import detprune
from detprune.criteria import get_criterion
from detprune.schedule import (
    dump_ratios,
    global_ranking,
    global_removal,
    group_key,
    local_removal,
    removal_order,
    resolve_ratios,
    select_lowest,
)
from detprune.schedule.select import round_members
from detprune.zoo import load_model


def _scores(found, seed=0):
    rng = np.random.default_rng(seed)
    return {g.index: rng.random(g.size) + 0.01 for g in found}


def test_removal_order_prefixes_match_select_lowest(tiny) -> None:
    model, x = tiny
    found = detprune.groups(model, x)
    scores = _scores(found)
    for g in found:
        order = removal_order(g, scores[g.index])
        assert len(order) <= g.prunable
        assert np.all(np.diff(scores[g.index][order]) >= 0)  # least important first
        for n in (0, 1, len(order) // 2, len(order)):
            assert np.array_equal(np.sort(order[:n]), select_lowest(g, scores[g.index], n))


def test_global_is_invariant_to_per_group_scale(tiny) -> None:
    model, x = tiny
    found = detprune.groups(model, x)
    scores = _scores(found)
    scaled = {k: v * (1000.0 if k % 2 else 0.001) for k, v in scores.items()}
    a = global_removal(found, scores, 0.4)
    b = global_removal(found, scaled, 0.4)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    # without normalisation the large-scale groups would be spared entirely
    c = global_ranking(found, scaled, normalize="none").removal(int(0.4 * sum(g.prunable for g in found)))
    assert any(not np.array_equal(a[k], c[k]) for k in a)


@pytest.mark.parametrize("schedule", ["global", "cluster"])
def test_min_channels_holds_for_every_layer_of_a_concat(schedule: str, monkeypatch) -> None:
    # yolov8n's concat groups: with max_ratio 1 the group kept >= 16 but `down3.conv` went 64 -> 1
    from detprune.schedule.cluster_prune import cluster_prune
    from detprune.schedule.layer_latency import GroupLatency
    from detprune.zoo import load_model

    monkeypatch.setattr(GroupLatency, "__call__", lambda self, gi, kept: 1e-3 * kept)  # priced, not timed

    model, x = load_model("yolov8n").eval(), torch.rand(1, 3, 64, 64)
    before = {n: m.out_channels for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    if schedule == "global":
        detprune.prune(model, x, ratio=0.9, schedule="global", max_ratio=1.0, min_channels=16, measure=False)
    else:
        cluster_prune(model, x, "macs=0.1", cluster=8, mode="layers", max_ratio=1.0, min_channels=16, rounds=1,
                      calls=1, save_lut=False)
    after = {n: m.out_channels for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    assert sum(after.values()) < 0.6 * sum(before.values())
    assert {n: w for n, w in after.items() if w < min(16, before[n])} == {}


def test_global_caps_and_min_channels(tiny) -> None:
    model, x = tiny
    found = detprune.groups(model, x)
    scores = _scores(found)
    first = found[0]
    scores[first.index] = scores[first.index] * 1e-6  # globally the least important by far... before normalising
    ranking = global_ranking(found, scores, max_ratio=0.5, min_channels=20, normalize="none")
    removal = ranking.removal(ranking.total)
    for g in found:
        n = len(removal[g.index])
        assert n <= int(0.5 * g.prunable)
        assert g.size - n >= min(20, g.size)
    # a global ratio removes about that fraction of all prunable classes
    total = sum(g.prunable for g in found)
    rem = global_removal(found, scores, 0.3, max_ratio=1.0)
    assert sum(len(v) for v in rem.values()) == int(0.3 * total)
    # prefix property: more k never un-removes a class
    small, big = ranking.removal(10), ranking.removal(30)
    assert all(set(small[k]) <= set(big[k]) for k in small)


@pytest.mark.parametrize("schedule", ["local", "global"])
def test_round_to_keeps_multiples(tiny, schedule) -> None:
    model, x = tiny
    report = detprune.prune(model, x, "l1", ratio=0.45, schedule=schedule, round_to=8)
    for change in report.groups:
        if change.after != change.before:
            assert change.after % 8 == 0


@pytest.mark.parametrize("schedule", ["local", "global", "layerwise"])
def test_round_to_keeps_every_producer_of_a_concat_a_multiple(schedule) -> None:
    # YOLOv8's C2f and PAN concatenate several convs: rounding only the group's width left
    # producers at e.g. 41 + 7 channels
    model, x = load_model("yolov8n").eval(), torch.rand(1, 3, 64, 64)
    before = {n: m.out_channels for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    detprune.prune(model, x, "l1", ratio=0.3, schedule=schedule, round_to=8,
                   ratios={"": 0.3} if schedule == "layerwise" else None)
    after = {n: m.out_channels for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    changed = {n: w for n, w in after.items() if w != before[n]}
    assert len(changed) > 30
    assert {n: w for n, w in changed.items() if w % 8} == {}


class _Concat(nn.Module):
    def __init__(self, wa: int = 8, wb: int = 8) -> None:
        super().__init__()
        self.a, self.b, self.out = nn.Conv2d(3, wa, 1), nn.Conv2d(3, wb, 1), nn.Conv2d(wa + wb, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.cat([self.a(x), self.b(x)], 1))


def test_round_members_gives_back_the_most_important_removed_classes() -> None:
    (group,) = [g for g in detprune.groups(_Concat(), torch.rand(1, 3, 4, 4)) if g.prunable]
    counts = group.counts()
    a_member = next(m for m in range(len(counts)) if counts[m].sum() == 8 and counts[m, 0] > 0)
    a = np.flatnonzero(counts[a_member])  # conv a's 8 channels
    removed = a[[4, 0, 2, 1, 3]]  # least important first
    assert list(round_members(group, removed[:4], 4)) == list(removed[:4])  # a keeps 4: unchanged
    assert list(round_members(group, removed, 4)) == list(removed[:4])  # a keeps 3: the last goes back
    assert list(round_members(group, removed[:3], 4)) == []  # a keeps 5: back to all 8, never fewer than 4
    assert list(round_members(group, removed, None)) == list(removed)


def test_round_members_lets_a_slot_with_no_multiple_lose_multiples() -> None:
    # a 12-wide and a 16-wide producer: the 28-wide concat input is no multiple of 8
    (group,) = [g for g in detprune.groups(_Concat(12, 16), torch.rand(1, 3, 4, 4)) if g.prunable]
    counts = group.counts()
    b_member = next(m for m in range(len(counts)) if counts[m].sum() == 16)
    b = np.flatnonzero(counts[b_member])
    # 8 from b: b keeps 8, the concat input keeps 20 (no multiple, but it lost 8): kept as asked
    assert list(round_members(group, b[:8], 8)) == list(b[:8])
    assert list(round_members(group, b[:4], 8)) == []  # b would keep 12: given back


def test_ignore_protects_layers_in_every_schedule(tiny) -> None:
    model, x = tiny
    before = model.stem[0].out_channels
    detprune.prune(model, x, "l1", ratio=0.6, schedule="global", ignore=["stem"])
    assert model.stem[0].out_channels == before
    assert model.a[0].out_channels < 64


def test_layerwise_resolution(tiny, tmp_path) -> None:
    model, x = tiny
    found = detprune.groups(model, x)
    by_key = {group_key(g): g for g in found if g.prunable}
    stem = by_key["stem.0"]
    ratios = resolve_ratios(found, {"stem": 0.5, "c": 0.25, "default": 0.1})
    assert ratios[stem.index] == 0.5
    assert ratios[by_key["c.0"].index] == 0.25
    # the residual group is produced by a.0 and b1.0; a consumer (c.0 reads it) must not capture it
    res = next(g for g in found if "a.0" in [m.slot.module_path for m in g.members if m.slot.role == "out"])
    assert ratios[res.index] == 0.1
    # integer keys beat paths, the longest path wins
    r2 = resolve_ratios(found, {stem.index: 0.75, "stem": 0.5, "stem.0": 0.3})
    assert r2[stem.index] == 0.75
    r3 = resolve_ratios(found, {"stem": 0.5, "stem.0": 0.3})
    assert r3[stem.index] == 0.3
    with pytest.raises(ValueError, match="match no coupling group"):
        resolve_ratios(found, {"stemm": 0.5})
    with pytest.raises(ValueError, match="ratio"):
        resolve_ratios(found, {"stem": 1.5})
    # YAML round trip
    path = dump_ratios(found, ratios, tmp_path / "r.yaml")
    back = resolve_ratios(found, path)
    assert {g.index: back[g.index] for g in found if g.prunable} == {g.index: ratios[g.index] for g in found if g.prunable}


def test_layerwise_prune_from_yaml(tiny, tmp_path) -> None:
    model, x = tiny
    path = tmp_path / "ratios.yaml"
    path.write_text("default: 0.0\nratios:\n  a: 0.5\n")
    report = detprune.prune(model, x, "l1", schedule="layerwise", ratios=str(path))
    changed = {c.index for c in report.groups if c.after != c.before}
    assert len(changed) == 1
    assert model.a[0].out_channels == 32 and model.stem[0].out_channels == 32


def test_local_default_unchanged(tiny) -> None:
    model, x = tiny
    found = detprune.groups(model, x)
    crit = get_criterion("l1")
    scores = {g.index: crit.group_scores(g) for g in found}
    expected = local_removal(found, scores, 0.5)
    report = detprune.prune(model, x, "l1", ratio=0.5)
    assert report.schedule == "local" and report.target is None
    assert [c.before - c.after for c in report.groups] == [len(expected[g.index]) for g in found if g.prunable]


def test_bad_arguments(tiny) -> None:
    model, x = tiny
    with pytest.raises(ValueError, match="schedule"):
        detprune.prune(model, x, schedule="cluster-ish")
    with pytest.raises(ValueError, match="ratios="):
        detprune.prune(model, x, schedule="layerwise")
    with pytest.raises(ValueError, match="max_ratio"):
        detprune.prune(model, x, schedule="global", max_ratio=0)
    with pytest.raises(ValueError, match="target"):
        detprune.prune(model, x, target="flops=0.5")
    assert torch.is_tensor(x)


class TwoProducers(torch.nn.Module):
    """Two convs concatenated into one consumer: one coupling group with two producers (a PAN's concat)."""

    def __init__(self) -> None:
        super().__init__()
        self.left, self.right = torch.nn.Conv2d(3, 20, 1), torch.nn.Conv2d(3, 20, 1)
        self.out = torch.nn.Conv2d(40, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.cat([self.left(x), self.right(x)], 1))


def test_max_ratio_bounds_each_producer_of_a_concat() -> None:
    """A producer whose channels all score zero keeps 1 - max_ratio of them, not one channel."""
    model, x = TwoProducers().eval(), torch.rand(1, 3, 8, 8)
    found = detprune.groups(model, x)
    cat = next(g for g in found if any(m.slot.module is model.left for m in g.members)
               and any(m.slot.module is model.right for m in g.members))
    scores = {g.index: np.ones(g.size) for g in found}
    left_classes = np.unique(next(m.cls for m in cat.members if m.slot.module is model.left and m.slot.role == "out"))
    scores[cat.index][left_classes] = 0.0  # every left channel looks useless
    unbounded = removal_order(cat, scores[cat.index])
    assert len(np.intersect1d(unbounded[:19], left_classes)) == 19  # old behaviour: left down to 1 channel
    removal = global_removal(found, scores, ratio=0.5, max_ratio=0.9)
    kept_left = 20 - len(np.intersect1d(removal[cat.index], left_classes))
    assert kept_left == 2  # 10 % of 20
    local = local_removal(found, scores, ratio=0.5)[cat.index]
    assert len(local) == 20 and 20 - len(np.intersect1d(local, left_classes)) == 2  # the same bound, local schedule
