"""Evaluation-only ``DetectorAdapter`` for Ultralytics detection models.

Used when ``detprune.detection.adapters.ultralytics`` offers no full adapter: it lets the
pipeline evaluate, analyse and report pruned Ultralytics models with detprune's own metrics
(same NMS, same COCO evaluator as the other detectors). Training goes through Ultralytics'
trainer (:func:`finetune_ultralytics`), so :meth:`loss` is deliberately unsupported.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from detprune.detection.models.nms import postprocess
from detprune.detection.types import Prediction, Target

PAD_VALUE = 114 / 255


class UltralyticsEvalAdapter:
    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.num_classes = int(model.model[-1].nc)
        self.stride = int(max(getattr(model, "stride", torch.tensor([32])).tolist()))

    def example_inputs(self, images: Tensor) -> Tensor:
        h, w = images.shape[-2:]
        ph, pw = (-h) % self.stride, (-w) % self.stride
        return F.pad(images, (0, pw, 0, ph), value=PAD_VALUE) if ph or pw else images

    def loss(self, images: Tensor, targets: list[Target]) -> dict[str, Tensor]:
        raise NotImplementedError("training an Ultralytics model goes through Ultralytics' trainer "
                                  "(detprune.detection.adapters.ultralytics.finetune_ultralytics)")

    def predict(self, images: Tensor, conf_thres: float = 0.001, iou_thres: float = 0.6,
                max_det: int = 300) -> list[Prediction]:
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                out = self.model(self.example_inputs(images))
        finally:
            self.model.train(was_training)
        y = out[0] if isinstance(out, (tuple, list)) else out  # [B, 4 + nc, N]: xywh pixels, class probabilities
        xywh, scores = y[:, :4].transpose(1, 2), y[:, 4:].transpose(1, 2)
        boxes = torch.cat((xywh[..., :2] - xywh[..., 2:] / 2, xywh[..., :2] + xywh[..., 2:] / 2), -1)
        return postprocess(boxes, scores, conf_thres, iou_thres, max_det, image_size=tuple(images.shape[-2:]))
