"""The streaming collector: hook placement, batch conventions, gradients, limits, side effects."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import detprune
from detprune.criteria.collect import ActivationCollector, collect, hook_points, producers

from blocks import cbs


class Wrapped(nn.Module):
    """Ultralytics-style Conv(conv, bn, act) wrapper with a shared activation instance."""

    shared_act = nn.SiLU()

    def __init__(self, c1: int, c2: int) -> None:
        super().__init__()
        self.conv, self.bn, self.act = nn.Conv2d(c1, c2, 3, padding=1, bias=False), nn.BatchNorm2d(c2), self.shared_act

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = cbs(3, 8, 3)
        self.b = Wrapped(8, 8)
        self.c = Wrapped(8, 8)
        self.head = nn.Conv2d(8, 2, 1)

    def forward(self, x):
        return self.head(self.c(self.b(self.a(x))))


def _sum_stat(maps: torch.Tensor, grads: torch.Tensor | None) -> torch.Tensor:
    return maps.flatten(2).sum(-1).sum(0)


def test_hook_points() -> None:
    model = Net().eval()
    groups = detprune.groups(model, torch.rand(1, 3, 8, 8))
    prods = producers(groups)
    assert set(prods) == {"a.0", "b.conv", "c.conv", "head"}
    assert hook_points(model, prods, "output")["a.0"] is model.a[0]
    assert hook_points(model, prods, "next")["a.0"] is model.a[1]
    post = hook_points(model, prods, "post")
    assert post["a.0"] is model.a[2] and post["b.conv"] is model.b and post["c.conv"] is model.c
    assert post["head"] is model.head
    with pytest.raises(ValueError, match="hook"):
        hook_points(model, prods, "later")


def test_post_maps_are_post_activation() -> None:
    model = Net().eval()
    x = torch.rand(2, 3, 8, 8)
    groups = detprune.groups(model, x[:1])
    stats = collect(model, groups, [x], _sum_stat, hook="post", progress=False)
    with torch.no_grad():
        a = model.a(x)
        expected = {"a.0": a, "b.conv": model.b(a), "head": model(x)}
    for key, t in expected.items():
        assert stats[key] == pytest.approx(t.flatten(2).sum(-1).mean(0).numpy(), rel=1e-5)


def test_streaming_mean_batches_limit_and_mode() -> None:
    model = Net().train()
    data = [torch.rand(n, 3, 8, 8) for n in (1, 3, 2)]
    groups = detprune.groups(model.eval(), data[0])
    model.train()
    running = model.a[1].running_mean.clone()
    stats = collect(model, groups, data, _sum_stat, max_batches=2, progress=True)
    assert model.training and torch.equal(model.a[1].running_mean, running)  # eval during collection, restored
    with torch.no_grad():
        model.eval()
        expected = torch.cat([model.a[0](d) for d in data[:2]]).flatten(2).sum(-1).mean(0)
    assert stats["a.0"] == pytest.approx(expected.numpy(), rel=1e-5)


def test_tuple_batches_and_generators() -> None:
    model = Net().eval()
    groups = detprune.groups(model, torch.rand(1, 3, 8, 8))
    x = torch.rand(2, 3, 8, 8)
    batches = ((x, [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)}] * 2) for _ in range(2))
    stats = collect(model, groups, batches, _sum_stat, progress=True)
    assert set(stats) == {"a.0", "b.conv", "c.conv", "head"}


def test_gradients_see_pre_inplace_values_and_leave_grads_alone() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(inplace=True), nn.Linear(4, 1))
    x = torch.randn(6, 3)
    groups = detprune.groups(model, x)
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    def stat(maps, grads):
        seen.append((maps.clone(), grads.clone()))
        return maps.flatten(2).sum(-1).sum(0)

    ActivationCollector(model, groups, stat, needs_grad=True, loss_fn=lambda m, b: m(b).sum(), progress=False).run([x])
    maps, grads = next((m, g) for m, g in seen if m.shape[1] == 4)
    with torch.no_grad():
        pre = model[0](x)
    assert torch.allclose(maps[..., 0], pre)  # not clobbered by the in-place ReLU
    assert torch.allclose(grads[..., 0], (pre > 0).float() * model[2].weight[0])
    assert all(p.grad is None for p in model.parameters())


def test_frozen_model_still_gets_gradients() -> None:
    model = Net().eval()
    for p in model.parameters():
        p.requires_grad_(False)
    x = torch.rand(2, 3, 8, 8)
    groups = detprune.groups(model, x)
    stats = collect(model, groups, [x], lambda m, g: g.abs().flatten(2).sum(-1).sum(0), needs_grad=True,
                    loss_fn=lambda m, b: m(b).square().sum(), progress=False)
    assert np.all(stats["a.0"] > 0)


def test_no_activation_is_an_error() -> None:
    model, other = Net().eval(), Net().eval()
    groups = detprune.groups(model, torch.rand(1, 3, 8, 8))
    with pytest.raises(RuntimeError, match="no activation"):
        collect(model, groups, [torch.rand(1, 3, 8, 8)], _sum_stat, forward_fn=lambda m, b: other(b), progress=False)
