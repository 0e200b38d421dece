"""Bad input gets a clear error naming the module, argument or file."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import detprune
from detprune.api import UnsupportedLayerError
from detprune.graph import TraceError

from blocks import Bottleneck


class Broken(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3)
        self.b = nn.Conv2d(4, 8, 3)  # wrong input width

    def forward(self, x):
        return self.b(self.a(x))


class WithLSTM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.rnn = nn.LSTM(8, 8, batch_first=True)
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        y = self.conv(x).mean((2, 3)).unsqueeze(1)
        return self.fc(self.rnn(y)[0][:, -1])


def test_failing_forward_names_the_module() -> None:
    with pytest.raises(TraceError, match=r"last module entered: b \(Conv2d\)"):
        detprune.groups(Broken(), torch.rand(1, 3, 8, 8))


def test_unsupported_layer_is_pinned_or_refused() -> None:
    model = WithLSTM().eval()
    with pytest.raises(UnsupportedLayerError, match=r"rnn \(LSTM\)"):
        detprune.groups(model, torch.rand(1, 3, 8, 8), strict=True)
    found = detprune.groups(model, torch.rand(1, 3, 8, 8))
    conv = next(g for g in found if g.members[0].label == "conv.weight[0]")
    assert conv.prunable == 0
    assert any("LSTM" in r and "not understood" in r for r in conv.reasons())


@pytest.mark.parametrize("ratio", [-0.1, 1.0, 1.5, "0.5"])
def test_ratio_outside_range(ratio) -> None:
    with pytest.raises(ValueError, match=r"ratio must be in \[0, 1\)"):
        detprune.prune(Bottleneck().eval(), torch.rand(1, 3, 8, 8), ratio=ratio)


def test_ignore_entry_matching_nothing() -> None:
    with pytest.raises(ValueError, match=r"ignore entry 'backbone.nothing' matches no module of Bottleneck"):
        detprune.groups(Bottleneck().eval(), torch.rand(1, 3, 8, 8), ignore=["backbone.nothing"])


def test_ignore_pins_the_module() -> None:
    model = Bottleneck().eval()
    found = detprune.groups(model, torch.rand(1, 3, 8, 8), ignore=["cv1", nn.SiLU, model.cv3])
    hit = [g for g in found if {m.slot.module_path for m in g.members} & {"cv1.0", "cv3.0"}]
    assert len(hit) >= 2
    for g in hit:
        assert g.prunable == 0 and any("ignored by user" in r for r in g.reasons())


def test_one_ignore_path_alone_is_one_entry_and_an_empty_path_is_refused() -> None:
    model, x = Bottleneck().eval(), torch.rand(1, 3, 8, 8)
    alone = detprune.groups(model, x, ignore="cv1")  # not the paths 'c' and 'v' and '1'
    assert [g.prunable for g in alone] == [g.prunable for g in detprune.groups(model, x, ignore=["cv1"])]
    with pytest.raises(ValueError, match="ignore entry '' is empty"):
        detprune.groups(model, x, ignore=[""])


def test_ratios_without_the_layerwise_schedule_and_boolean_round_to_are_refused() -> None:
    model, x = Bottleneck().eval(), torch.rand(1, 3, 8, 8)
    with pytest.raises(ValueError, match="ratios= is read by schedule='layerwise' only, not by schedule='global'"):
        detprune.prune(model, x, ratio=0.3, schedule="global", ratios={"cv1": 0.5})
    with pytest.raises(ValueError, match="round_to must be a positive int, got True"):
        detprune.prune(model, x, round_to=True)


def test_summary_says_what_was_removed_when_caps_held_the_ratio_back() -> None:
    model, x = Bottleneck().eval(), torch.rand(1, 3, 8, 8)
    report = detprune.prune(model, x, ratio=0.9, schedule="global", max_ratio=0.2)
    assert report.ratio == 0.9 and report.removed is not None and report.removed <= 0.2
    assert f"{report.removed:.1%} of prunable channels removed" in report.summary()
    plain = detprune.prune(Bottleneck().eval(), x, ratio=0.5)
    assert "removed" not in plain.summary()  # 0.5 of every group, as asked


def test_unknown_criterion() -> None:
    with pytest.raises(ValueError, match="unknown criterion 'nope'"):
        detprune.prune(Bottleneck().eval(), torch.rand(1, 3, 8, 8), criterion="nope")


def test_zero_ratio_changes_nothing() -> None:
    model = Bottleneck().eval()
    before = sum(p.numel() for p in model.parameters())
    report = detprune.prune(model, torch.rand(1, 3, 8, 8), ratio=0.0)
    assert report.params_after == before == sum(p.numel() for p in model.parameters())
