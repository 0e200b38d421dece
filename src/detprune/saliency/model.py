"""VGG16 encoder-decoder for salient object detection, at any width.

The encoder is torchvision's ``vgg16(weights=None).features`` (width 1.0, so ImageNet weights
load by name into ``encoder``) or the same layer list at a reduced ``width`` for quick CPU work.
Side outputs are tapped at the end of the five VGG stages (strides 1, 2, 4, 8, 16; the last
max-pool is dropped: stride 32 leaves too few pixels for small objects); a U-Net decoder
upsamples the deepest feature and concatenates it with each shallower side output, so fine
boundaries come back from stage 1. The head gives one-channel logits at input resolution.

Images enter in [0, 1] (the training loop's contract) and are ImageNet-normalised inside the
model, so exported / pruned models need no separate pre-processing. ``spec`` records how to
rebuild the unpruned architecture (``detprune.zoo`` source ``"saliency"``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models import vgg16, vgg16_bn
from torchvision.models.vgg import make_layers

__all__ = ["SALIENCY_MODELS", "SaliencyNet", "build_saliency_model"]

VGG16_CFG: list[int | str] = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
DECODER = (32, 64, 128, 256, 256)  # decoder width per stage (1..5) at width 1.0
SALIENCY_MODELS = ("vgg16", "vgg16_bn")
_MEAN, _STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
HEAD_PRIOR = 0.01  # initial foreground probability: salient pixels are rare, start near the prior


def _scaled(c: int, width: float) -> int:
    return max(4, int(round(c * width)))


def _init(module: nn.Module) -> None:
    """torchvision VGG's initialisation (Kaiming fan-out), also for the decoder."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def vgg_encoder(name: str, width: float) -> nn.Sequential:
    """VGG16 ``features`` without the final max-pool (torchvision's own module at width 1)."""
    bn = name == "vgg16_bn"
    if width == 1.0:
        features = (vgg16_bn if bn else vgg16)(weights=None).features
    else:
        cfg = [c if c == "M" else _scaled(int(c), width) for c in VGG16_CFG]
        features = make_layers(cfg, batch_norm=bn)
        _init(features)
    return features[:-1]  # keep indices (and so state-dict names) identical to torchvision's


class ConvBNReLU(nn.Sequential):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class DecoderBlock(nn.Module):
    """Upsample the deeper map to the skip's size, concatenate, two conv-BN-ReLU."""

    def __init__(self, deep: int, skip: int, out: int) -> None:
        super().__init__()
        self.fuse = nn.Sequential(ConvBNReLU(deep + skip, out), ConvBNReLU(out, out))

    def forward(self, deep: Tensor, skip: Tensor) -> Tensor:
        up = F.interpolate(deep, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.fuse(torch.cat([up, skip], 1))


class SaliencyNet(nn.Module):
    """``forward(images [B, 3, H, W] in [0, 1]) -> logits [B, 1, H, W]``."""

    def __init__(self, name: str = "vgg16", width: float = 1.0) -> None:
        super().__init__()
        if name not in SALIENCY_MODELS:
            raise ValueError(f"unknown saliency model {name!r}; choose from {', '.join(SALIENCY_MODELS)}")
        if not 0 < width <= 1.0:
            raise ValueError(f"width must be in (0, 1], got {width!r}")
        self.spec = {"name": name, "width": float(width)}
        self.encoder = vgg_encoder(name, width)
        pools = [i for i, m in enumerate(self.encoder) if isinstance(m, nn.MaxPool2d)]
        self.taps = [p - 1 for p in pools] + [len(self.encoder) - 1]  # last layer of each stage (a ReLU)
        enc = [self._channels_before(t) for t in self.taps]
        dec = [_scaled(c, width) for c in DECODER]
        self.center = ConvBNReLU(enc[4], dec[4])
        self.decoder = nn.ModuleList(DecoderBlock(dec[i + 1], enc[i], dec[i]) for i in reversed(range(4)))
        self.head = nn.Conv2d(dec[0], 1, 1)
        _init(self.center)
        _init(self.decoder)
        nn.init.normal_(self.head.weight, std=0.01)
        nn.init.constant_(self.head.bias, math.log(HEAD_PRIOR / (1 - HEAD_PRIOR)))
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)

    def _channels_before(self, index: int) -> int:
        convs = [m for m in list(self.encoder)[: index + 1] if isinstance(m, nn.Conv2d)]
        return convs[-1].out_channels

    def side_outputs(self, images: Tensor) -> list[Tensor]:
        """Encoder features at the end of each of the five stages (strides 1, 2, 4, 8, 16)."""
        x = (images - self.mean) / self.std
        feats = []
        for i, layer in enumerate(self.encoder):
            x = layer(x)
            if i in self.taps:
                feats.append(x)
        return feats

    def forward(self, images: Tensor) -> Tensor:
        feats = self.side_outputs(images)
        x = self.center(feats[4])
        for block, skip in zip(self.decoder, reversed(feats[:4])):
            x = block(x, skip)
        return self.head(x)


def build_saliency_model(name: str = "vgg16", width: float = 1.0) -> SaliencyNet:
    """A randomly initialised saliency network (``width=0.25``: the narrow variant for quick runs)."""
    return SaliencyNet(name, width)
