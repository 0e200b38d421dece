"""``DetectorAdapter`` for the built-in detectors, plus access to class scores inside the raw outputs.

Class-score accessor (for data-driven criteria such as attribution pruning): the raw outputs of
``model(example_inputs(images))`` are a list of per-level maps; the adapter interprets them as

* ``class_logits(raw)``  -> per level ``[B, A, nc, H, W]`` class logits (A = 3 for YOLOv3-tiny,
  1 for anchor-free YOLOv8). Views of ``raw``: gradients flow back into the network.
* ``box_outputs(raw)``   -> per level ``[B, A, k, H, W]`` box outputs at the same positions (YOLOv3-tiny:
  raw tx, ty, tw, th, objectness; YOLOv8: the 4 DFL expected distances).
* ``objectness(raw)``    -> per level ``[B, A, H, W]`` objectness logits, or ``None`` (YOLOv8).
* ``class_scores(raw)``  -> per level ``[B, A, nc, H, W]`` detection confidence in [0, 1]
  (``sigmoid(obj) * sigmoid(cls)`` or ``sigmoid(cls)``), the quantity NMS thresholds.

Levels are in the model's output order, described by ``adapter.strides``.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..types import Prediction, Target
from .nms import postprocess

# Letterbox grey of YOLO pipelines, used when the batch must be padded to a stride multiple.
PAD_VALUE = 114 / 255


class BuiltinDetector(Protocol):
    """What the adapter needs from a built-in model (implemented by YOLOv3Tiny and YOLOv8)."""

    num_classes: int
    strides: tuple[int, ...]

    def __call__(self, images: Tensor) -> list[Tensor]: ...
    def decode(self, raw: list[Tensor]) -> tuple[Tensor, Tensor]: ...
    def class_logits(self, raw: list[Tensor]) -> list[Tensor]: ...
    def box_outputs(self, raw: list[Tensor]) -> list[Tensor]: ...
    def objectness(self, raw: list[Tensor]) -> list[Tensor] | None: ...
    def class_scores(self, raw: list[Tensor]) -> list[Tensor]: ...
    def build_loss(self, **kwargs: float) -> Any: ...


class BuiltinAdapter:
    """Drives a model from :func:`build_model` (a :class:`BuiltinDetector`) through ``DetectorAdapter``.

    Images whose height/width is not a multiple of the largest stride are padded at the
    bottom/right (so pixel coordinates, hence targets and predictions, are unchanged).
    ``loss_kwargs`` are forwarded to the model's criterion (gains, assigner settings).
    """

    def __init__(self, model: nn.Module, **loss_kwargs: float) -> None:
        self.model = model
        self.num_classes: int = model.num_classes
        self.criterion = model.build_loss(**loss_kwargs)

    @property
    def strides(self) -> tuple[int, ...]:
        """Stride of each raw output level, in output order."""
        return tuple(self.model.strides)

    def _pad(self, images: Tensor) -> Tensor:
        s = max(self.strides)
        h, w = images.shape[-2:]
        ph, pw = (-h) % s, (-w) % s
        return F.pad(images, (0, pw, 0, ph), value=PAD_VALUE) if ph or pw else images

    def example_inputs(self, images: Tensor) -> Tensor:
        """The forward input for ``images``: the (stride-padded) image batch itself."""
        return self._pad(images)

    def loss(self, images: Tensor, targets: list[Target]) -> dict[str, Tensor]:
        """Training losses (the model's own criterion) on absolute-xyxy targets."""
        return self.criterion(self.model(self._pad(images)), targets)

    def predict(
        self, images: Tensor, conf_thres: float = 0.001, iou_thres: float = 0.6, max_det: int = 300
    ) -> list[Prediction]:
        """Eval-mode detections per image, in the pixel frame of ``images`` (the train/eval mode is restored)."""
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                boxes, scores = self.model.decode(self.model(self._pad(images)))
        finally:
            self.model.train(was_training)
        return postprocess(boxes, scores, conf_thres, iou_thres, max_det, image_size=tuple(images.shape[-2:]))

    # ------------------------------------------------------------------ class-score accessor

    def class_logits(self, raw: list[Tensor]) -> list[Tensor]:
        """Per level, class logits [B, A, nc, H, W] (views of ``raw``)."""
        return self.model.class_logits(raw)

    def box_outputs(self, raw: list[Tensor]) -> list[Tensor]:
        """Per level, the box outputs [B, A, k, H, W] aligned with ``class_logits`` (views or functions of ``raw``)."""
        return self.model.box_outputs(raw)

    def objectness(self, raw: list[Tensor]) -> list[Tensor] | None:
        """Per level, objectness logits [B, A, H, W]; ``None`` for heads without objectness."""
        return self.model.objectness(raw)

    def class_scores(self, raw: list[Tensor]) -> list[Tensor]:
        """Per level, per-class detection confidence [B, A, nc, H, W] in [0, 1]."""
        return self.model.class_scores(raw)
