"""Per-layer latency table: widths follow every group, no double counting, real timings cached."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
from torch import nn

from detprune.api import groups as find_groups
from detprune.deploy import count_macs
from detprune.schedule.cluster import ClusterState, greedy_clusters
from detprune.schedule.cluster_prune import cluster_prune
from detprune.schedule.layer_table import LayerTable
from detprune.schedule.lut import LatencyLUT


def synthetic(cin: int, cout: int) -> float:
    return 0.01 * cin * cout + 0.05 * (cout % 8 != 0)  # MACs-like, plus a penalty for odd widths


def filled_table(model: nn.Module, x, groups) -> LayerTable:
    """A table whose LUT already holds ``synthetic`` for every width, so nothing is timed."""
    table = LayerTable(model, x, groups, "torch", LatencyLUT("torch", 1), threads=1, rounds=1, calls=1)
    for layer in table.layers.values():
        for cin in range(1, layer.cin + 1):
            for cout in range(1, layer.cout + 1):
                table.lut.put(layer.signature, f"{cin}x{cout}", synthetic(cin, cout))
    return table


def model_ms(table: LayerTable) -> float:
    """The model's layer-table latency at the committed widths of every group."""
    return sum(synthetic(*table._width(lid, None)) for lid in table.layers)


def group_of(groups, module: nn.Module, role: str) -> int:
    return next(g.index for g in groups for m in g.members
                if m.slot.module is module and m.slot.name == "weight" and m.slot.role == role)


def test_widths_follow_every_group(tiny) -> None:
    model, x = tiny
    groups = find_groups(model, x)
    table = filled_table(model, x, groups)
    res = group_of(groups, model.a[0], "out")  # a -> b1 -> residual add -> dw -> c
    assert group_of(groups, model.b1[0], "in") == res
    for g in groups:
        if table.measurable(g.index):
            table.plan(g.index, np.arange(g.size))
    lids = {name: id(mod) for name, mod in [("b1", model.b1[0]), ("dw", model.dw[0]), ("c", model.c[0])]}
    assert table._width(lids["c"], None) == (64, 32)
    table.commit(res, 48)
    assert table._width(lids["b1"], None) == (48, 48)
    assert table._width(lids["dw"], None) == (48, 48)  # depthwise: in = out
    assert table._width(lids["c"], None) == (48, 32)
    out_c = group_of(groups, model.c[0], "out")
    table.commit(out_c, 24)
    assert table._width(lids["c"], None) == (48, 24)
    # the group's latency prices its layers at the other groups' current widths
    assert table(out_c, 16) == pytest.approx(sum(synthetic(*w) for w in [(48, 16), (16, 6), (16, 4)]))


def test_greedy_savings_add_up_to_the_model_difference(tiny) -> None:
    """Two groups share conv ``c``: with ``commit`` the steps' savings sum to the real difference."""
    model, x = tiny
    groups = find_groups(model, x)
    table = filled_table(model, x, groups)
    states = []
    for g in groups:
        if g.prunable and table.measurable(g.index):
            order = np.arange(g.size)[~g.pinned][: g.size // 2]
            table.plan(g.index, order)
            states.append(ClusterState(g.index, g.size, order, np.ones(g.size), 8))
    start = model_ms(table)
    res = greedy_clusters(states, table, start, lambda rem, est: (False, est))
    assert len({s.group for s in res.steps}) >= 3 and all(s.kept_after % 8 == 0 for s in res.steps)
    assert res.estimate_ms == pytest.approx(model_ms(table))  # estimate == table latency of the result
    assert model_ms(table) < start


def test_real_timings_are_measured_once(tiny) -> None:
    model, x = tiny
    groups = find_groups(model, x)
    table = LayerTable(model, x, groups, "torch", LatencyLUT("torch", 1), threads=1, rounds=1, calls=1)
    gi = next(g.index for g in groups if table.measurable(g.index) and g.prunable)
    table.plan(gi, np.arange(groups[gi].size))
    first = table(gi, groups[gi].size - 8)
    assert first > 0 and table.measured > 0
    seen = table.measured
    assert table(gi, groups[gi].size - 8) == first and table.measured == seen  # served from the table
    assert any(k.startswith("layer:") for k in table.lut.entries)


def test_cluster_prune_table_mode(tiny, tmp_path) -> None:
    model, x = tiny
    macs0 = count_macs(model, x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # noisy tiny staircases fall back with a warning
        report = cluster_prune(model, x, "macs=0.6", mode="table", lut=tmp_path / "t.json", threads=1, rounds=1,
                               calls=1, window=16, probe_step=4)
    assert report.mode == "table" and report.target.met and count_macs(model, x) <= 0.6 * macs0
    for label, (before, after) in report.widths.items():
        c = report.clusters[label][0]
        assert after == before or after % c == 0, (label, before, after, c)
    assert model(x)[0].shape[1] == 6
    with pytest.raises(ValueError, match="mode must be one of"):
        cluster_prune(model, x, "macs=0.5", mode="whole")


def test_latency_goal_is_checked_even_when_the_table_prices_no_saving(tiny, tmp_path, monkeypatch) -> None:
    """A table that sees no saving leaves the estimate flat; periodic checks still stop the loop
    near the goal instead of cutting every group to its floor. "Latency" here is MACs, so the
    test is deterministic."""
    import numpy as np

    import detprune.schedule.cluster_prune as cp

    def fake_compare(modules, inputs, *args, **kwargs):
        return np.array([count_macs(m, inputs) / 1e6 for m in modules])

    monkeypatch.setattr(cp, "compare", fake_compare)
    monkeypatch.setattr(LayerTable, "__call__", lambda self, gi, kept: 1.0)  # every step "saves" nothing
    model, x = tiny
    macs0 = count_macs(model, x)
    left = {}
    for every in (1, 10_000):  # checked after every step / in effect never
        monkeypatch.setattr(cp, "CHECK_EVERY", every)
        m = copy.deepcopy(model)
        report = cluster_prune(m, x, "latency=0.8", runtime="torch", cluster=8, lut=tmp_path / "t.json", threads=1)
        assert report.target.met
        left[every] = count_macs(m, x) / macs0
    assert 0.6 < left[1] <= 0.8  # stopped at the goal
    assert left[10_000] < 0.3  # without checks: every group cut to its floor
