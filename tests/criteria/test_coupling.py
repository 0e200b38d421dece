"""DCODP coupling / CHIP: the fast evaluations equal the naive masked-SVD definition."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import detprune
from detprune.criteria import get_criterion
from detprune.criteria.coupling import nuclear_drops, nuclear_drops_naive


def _matrix(shape: tuple[int, int, int], rank: int | None, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    B, C, P = shape
    A = torch.randn(B, C, rank, generator=g) @ torch.randn(B, rank, P, generator=g) if rank else torch.randn(B, C, P, generator=g)
    return A * torch.logspace(-1.5, 1, C)[None, :, None]  # rows on different scales


@pytest.mark.parametrize("method", ["quad", "eig"])
@pytest.mark.parametrize("shape,rank", [
    ((2, 8, 64), None),   # C < HW
    ((2, 48, 12), None),  # C > HW
    ((2, 12, 12), None),  # square
    ((2, 16, 50), 5),     # rank-deficient, C < HW
    ((2, 40, 10), 3),     # rank-deficient, C > HW
    ((1, 6, 1), None),    # one position (linear layer)
])
def test_fast_equals_naive(shape, rank, method: str) -> None:
    A = _matrix(shape, rank, seed=sum(shape))
    ref = nuclear_drops_naive(A)
    got = nuclear_drops(A, method)
    scale = torch.linalg.svdvals(A.double()).sum(-1, keepdim=True)  # ||A||_*
    assert (ref >= -1e-9 * scale).all()
    assert torch.allclose(got, ref, rtol=1e-5, atol=1e-7 * scale.max().item())
    assert ((got - ref).abs() / scale).max() < 1e-6


def test_zero_and_single_channel_maps() -> None:
    assert torch.equal(nuclear_drops(torch.zeros(1, 4, 9)), torch.zeros(1, 4, dtype=torch.float64))
    A = torch.randn(1, 1, 9)
    assert torch.allclose(nuclear_drops(A), A.double().norm(dim=-1))


def test_redundant_row_has_smallest_drop() -> None:
    torch.manual_seed(0)
    A = torch.randn(3, 8, 64)
    A[:, 7] = 0.6 * A[:, 0] - 0.5 * A[:, 3]
    assert (nuclear_drops(A).argmin(-1) == 7).all()


class OneConv(nn.Module):
    def __init__(self, c: int = 6) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, c, 3, padding=1)
        self.act = nn.ReLU()
        self.out = nn.Conv2d(c, 2, 1)
        with torch.no_grad():  # channel 4 = 0.7 * channel 1 + 0.4 * channel 2, exactly
            self.conv.weight[4] = 0.7 * self.conv.weight[1] + 0.4 * self.conv.weight[2]
            self.conv.bias[4] = 0.7 * self.conv.bias[1] + 0.4 * self.conv.bias[2]

    def forward(self, x):
        return self.out(self.act(self.conv(x)))


@pytest.mark.parametrize("size", [8, 3])  # HW = 64 and 9 > C (with C > HW every row is a combination)
def test_redundant_channel_scored_lowest_through_hooks(size: int) -> None:
    torch.manual_seed(1)
    model = OneConv().eval()
    x = torch.rand(1, 3, size, size)
    groups = detprune.groups(model, x)
    crit = get_criterion("coupling", progress=False)
    crit.prepare(model, groups, data=[torch.rand(2, 3, size, size) for _ in range(2)])
    member = next(m for g in groups for m in g.members if m.label == "conv.weight[0]")
    scores = crit.member_scores(member)
    assert scores.shape == (6,) and int(scores.argmin()) == 4


def test_coupling_prunes_the_redundant_channel() -> None:
    torch.manual_seed(1)
    model = OneConv().eval()
    x = torch.rand(1, 3, 8, 8)
    keep_w = model.conv.weight[[0, 1, 2, 3, 5]].clone()
    detprune.prune(model, x, criterion="coupling", ratio=0.2, data=[torch.rand(4, 3, 8, 8)], progress=False,
                   measure=False)
    assert model.conv.out_channels == 5 and torch.equal(model.conv.weight, keep_w)


def test_chip_hooks_post_activation() -> None:
    """CHIP on the ReLU output differs from coupling on the conv output; on the same map they agree."""
    torch.manual_seed(2)
    block = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.Conv2d(6, 2, 1)).eval()
    x = torch.rand(1, 3, 8, 8)
    data = [torch.rand(2, 3, 8, 8)]
    groups = detprune.groups(block, x)
    member = next(m for g in groups for m in g.members if m.label == "0.weight[0]")
    with torch.no_grad():
        post = torch.relu(block[1](block[0](data[0])))
    expected = nuclear_drops_naive(post.flatten(2)).mean(0).numpy()
    chip = get_criterion("chip", progress=False)
    chip.prepare(block, groups, data=data)
    assert chip.member_scores(member) == pytest.approx(expected, rel=1e-5, abs=1e-8)
    same = get_criterion("coupling", hook="post", method="eig", progress=False)
    same.prepare(block, groups, data=data)
    assert same.member_scores(member) == pytest.approx(expected, rel=1e-5, abs=1e-8)
