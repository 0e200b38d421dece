"""Unit tests of the op rules: where channels go, what gets tied, what gets pinned and why."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import detprune
from detprune.graph.ops.shape import map_reshape, parse_index


def test_map_reshape() -> None:
    assert map_reshape((1, 8, 4, 4), 1, (1, 128)) == (1, 16)  # flatten before a Linear
    assert map_reshape((2, 8, 4, 4), 1, (2, 8, 16)) == (1, 1)  # spatial merge keeps channels
    assert map_reshape((1, 8, 4, 4), 1, (8, 16)) == (0, 1)  # batch of one dropped
    assert map_reshape((1, 8, 4, 4), 1, (1, 2, 4, 16)) is None  # heads split: cannot follow
    assert map_reshape((2, 8, 4, 4), 1, (16, 16)) is None  # merged with the batch


def test_parse_index() -> None:
    dims, consumed, adv = parse_index((slice(None), slice(2, 5), None, Ellipsis), 4)
    assert dims == [(0, slice(None)), (1, slice(2, 5)), (None, None), (2, slice(None)), (3, slice(None))]
    assert consumed == set() and adv == 0
    dims, consumed, adv = parse_index((0, torch.tensor([1, 2])), 3)
    assert consumed == {0, 1} and adv == 1 and dims[-1] == (2, slice(None))


class Net(nn.Module):
    """One producer whose output goes through a single op under test, then a consumer conv."""

    def __init__(self, op) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 1)
        self.b = nn.Conv2d(8, 4, 1)
        self.op = op

    def forward(self, x):
        return self.b(self.op(self.a(x)))


def producer_group(op, x=None):
    model = Net(op).eval()
    found = detprune.groups(model, torch.rand(1, 3, 4, 4) if x is None else x)
    return next(g for g in found if g.members[0].label == "a.weight[0]")


def test_passthrough_ops_keep_channels_prunable() -> None:
    for op in (torch.relu, lambda y: F.max_pool2d(y, 2), lambda y: F.interpolate(y, scale_factor=2.0),
               lambda y: y.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2), lambda y: y * 2 + 1,
               lambda y: F.pad(y, (1, 1, 1, 1)), lambda y: y.flip(1), lambda y: y.softmax(dim=-1)):
        assert producer_group(op).prunable == 8


def test_channel_mixing_ops_pin_with_reason() -> None:
    cases = {
        "softmax": lambda y: y.softmax(dim=1),
        "split": lambda y: torch.cat(y.split([3, 5], 1), 1),
        "mean": lambda y: y - y.mean(1, keepdim=True),
        "view": lambda y: y.view(1, 2, 4, 4, 4).sum(1).repeat(1, 2, 1, 1),
        "channel count used": lambda y: y + torch.zeros(1, y.shape[1] // 2, 1, 1).repeat(1, 2, 1, 1),
        "not understood": lambda y: torch.einsum("bchw,bdhw->bcdhw", y, y).sum(2),
    }
    for word, op in cases.items():
        g = producer_group(op)
        assert g.prunable == 0, word
        assert any(word in r for r in g.reasons()), (word, g.reasons())


def test_shape_derived_size_that_follows_the_axis_is_fine() -> None:
    g = producer_group(lambda y: y.view(y.shape[0], y.shape[1], -1).view(y.shape))
    assert g.prunable == 8


def test_creation_from_channel_count_follows_channels() -> None:
    g = producer_group(lambda y: y + torch.zeros(1, y.shape[1], 1, 1))
    assert g.prunable == 8


class RelativeBias(nn.Module):
    """MaxViT / Swin style: a bias table [positions, heads] gathered through a buffer of positions."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(4, 2)
        self.table = nn.Parameter(torch.randn(9, 2))
        self.register_buffer("index", torch.randint(0, 9, (4, 4)))

    def forward(self, x):  # x: [B, 4 tokens, 4]
        bias = self.table[self.index.view(-1)].view(4, 4, -1).permute(2, 0, 1)  # [heads, 4, 4]
        return self.proj(x).transpose(1, 2).unsqueeze(-1) + bias.unsqueeze(0)


def test_a_buffer_used_as_an_index_is_never_pruned() -> None:
    # the index buffer's dims were tracked (as every buffer's) but its use as an index was not
    # accounted for: prune() cut rows of the index itself and the model no longer ran (torchvision maxvit_t)
    torch.manual_seed(0)
    model = RelativeBias().eval()
    x = torch.rand(1, 4, 4)
    found = detprune.groups(model, x)
    assert not [g for g in found if g.prunable and any(m.label.startswith("<model>.index") for m in g.members)]
    detprune.prune(model, x, criterion="l1", ratio=0.5, measure=False)
    assert model.index.shape == (4, 4)
    assert model(x).shape == (1, 2, 4, 4)
