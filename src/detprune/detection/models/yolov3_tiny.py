"""YOLOv3-tiny in the darknet layout (``yolov3-tiny.cfg``), the network of the attribution-pruning paper.

Layer map (darknet index: module), for a 416x416 input::

     0 conv 16 3x3      1 maxpool 2/2     2 conv 32 3x3     3 maxpool 2/2
     4 conv 64 3x3      5 maxpool 2/2     6 conv 128 3x3    7 maxpool 2/2
     8 conv 256 3x3 (26x26, routed)       9 maxpool 2/2    10 conv 512 3x3
    11 maxpool 2/1 (zero pad right/bottom by 1)            12 conv 1024 3x3
    13 conv 256 1x1    14 conv 512 3x3   15 conv 3*(5+nc) 1x1 linear  -> YOLO 13x13, stride 32, anchors 3,4,5
    17 route 13        18 conv 128 1x1   19 upsample x2    20 route 19, 8
    21 conv 256 3x3    22 conv 3*(5+nc) 1x1 linear  -> YOLO 26x26, stride 16, anchors 0,1,2

That is 13 ``[convolutional]`` sections, as in the cfg: 11 conv+BN+LeakyReLU(0.1) blocks and the
2 linear prediction convs (1x1, with bias). Module attribute names carry the darknet index.

``width`` scales every hidden conv (min 8, multiple of 8); the prediction convs always have
``3*(5+nc)`` channels. ``depth`` is accepted for a uniform registry API but **ignored**: the tiny
network has no repeated blocks, and keeping the exact darknet topology is what the paper prunes.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .blocks import Conv, scale_channels
from .decode import decode_yolo
from .loss_yolov3 import YOLOv3Loss

# darknet's default tiny anchors (w, h) in pixels of the 416x416 network input, small to large.
DARKNET_TINY_ANCHORS: tuple[tuple[int, int], ...] = ((10, 14), (23, 27), (37, 58), (81, 82), (135, 169), (344, 319))
# darknet's yolo masks, in output order: the stride-32 head first, as in the cfg.
DARKNET_TINY_MASKS: tuple[tuple[int, ...], ...] = ((3, 4, 5), (0, 1, 2))


class YOLOv3Tiny(nn.Module):
    """Darknet YOLOv3-tiny; ``forward`` returns the raw maps ``[B, 3*(5+nc), H/s, W/s]`` for s = 32, 16.

    Channel layout of each map: anchor-major, ``(tx, ty, tw, th, obj, cls_0..cls_{nc-1})`` per anchor.
    """

    num_anchors = 3
    strides: tuple[int, ...] = (32, 16)

    def __init__(
        self,
        num_classes: int,
        width: float = 1.0,
        depth: float = 1.0,
        anchors: Sequence[Sequence[float]] = DARKNET_TINY_ANCHORS,
        names: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        if len(anchors) != 6:
            raise ValueError("YOLOv3-tiny needs 6 (w, h) anchors in pixels")
        self.num_classes = num_classes
        self.names = list(names) if names is not None else [str(i) for i in range(num_classes)]
        self.width, self.depth = width, depth  # depth is ignored, see module docstring
        anchors_t = torch.tensor(anchors, dtype=torch.float32)
        self.register_buffer("anchors", torch.stack([anchors_t[list(m)] for m in DARKNET_TINY_MASKS]))  # [2, 3, 2]

        def c(n: int) -> int:
            return scale_channels(n, width)

        def conv(c1: int, c2: int, k: int) -> Conv:
            return Conv(c1, c2, k, act="leaky")

        no = self.num_anchors * (5 + num_classes)
        self.backbone16 = nn.Sequential(OrderedDict(
            conv0=conv(3, c(16), 3), pool1=nn.MaxPool2d(2, 2),
            conv2=conv(c(16), c(32), 3), pool3=nn.MaxPool2d(2, 2),
            conv4=conv(c(32), c(64), 3), pool5=nn.MaxPool2d(2, 2),
            conv6=conv(c(64), c(128), 3), pool7=nn.MaxPool2d(2, 2),
            conv8=conv(c(128), c(256), 3),
        ))  # fmt: skip
        self.backbone32 = nn.Sequential(OrderedDict(
            pool9=nn.MaxPool2d(2, 2),
            conv10=conv(c(256), c(512), 3),
            pad11=nn.ZeroPad2d((0, 1, 0, 1)), pool11=nn.MaxPool2d(2, 1),
            conv12=conv(c(512), c(1024), 3),
            conv13=conv(c(1024), c(256), 1),
        ))  # fmt: skip
        self.head32 = nn.Sequential(OrderedDict(conv14=conv(c(256), c(512), 3), pred15=nn.Conv2d(c(512), no, 1)))
        self.lateral = nn.Sequential(OrderedDict(conv18=conv(c(256), c(128), 1), up19=nn.Upsample(scale_factor=2)))
        self.head16 = nn.Sequential(
            OrderedDict(conv21=conv(c(128) + c(256), c(256), 3), pred22=nn.Conv2d(c(256), no, 1))
        )
        self._init_biases()

    def _init_biases(self, img_size: int = 416) -> None:
        """Prior objectness ~8 objects per image and ~1/nc class probability, so training starts calm."""
        with torch.no_grad():
            for pred, s in zip(self.prediction_convs(), self.strides, strict=True):
                b = pred.bias.view(self.num_anchors, -1)
                b[:, 4] = math.log(8 / (img_size / s) ** 2)
                b[:, 5:] = math.log(0.6 / max(self.num_classes - 0.99, 0.01))

    def prediction_convs(self) -> list[nn.Conv2d]:
        """The final 1x1 convs whose outputs are the raw maps (never pruned: their width is the format)."""
        return [self.head32.pred15, self.head16.pred22]

    def forward(self, images: Tensor) -> list[Tensor]:
        f16 = self.backbone16(images)
        f32 = self.backbone32(f16)
        p32 = self.head32(f32)
        p16 = self.head16(torch.cat((self.lateral(f32), f16), 1))  # darknet route -1, 8
        return [p32, p16]

    # ------------------------------------------------------------------ raw-output interpretation

    def _split(self, raw: list[Tensor]) -> list[Tensor]:
        """Each map viewed as [B, A, 5+nc, H, W] (no copy, gradients flow)."""
        return [r.unflatten(1, (self.num_anchors, 5 + self.num_classes)) for r in raw]

    def class_logits(self, raw: list[Tensor]) -> list[Tensor]:
        """Per level, the class logits [B, A=3, nc, H, W]."""
        return [r[:, :, 5:] for r in self._split(raw)]

    def box_outputs(self, raw: list[Tensor]) -> list[Tensor]:
        """Per level, the raw box and objectness outputs (tx, ty, tw, th, obj) [B, A=3, 5, H, W]."""
        return [r[:, :, :5] for r in self._split(raw)]

    def objectness(self, raw: list[Tensor]) -> list[Tensor] | None:
        """Per level, the objectness logits [B, A=3, H, W]."""
        return [r[:, :, 4] for r in self._split(raw)]

    def class_scores(self, raw: list[Tensor]) -> list[Tensor]:
        """Per level, the detection confidence per class sigmoid(obj) * sigmoid(cls): [B, 3, nc, H, W]."""
        return [r[:, :, 5:].sigmoid() * r[:, :, 4:5].sigmoid() for r in self._split(raw)]

    def decode(self, raw: list[Tensor]) -> tuple[Tensor, Tensor]:
        """All candidate boxes: xyxy pixels [B, N, 4] and per-class confidences [B, N, nc]."""
        return decode_yolo(raw, self.anchors, self.strides, self.num_classes)

    def build_loss(self, **kwargs: float) -> YOLOv3Loss:
        """The training criterion of this architecture (see :class:`YOLOv3Loss` for the options)."""
        return YOLOv3Loss(self.anchors, self.strides, self.num_classes, **kwargs)
