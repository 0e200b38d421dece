"""Hand-checked values of the baseline criteria on tiny layers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import detprune
from detprune.criteria import bn_l1_penalty, get_criterion
from detprune.graph.groups import Group, Member


def _member(groups: list[Group], label: str) -> Member:
    return next(m for g in groups for m in g.members if m.label == label)


def _group(groups: list[Group], label: str) -> Group:
    return next(g for g in groups if any(m.label == label for m in g.members))


def conv_bn(c: int = 6) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(3, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, 2, 1))


def test_bn_scale_ranks_by_abs_gamma() -> None:
    model = conv_bn().eval()
    gamma = torch.tensor([0.5, -2.0, 0.1, 1.0, -0.05, 0.3])
    with torch.no_grad():
        model[1].weight.copy_(gamma)
    x = torch.rand(1, 3, 8, 8)
    groups = detprune.groups(model, x)
    crit = get_criterion("bn_scale")
    assert crit.member_scores(_member(groups, "1.weight[0]")) == pytest.approx(gamma.abs().numpy())
    assert crit.member_scores(_member(groups, "0.weight[0]")) is None
    assert np.argsort(crit.group_scores(_group(groups, "1.weight[0]"))).tolist() == [4, 2, 5, 0, 3, 1]
    detprune.prune(model, x, criterion="bn_scale", ratio=0.5, measure=False)
    assert model[1].weight.detach().tolist() == pytest.approx([0.5, -2.0, 1.0])  # the 3 largest |gamma|, in order


def test_bn_scale_falls_back_to_l1_without_bn() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU(), nn.Conv2d(4, 2, 1))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([1.0, 3.0, 2.0, 0.5]).view(4, 1, 1, 1).expand(4, 3, 1, 1))
    groups = detprune.groups(model, torch.rand(1, 3, 4, 4))
    scores = get_criterion("bn_scale").group_scores(_group(groups, "0.weight[0]"))
    assert np.argsort(scores).tolist() == [3, 0, 2, 1]


def test_bn_l1_penalty_value_and_gradient() -> None:
    model = conv_bn()
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([0.5, -2.0, 0.1, 1.0, -0.05, 0.3]))
    penalty = bn_l1_penalty(model, lam=0.1)
    assert penalty.item() == pytest.approx(0.1 * 3.95)
    penalty.backward()
    assert model[1].weight.grad.tolist() == pytest.approx([0.1, -0.1, 0.1, 0.1, -0.1, 0.1])
    assert bn_l1_penalty(nn.Linear(2, 2)).item() == 0.0


def test_fpgm_three_filters() -> None:
    model = nn.Sequential(nn.Conv2d(1, 3, 1, bias=False), nn.Conv2d(3, 1, 1))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([0.0, 1.0, 3.0]).view(3, 1, 1, 1))
    groups = detprune.groups(model, torch.rand(1, 1, 4, 4))
    # distances: f0 = |0-1| + |0-3| = 4, f1 = 1 + 2 = 3, f2 = 3 + 2 = 5; f1 is the geometric median
    assert get_criterion("fpgm").member_scores(_member(groups, "0.weight[0]")) == pytest.approx([4.0, 3.0, 5.0])
    detprune.prune(model, torch.rand(1, 1, 4, 4), criterion="fpgm", ratio=0.34, measure=False)
    assert model[0].weight.flatten().tolist() == [0.0, 3.0]


def test_fpgm_euclidean_in_filter_space() -> None:
    model = nn.Sequential(nn.Conv2d(2, 3, 1, bias=False), nn.Conv2d(3, 1, 1))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 4.0]]).view(3, 2, 1, 1))
    groups = detprune.groups(model, torch.rand(1, 2, 4, 4))
    assert get_criterion("fpgm").member_scores(_member(groups, "0.weight[0]")) == pytest.approx([9.0, 8.0, 7.0])


def test_hrank_ranks_of_known_maps() -> None:
    """1x1 conv copying inputs: out0 = rank-1 outer product, out1 = full-rank map, out2 = zero map."""
    model = nn.Sequential(nn.Conv2d(2, 3, 1, bias=False), nn.Conv2d(3, 1, 1))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]).view(3, 2, 1, 1))
    torch.manual_seed(0)
    u, v = torch.rand(2, 6, 1) + 0.1, torch.rand(2, 1, 8) + 0.1
    images = torch.stack([u @ v, torch.randn(2, 6, 8)], 1)  # [2, 2, 6, 8]
    groups = detprune.groups(model, images[:1])
    crit = get_criterion("hrank", progress=False)
    crit.prepare(model, groups, data=[images[:1], images[1:]])
    assert crit.member_scores(_member(groups, "0.weight[0]")).tolist() == [1.0, 6.0, 0.0]


def test_taylor_on_a_linear_model() -> None:
    """L = sum(W2 (W1 x + b1)): dL/dA_k = W2[0, k], so T_k = mean_n |A_nk W2_k|."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 1))
    x = torch.randn(5, 3)
    groups = detprune.groups(model, x)
    crit = get_criterion("taylor", loss_fn=lambda m, b: m(b).sum(), progress=False)
    crit.prepare(model, groups, data=[x[:2], x[2:]])
    with torch.no_grad():
        expected = (model[0](x) * model[1].weight[0]).abs().mean(0).numpy()
    assert crit.member_scores(_member(groups, "0.weight[0]")) == pytest.approx(expected, rel=1e-5)
    assert all(p.grad is None for p in model.parameters())  # scoring leaves .grad untouched


def test_wrg_factors_and_modes() -> None:
    torch.manual_seed(0)
    model = conv_bn().eval()
    data = [torch.rand(2, 3, 8, 8) for _ in range(2)]
    groups = detprune.groups(model, data[0])
    loss = lambda m, b: m(b).square().mean()  # noqa: E731
    member = _member(groups, "0.weight[0]")
    prod = get_criterion("wrg", loss_fn=loss, progress=False)
    prod.prepare(model, groups, data=data)
    f = prod.factors(member, prod.stats["0"])
    assert f.shape == (3, 6) and np.allclose(f.mean(1), 1.0)
    l1 = model[0].weight.detach().abs().flatten(1).sum(1).numpy()
    assert f[0] == pytest.approx(l1 / l1.mean())
    assert prod.member_scores(member) == pytest.approx(f.prod(0))
    summed = get_criterion("wrg", loss_fn=loss, mode="sum", w_weight=2.0, w_rank=0.0, w_grad=1.0, progress=False)
    summed.prepare(model, groups, data=data)
    assert summed.member_scores(member) == pytest.approx(2 * f[0] + f[2])
    weight_only = get_criterion("wrg", loss_fn=loss, w_rank=0.0, w_grad=0.0, progress=False)
    weight_only.prepare(model, groups, data=data)
    assert weight_only.member_scores(member) == pytest.approx(f[0])


def test_gradient_criteria_need_a_loss() -> None:
    model = conv_bn()
    x = torch.rand(1, 3, 8, 8)
    with pytest.raises(ValueError, match="loss_fn"):
        detprune.prune(model, x, criterion="taylor", data=[x], progress=False, measure=False)
    with pytest.raises(ValueError, match="calibration data"):
        detprune.prune(model, x, criterion="hrank", progress=False, measure=False)
