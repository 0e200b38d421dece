"""Small models with each structure the coupling graph must handle (DCODP's inter-layer cases)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops.misc import FrozenBatchNorm2d


def cbs(c1: int, c2: int, k: int = 1, s: int = 1, g: int = 1, act: type = nn.SiLU) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c1, c2, k, s, k // 2, groups=g, bias=False), nn.BatchNorm2d(c2), act())


class Bottleneck(nn.Module):
    """ResNet/YOLO residual bottleneck: the add ties the input channels to cv2's outputs."""

    def __init__(self, c: int = 16, hidden: int = 8) -> None:
        super().__init__()
        self.stem = cbs(3, c, 3)
        self.cv1, self.cv2 = cbs(c, hidden, 1), cbs(hidden, c, 3)
        self.cv3 = cbs(c, hidden, 3)
        self.head = nn.Conv2d(hidden, 5, 1)

    def forward(self, x):
        x = self.stem(x)
        x = x + self.cv2(self.cv1(x))
        return self.head(self.cv3(x))


class ELAN(nn.Module):
    """YOLOv7 ELAN: two 1x1 branches, a chain of 3x3 convs, concatenation of 4 taps, 1x1 fuse."""

    def __init__(self, c: int = 16) -> None:
        super().__init__()
        h = c // 2
        self.stem = cbs(3, c, 3, 2)
        self.b1, self.b2 = cbs(c, h), cbs(c, h)
        self.b3, self.b4, self.b5, self.b6 = cbs(h, h, 3), cbs(h, h, 3), cbs(h, h, 3), cbs(h, h, 3)
        self.fuse = cbs(4 * h, c)
        self.head = nn.Conv2d(c, 6, 1)

    def forward(self, x):
        x = self.stem(x)
        y1, y2 = self.b1(x), self.b2(x)
        y4 = self.b4(self.b3(y2))
        y6 = self.b6(self.b5(y4))
        return self.head(self.fuse(torch.cat([y6, y4, y2, y1], 1)))


class RepConv(nn.Module):
    """RepVGG/YOLOv7 RepConv: 3x3+BN, 1x1+BN and identity BN summed (training form) or one fused conv."""

    def __init__(self, c1: int, c2: int, fused: bool = False) -> None:
        super().__init__()
        self.fused = fused
        if fused:
            self.conv = nn.Conv2d(c1, c2, 3, 1, 1)
        else:
            self.dense = nn.Sequential(nn.Conv2d(c1, c2, 3, 1, 1, bias=False), nn.BatchNorm2d(c2))
            self.one = nn.Sequential(nn.Conv2d(c1, c2, 1, bias=False), nn.BatchNorm2d(c2))
            self.identity = nn.BatchNorm2d(c2) if c1 == c2 else None
        self.act = nn.SiLU()

    def forward(self, x):
        if self.fused:
            return self.act(self.conv(x))
        y = self.dense(x) + self.one(x)
        if self.identity is not None:
            y = y + self.identity(x)
        return self.act(y)


class RepNet(nn.Module):
    def __init__(self, fused: bool = False) -> None:
        super().__init__()
        self.stem = cbs(3, 16, 3)
        self.r1, self.r2 = RepConv(16, 16, fused), RepConv(16, 24, fused)
        self.head = nn.Conv2d(24, 4, 1)

    def forward(self, x):
        return self.head(self.r2(self.r1(self.stem(x))))


class SPPF(nn.Module):
    """YOLOv5/v8 SPPF: a 1x1 conv, three chained max-pools, concatenation of the four maps."""

    def __init__(self, c: int = 16) -> None:
        super().__init__()
        self.stem = cbs(3, c, 3)
        self.cv1, self.cv2 = cbs(c, c // 2), cbs(2 * c, c)
        self.pool = nn.MaxPool2d(5, 1, 2)
        self.head = nn.Conv2d(c, 4, 1)

    def forward(self, x):
        y = [self.cv1(self.stem(x))]
        y.extend(self.pool(y[-1]) for _ in range(3))
        return self.head(self.cv2(torch.cat(y, 1)))


class FPNNet(nn.Module):
    """Backbone with three levels, a top-down FPN (lateral 1x1 + upsample + add) and a shared head."""

    def __init__(self, c: int = 16) -> None:
        super().__init__()
        self.s1, self.s2, self.s3 = cbs(3, 8, 3, 2), cbs(8, 16, 3, 2), cbs(16, 24, 3, 2)
        self.lat = nn.ModuleList([nn.Conv2d(ch, c, 1) for ch in (8, 16, 24)])
        self.smooth = nn.ModuleList([nn.Conv2d(c, c, 3, padding=1) for _ in range(3)])
        self.head = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.ReLU(), nn.Conv2d(c, 6, 1))

    def forward(self, x):
        f1 = self.s1(x)
        f2 = self.s2(f1)
        f3 = self.s3(f2)
        p3 = self.lat[2](f3)
        p2 = self.lat[1](f2) + F.interpolate(p3, size=f2.shape[-2:], mode="nearest")
        p1 = self.lat[0](f1) + F.interpolate(p2, scale_factor=2.0, mode="nearest")
        outs = [s(p) for s, p in zip(self.smooth, (p1, p2, p3))]
        return [self.head(o) for o in outs]  # one head, called on every level


class PANNet(nn.Module):
    """YOLO-style PAN: top-down concat path then bottom-up concat path, one output conv per level."""

    def __init__(self) -> None:
        super().__init__()
        self.s1, self.s2, self.s3 = cbs(3, 8, 3, 2), cbs(8, 16, 3, 2), cbs(16, 32, 3, 2)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.td2 = cbs(32 + 16, 16)
        self.td1 = cbs(16 + 8, 8)
        self.down1 = cbs(8, 8, 3, 2)
        self.bu2 = cbs(8 + 16, 16)
        self.down2 = cbs(16, 16, 3, 2)
        self.bu3 = cbs(16 + 32, 32)
        self.out = nn.ModuleList([nn.Conv2d(c, 7, 1) for c in (8, 16, 32)])

    def forward(self, x):
        c1 = self.s1(x)
        c2 = self.s2(c1)
        c3 = self.s3(c2)
        t2 = self.td2(torch.cat([self.up(c3), c2], 1))
        t1 = self.td1(torch.cat([self.up(t2), c1], 1))
        b2 = self.bu2(torch.cat([self.down1(t1), t2], 1))
        b3 = self.bu3(torch.cat([self.down2(b2), c3], 1))
        return [o(f) for o, f in zip(self.out, (t1, b2, b3))]


class SqueezeExcite(nn.Module):
    def __init__(self, c: int, r: int = 4) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Conv2d(c, c // r, 1), nn.Conv2d(c // r, c, 1)

    def forward(self, x):
        s = F.adaptive_avg_pool2d(x, 1)
        return x * F.hardsigmoid(self.fc2(F.relu(self.fc1(s))))


class InvertedResidual(nn.Module):
    """MobileNetV2/V3 block: expand 1x1, depthwise 3x3, optional SE, project 1x1, residual add."""

    def __init__(self, c: int, expand: int, se: bool) -> None:
        super().__init__()
        h = c * expand
        self.expand = cbs(c, h, act=nn.Hardswish)
        self.dw = cbs(h, h, 3, g=h, act=nn.Hardswish)
        self.se = SqueezeExcite(h) if se else nn.Identity()
        self.project = nn.Sequential(nn.Conv2d(h, c, 1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x):
        return x + self.project(self.se(self.dw(self.expand(x))))


class MobileNetish(nn.Module):
    def __init__(self, se: bool = True) -> None:
        super().__init__()
        self.stem = cbs(3, 16, 3, 2, act=nn.Hardswish)
        self.b1, self.b2 = InvertedResidual(16, 4, se=False), InvertedResidual(16, 3, se=se)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(16, 32), nn.Hardswish(), nn.Dropout(0.2), nn.Linear(32, 10))

    def forward(self, x):
        return self.fc(self.pool(self.b2(self.b1(self.stem(x)))))


class ImplicitNet(nn.Module):
    """YOLOv7 ImplicitA/ImplicitM (bare nn.Parameters in forward) and BiFPN fusion weights."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = cbs(3, 16, 3), cbs(3, 16, 3)
        self.fuse_w = nn.Parameter(torch.ones(2))
        self.implicit_a = nn.Parameter(torch.randn(1, 16, 1, 1) * 0.1)
        self.implicit_m = nn.Parameter(1 + torch.randn(1, 16, 1, 1) * 0.1)
        self.mid = cbs(16, 16, 3)
        self.out = nn.Conv2d(16, 6, 1)

    def forward(self, x):
        w = F.relu(self.fuse_w)
        w = w / (w.sum() + 1e-4)
        y = w[0] * self.a(x) + w[1] * self.b(x)
        return self.out(self.mid(y + self.implicit_a) * self.implicit_m)


class GroupedNet(nn.Module):
    """Grouped convs, depthwise with a channel multiplier, GroupNorm, PReLU, FrozenBN, ConvTranspose."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), FrozenBatchNorm2d(16), nn.PReLU(16))
        self.grouped = nn.Sequential(nn.Conv2d(16, 24, 3, padding=1, groups=4), nn.GroupNorm(4, 24), nn.ReLU())
        self.dw_mult = nn.Conv2d(24, 48, 3, padding=1, groups=24)
        self.up = nn.ConvTranspose2d(48, 12, 2, stride=2)
        self.bn = nn.BatchNorm2d(12)
        self.out = nn.Conv2d(12, 5, 1)

    def forward(self, x):
        return self.out(self.bn(self.up(self.dw_mult(self.grouped(self.stem(x))))))


class ChunkNet(nn.Module):
    """C2f-style chunk into halves (re-split equally after pruning) and a slice along channels."""

    def __init__(self) -> None:
        super().__init__()
        self.cv1 = cbs(3, 32, 3)
        self.m = cbs(16, 16, 3)
        self.cv2 = cbs(48, 16)
        self.out = nn.Conv2d(8, 4, 1)

    def forward(self, x):
        a, b = self.cv1(x).chunk(2, 1)
        y = self.cv2(torch.cat([a, b, self.m(b)], 1))
        return self.out(y[:, 4:12])


class Conv1dNet(nn.Module):
    """1-D convolutions with BatchNorm1d, then a Linear head on the pooled channels."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Sequential(nn.Conv1d(4, 16, 3, padding=1), nn.BatchNorm1d(16), nn.ReLU())
        self.c2 = nn.Sequential(nn.Conv1d(16, 16, 3, padding=1), nn.BatchNorm1d(16), nn.ReLU())
        self.fc = nn.Sequential(nn.Linear(16, 24), nn.BatchNorm1d(24), nn.ReLU(), nn.Linear(24, 3))

    def forward(self, x):
        y = self.c2(self.c1(x)) + self.c1(x)
        return self.fc(y.mean(-1))


BLOCKS = {
    "bottleneck": (Bottleneck, (1, 3, 16, 16)),
    "elan": (ELAN, (1, 3, 16, 16)),
    "repconv_train": (lambda: RepNet(False), (1, 3, 12, 12)),
    "repconv_fused": (lambda: RepNet(True), (1, 3, 12, 12)),
    "sppf": (SPPF, (1, 3, 16, 16)),
    "fpn": (FPNNet, (1, 3, 32, 32)),
    "pan": (PANNet, (1, 3, 32, 32)),
    "mobilenet_v2": (lambda: MobileNetish(se=False), (1, 3, 16, 16)),
    "mobilenet_v3_se": (lambda: MobileNetish(se=True), (1, 3, 16, 16)),
    "implicit_bifpn": (ImplicitNet, (1, 3, 12, 12)),
    "grouped_gn_prelu_frozenbn_convT": (GroupedNet, (1, 3, 8, 8)),
    "chunk_slice": (ChunkNet, (1, 3, 8, 8)),
    "conv1d_bn1d_linear": (Conv1dNet, (2, 4, 10)),
}
