"""Convolutional building blocks shared by the built-in detectors.

Every block derives its channel bookkeeping from the tensors it sees at run time
(``chunk`` instead of fixed-size ``split``, no stored widths in ``forward``), so that a
channel-pruned copy, whose conv/BN modules were shrunk in place, still runs.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

# BatchNorm settings of Ultralytics/darknet-style training (slow running statistics).
BN_EPS = 1e-3
BN_MOMENTUM = 0.03


def make_divisible(x: float, divisor: int = 8) -> int:
    """Smallest multiple of ``divisor`` that is >= ``x`` (hardware-friendly channel counts)."""
    return int(math.ceil(x / divisor) * divisor)


def scale_channels(channels: int, width: float, max_channels: int | None = None, minimum: int = 8) -> int:
    """Width-multiplied channel count: capped at ``max_channels``, a multiple of 8, at least ``minimum``."""
    if max_channels is not None:
        channels = min(channels, max_channels)
    return max(minimum, make_divisible(channels * width, 8))


def scale_depth(repeats: int, depth: float) -> int:
    """Depth-multiplied number of repeated blocks (never fewer than one)."""
    return max(round(repeats * depth), 1)


def _activation(act: str | None) -> nn.Module:
    if act is None:
        return nn.Identity()
    if act == "silu":
        return nn.SiLU(inplace=True)
    if act == "leaky":
        return nn.LeakyReLU(0.1, inplace=True)
    raise ValueError(f"unknown activation {act!r}")


class Conv(nn.Module):
    """Conv2d (no bias) + BatchNorm2d + activation: the prunable unit of both detectors."""

    def __init__(
        self, c1: int, c2: int, k: int = 1, s: int = 1, p: int | None = None, g: int = 1, act: str | None = "silu"
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, k // 2 if p is None else p, groups=g, bias=False)
        self.bn = nn.BatchNorm2d(c2, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.act = _activation(act)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    """Two 3x3 convs with an optional residual (YOLOv8 flavour: expansion 1.0 inside C2f)."""

    def __init__(self, c1: int, c2: int, shortcut: bool = True, e: float = 1.0) -> None:
        super().__init__()
        hidden = int(c2 * e)
        self.cv1 = Conv(c1, hidden, 3)
        self.cv2 = Conv(hidden, c2, 3)
        self.add = shortcut and c1 == c2

    def forward(self, x: Tensor) -> Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C2f(nn.Module):
    """CSP block of YOLOv8: split cv1's output in two halves, chain bottlenecks on the second, concat all.

    The split is ``chunk(2, 1)`` so the halves follow cv1's (possibly pruned) width.
    """

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = False, e: float = 0.5) -> None:
        super().__init__()
        hidden = int(c2 * e)
        self.cv1 = Conv(c1, 2 * hidden, 1)
        self.cv2 = Conv((2 + n) * hidden, c2, 1)
        self.m = nn.ModuleList(Bottleneck(hidden, hidden, shortcut, e=1.0) for _ in range(n))

    def forward(self, x: Tensor) -> Tensor:
        first, second = self.cv1(x).chunk(2, 1)  # unpacked (not list()) so torch.fx can trace it
        y = [first, second]
        for block in self.m:
            y.append(block(y[-1]))
        return self.cv2(torch.cat(y, 1))


class SPPF(nn.Module):
    """Spatial pyramid pooling (fast): three chained 5x5 max-pools, equivalent to SPP(5, 9, 13)."""

    def __init__(self, c1: int, c2: int, k: int = 5) -> None:
        super().__init__()
        hidden = c1 // 2
        self.cv1 = Conv(c1, hidden, 1)
        self.cv2 = Conv(hidden * 4, c2, 1)
        self.m = nn.MaxPool2d(kernel_size=k, stride=1, padding=k // 2)

    def forward(self, x: Tensor) -> Tensor:
        y = [self.cv1(x)]
        for _ in range(3):
            y.append(self.m(y[-1]))
        return self.cv2(torch.cat(y, 1))
