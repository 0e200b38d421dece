"""YOLOv8-style anchor-free detector (Ultralytics ``yolov8.yaml`` topology, written out explicitly).

Backbone: Conv-stride-2 stem and four stages (Conv-stride-2 + C2f), SPPF at stride 32.
Neck (PAN): top-down (upsample + concat + C2f) to P3, bottom-up (Conv-stride-2 + concat + C2f) to P5.
Head: decoupled per level, ``cv2`` box branch (2x Conv3x3 + 1x1 -> 4*reg_max DFL logits) and ``cv3``
class branch (2x Conv3x3 + 1x1 -> nc logits); strides 8/16/32.

``forward`` returns, in train and eval mode alike, the raw per-level maps
``[B, 4*reg_max + nc, H/s, W/s]`` = concat(box logits, class logits); decoding lives in
:mod:`.decode` so a pruning tracer sees the final 1x1 convs as the network outputs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .blocks import SPPF, C2f, Conv, scale_channels, scale_depth
from .box_coder import dfl_expectation
from .decode import decode_dfl
from .loss_yolov8 import YOLOv8Loss

# Ultralytics compound scales: name -> (depth, width, max_channels).
SCALES: dict[str, tuple[float, float, int]] = {
    "n": (0.33, 0.25, 1024),
    "s": (0.33, 0.50, 1024),
    "m": (0.67, 0.75, 768),
    "l": (1.00, 1.00, 512),
    "x": (1.00, 1.25, 512),
}


def _branch(c_in: int, c_hidden: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(Conv(c_in, c_hidden, 3), Conv(c_hidden, c_hidden, 3), nn.Conv2d(c_hidden, c_out, 1))


class DetectHead(nn.Module):
    """Decoupled YOLOv8 head: per level a box branch (cv2) and a class branch (cv3)."""

    def __init__(self, num_classes: int, channels: Sequence[int], reg_max: int = 16) -> None:
        super().__init__()
        c_box = max(16, channels[0] // 4, 4 * reg_max)
        c_cls = max(channels[0], min(num_classes, 100))
        self.cv2 = nn.ModuleList(_branch(c, c_box, 4 * reg_max) for c in channels)
        self.cv3 = nn.ModuleList(_branch(c, c_cls, num_classes) for c in channels)

    def forward(self, feats: list[Tensor]) -> list[Tensor]:
        return [torch.cat((box(x), cls(x)), 1) for x, box, cls in zip(feats, self.cv2, self.cv3, strict=True)]


class YOLOv8(nn.Module):
    """YOLOv8 detector; see the module docstring for the layout of the raw outputs."""

    strides: tuple[int, ...] = (8, 16, 32)

    def __init__(
        self,
        num_classes: int,
        width: float = 0.25,
        depth: float = 0.33,
        max_channels: int = 1024,
        reg_max: int = 16,
        names: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.names = list(names) if names is not None else [str(i) for i in range(num_classes)]
        self.width, self.depth, self.reg_max = width, depth, reg_max

        def c(n: int) -> int:
            return scale_channels(n, width, max_channels)

        def d(n: int) -> int:
            return scale_depth(n, depth)

        c1, c2, c3, c4, c5 = c(64), c(128), c(256), c(512), c(1024)
        # backbone
        self.stem = Conv(3, c1, 3, 2)  # P1/2
        self.stage2 = nn.Sequential(Conv(c1, c2, 3, 2), C2f(c2, c2, d(3), shortcut=True))  # P2/4
        self.stage3 = nn.Sequential(Conv(c2, c3, 3, 2), C2f(c3, c3, d(6), shortcut=True))  # P3/8
        self.stage4 = nn.Sequential(Conv(c3, c4, 3, 2), C2f(c4, c4, d(6), shortcut=True))  # P4/16
        self.stage5 = nn.Sequential(Conv(c4, c5, 3, 2), C2f(c5, c5, d(3), shortcut=True), SPPF(c5, c5, 5))  # P5/32
        # PAN neck (separate Upsample modules so a tracer sees two distinct nodes)
        self.up5 = nn.Upsample(scale_factor=2, mode="nearest")
        self.td4 = C2f(c5 + c4, c4, d(3))
        self.up4 = nn.Upsample(scale_factor=2, mode="nearest")
        self.td3 = C2f(c4 + c3, c3, d(3))  # -> P3 output
        self.down3 = Conv(c3, c3, 3, 2)
        self.bu4 = C2f(c3 + c4, c4, d(3))  # -> P4 output
        self.down4 = Conv(c4, c4, 3, 2)
        self.bu5 = C2f(c4 + c5, c5, d(3))  # -> P5 output
        self.head = DetectHead(num_classes, (c3, c4, c5), reg_max)
        self._init_biases()

    def _init_biases(self, img_size: int = 640) -> None:
        """Ultralytics priors: box logits flat, class prior ~5 objects per 640 image."""
        with torch.no_grad():
            for box, cls, s in zip(self.head.cv2, self.head.cv3, self.strides, strict=True):
                box[-1].bias.fill_(1.0)
                cls[-1].bias.fill_(math.log(5 / self.num_classes / (img_size / s) ** 2))

    def prediction_convs(self) -> list[nn.Conv2d]:
        """The final 1x1 convs whose outputs form the raw maps (never pruned: their width is the format)."""
        return [m[-1] for pair in zip(self.head.cv2, self.head.cv3, strict=True) for m in pair]

    def forward(self, images: Tensor) -> list[Tensor]:
        p3 = self.stage3(self.stage2(self.stem(images)))
        p4 = self.stage4(p3)
        p5 = self.stage5(p4)
        t4 = self.td4(torch.cat((self.up5(p5), p4), 1))
        n3 = self.td3(torch.cat((self.up4(t4), p3), 1))
        n4 = self.bu4(torch.cat((self.down3(n3), t4), 1))
        n5 = self.bu5(torch.cat((self.down4(n4), p5), 1))
        return self.head([n3, n4, n5])

    # ------------------------------------------------------------------ raw-output interpretation

    def class_logits(self, raw: list[Tensor]) -> list[Tensor]:
        """Per level, the class logits [B, A=1, nc, H, W] (a view of the raw map)."""
        return [r[:, 4 * self.reg_max :].unsqueeze(1) for r in raw]

    def box_outputs(self, raw: list[Tensor]) -> list[Tensor]:
        """Per level, the predicted box [B, A=1, 4, H, W]: each side's DFL expected distance (stride units)."""
        return [dfl_expectation(r[:, : 4 * self.reg_max].movedim(1, -1), self.reg_max).movedim(-1, 1).unsqueeze(1)
                for r in raw]

    def objectness(self, raw: list[Tensor]) -> list[Tensor] | None:
        """Anchor-free YOLOv8 has no objectness branch."""
        return None

    def class_scores(self, raw: list[Tensor]) -> list[Tensor]:
        """Per level, the detection confidence per class sigmoid(cls): [B, 1, nc, H, W]."""
        return [logits.sigmoid() for logits in self.class_logits(raw)]

    def decode(self, raw: list[Tensor]) -> tuple[Tensor, Tensor]:
        """All candidate boxes: xyxy pixels [B, N, 4] and per-class confidences [B, N, nc]."""
        return decode_dfl(raw, self.strides, self.reg_max)

    def build_loss(self, **kwargs: float) -> YOLOv8Loss:
        """The training criterion of this architecture (see :class:`YOLOv8Loss` for the options)."""
        return YOLOv8Loss(self.strides, self.num_classes, self.reg_max, **kwargs)
