"""Shared fixtures of the schedule tests: tiny models, single-threaded torch."""

from __future__ import annotations


import pytest
import torch
from torch import Tensor, nn


@pytest.fixture(autouse=True)
def _one_thread(one_thread: None) -> None:
    """Every test here runs with one intra-op thread (see tests/conftest.py)."""


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh cache per test here (overrides the suite's per-session one): every test starts from empty tables."""
    monkeypatch.setenv("DETPRUNE_CACHE", str(tmp_path_factory.mktemp("cache")))


class TinyNet(nn.Module):
    """Stem, a residual pair, a depthwise block and a linear head: every kind of coupling, quickly."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU())
        self.a = nn.Sequential(nn.Conv2d(width, 2 * width, 3, padding=1, stride=2), nn.BatchNorm2d(2 * width), nn.ReLU())
        self.b1 = nn.Sequential(nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU())
        self.dw = nn.Sequential(nn.Conv2d(2 * width, 2 * width, 3, padding=1, groups=2 * width),
                                nn.BatchNorm2d(2 * width), nn.ReLU())
        self.c = nn.Sequential(nn.Conv2d(2 * width, width, 1), nn.BatchNorm2d(width), nn.ReLU())
        self.head = nn.Conv2d(width, 6, 1)
        self.fc = nn.Linear(width, 4)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        y = self.a(self.stem(x))
        y = y + self.b1(y)
        y = self.c(self.dw(y))
        return self.head(y), self.fc(y.mean((2, 3)))


@pytest.fixture
def tiny() -> tuple[nn.Module, Tensor]:
    torch.manual_seed(0)
    return TinyNet().eval(), torch.rand(1, 3, 32, 32)
