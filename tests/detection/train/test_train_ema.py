"""ModelEMA: ramped decay, averaging of float state, copying of integer buffers."""

import math

import pytest
import torch
from torch import nn

from detprune.detection.train import ModelEMA


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))


def test_decay_ramps_from_zero() -> None:
    ema = ModelEMA(_model(), decay=0.999, tau=10)
    assert ema.decay_at(1) == pytest.approx(0.999 * (1 - math.exp(-0.1)))
    assert ema.decay_at(1) < ema.decay_at(10) < ema.decay_at(100) < 0.999
    assert ema.decay_at(10_000) == pytest.approx(0.999)


def test_update_formula_and_int_buffers() -> None:
    model = _model()
    ema = ModelEMA(model, decay=0.9, tau=1.0)
    before = {k: v.clone() for k, v in ema.module.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    model[1].num_batches_tracked.fill_(7)
    ema.update(model)
    d = 0.9 * (1 - math.exp(-1.0))
    w = model[0].weight
    assert torch.allclose(ema.module[0].weight, d * before["0.weight"] + (1 - d) * w)
    assert int(ema.module[1].num_batches_tracked) == 7
    assert not ema.module.training
    assert not any(p.requires_grad for p in ema.module.parameters())


def test_ema_differs_from_raw_and_follows_it() -> None:
    model = _model()
    ema = ModelEMA(model, decay=0.9, tau=1.0)
    target = 3.0
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(target)
    ema.update(model)
    gap1 = (ema.module[0].weight - target).abs().max().item()
    assert gap1 > 1e-3  # lags behind the raw weights
    for _ in range(100):
        ema.update(model)
    gap2 = (ema.module[0].weight - target).abs().max().item()
    assert gap2 < gap1 * 1e-3  # converges to them


def test_state_dict_round_trip() -> None:
    model = _model()
    ema = ModelEMA(model, tau=5)
    for _ in range(3):
        ema.update(model)
    other = ModelEMA(_model())
    other.load_state_dict(ema.state_dict())
    assert other.updates == 3 and other.tau == 5
    for a, b in zip(ema.module.state_dict().values(), other.module.state_dict().values()):
        assert torch.equal(a, b)
