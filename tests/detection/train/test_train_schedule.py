"""Warm-up + cosine schedule and optimiser parameter groups."""

import math

import pytest
import torch
from torch import nn

from detprune.detection.train import TrainConfig, build_optimizer, build_scheduler, param_groups, warmup_cosine_factor


def test_factor_key_points() -> None:
    total, warm = 100, 10
    assert warmup_cosine_factor(0, total, warm, 0.05, 0.1) == pytest.approx(0.1)
    assert warmup_cosine_factor(5, total, warm, 0.05, 0.1) == pytest.approx(0.55)
    assert warmup_cosine_factor(warm, total, warm, 0.05, 0.1) == pytest.approx(1.0)
    mid = warm + (total - warm) // 2
    assert warmup_cosine_factor(mid, total, warm, 0.05, 0.1) == pytest.approx(0.05 + 0.95 * 0.5)
    assert warmup_cosine_factor(total, total, warm, 0.05, 0.1) == pytest.approx(0.05)
    assert warmup_cosine_factor(total + 7, total, warm, 0.05, 0.1) == pytest.approx(0.05)


def test_factor_monotone_after_warmup_and_no_warmup() -> None:
    vals = [warmup_cosine_factor(i, 50, 5) for i in range(51)]
    assert all(a <= b + 1e-12 for a, b in zip(vals[:5], vals[1:6]))
    assert all(a >= b - 1e-12 for a, b in zip(vals[5:], vals[6:]))
    assert warmup_cosine_factor(0, 50, 0) == pytest.approx(1.0)


def test_scheduler_lr_at_warmup_end_and_end() -> None:
    p = nn.Parameter(torch.zeros(2))
    opt = torch.optim.SGD([p], lr=0.1, momentum=0.9)
    total, warm = 20, 4
    sched = build_scheduler(opt, total, warm, final_ratio=0.01, start_factor=0.0)
    lrs = [opt.param_groups[0]["lr"]]
    for _ in range(total):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs[0] == pytest.approx(0.0)
    assert lrs[warm] == pytest.approx(0.1)
    assert max(lrs) == pytest.approx(0.1)
    assert lrs[total] == pytest.approx(0.001)
    expected_mid = 0.001 + 0.099 * 0.5 * (1 + math.cos(math.pi * 0.5))
    assert lrs[warm + (total - warm) // 2] == pytest.approx(expected_mid)
    # state dict is counters only: a rebuilt scheduler continues where the old one was
    state = sched.state_dict()
    opt2 = torch.optim.SGD([nn.Parameter(torch.zeros(2))], lr=0.1)
    sched2 = build_scheduler(opt2, total, warm, final_ratio=0.01, start_factor=0.0)
    sched2.load_state_dict(state)
    assert sched2.last_epoch == total


def test_param_groups_exclude_bn_and_bias_from_decay() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, 2, 1, bias=True), nn.Linear(2, 2))
    model[0].weight.requires_grad_(False)
    decay, no_decay = param_groups(model, 1e-3)
    names = {id(p): n for n, p in model.named_parameters()}
    assert {names[id(p)] for p in decay["params"]} == {"2.weight", "3.weight"}
    assert {names[id(p)] for p in no_decay["params"]} == {"0.bias", "1.weight", "1.bias", "2.bias", "3.bias"}
    assert decay["weight_decay"] == 1e-3 and no_decay["weight_decay"] == 0.0


@pytest.mark.parametrize("name", ["sgd", "adamw"])
def test_build_optimizer(name: str) -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    opt = build_optimizer(model, TrainConfig(optimizer=name, lr=0.003, weight_decay=0.1))
    assert isinstance(opt, torch.optim.SGD if name == "sgd" else torch.optim.AdamW)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0]
    if name == "sgd":
        assert opt.param_groups[0]["nesterov"] is True
    with pytest.raises(ValueError):
        TrainConfig(optimizer="lion")
